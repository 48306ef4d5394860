package config

import (
	"testing"

	"github.com/ftc-dev/ftc/compiler/libknobs"
)

// TestKnobSettingsComplete: every recipe setting whose keyword some
// library version lacks can be read by the vet check, so none is passed
// over silently.
func TestKnobSettingsComplete(t *testing.T) {
	for _, k := range libknobs.Table {
		if k.Setting == "" || k.Handled != "" || !k.Bounded() {
			continue
		}
		if knobSettings[k.Setting] == nil {
			t.Errorf("%s.%s: vet cannot read setting %s (add it to knobSettings)", k.Class, k.Name, k.Setting)
		}
	}
}
