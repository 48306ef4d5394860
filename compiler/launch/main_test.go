package launch_test

import (
	"os"
	"testing"

	"github.com/ftc-dev/ftc/compiler/plan"
)

// The sbatch goldens hold stage keys: a fixed stand-in for the
// entrypoints' digest keeps them from changing with every edit to the
// Python entrypoints (examples' TestKeysHashTheEmbeddedEntrypoints checks
// the real digest reaches the keys).
func TestMain(m *testing.M) {
	plan.PinEntrypointsDigestForGoldens("sha256:golden-entrypoints")
	os.Exit(m.Run())
}
