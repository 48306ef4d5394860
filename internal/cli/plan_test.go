package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// whatTrains keeps the lines of ftc plan's text that say what will train:
// the recipe, the hardware, each stage's heading and, for a training
// stage, its global batch (with what the topology did to it), its steps
// (per epoch and in all) and its tokens per step, and what --gpus changed.
// Keys, memory and speed are left out: other goldens pin them, and they
// move for other reasons.
var whatTrains = regexp.MustCompile(`^(recipe |hardware |--gpus |  \S+: global batch |\d+\. \S+ \[|   batch |   steps |.* tokens per step )`)

// TestPlanShowsWhatTrains runs ftc plan on examples/sft-ddp as written
// (8 GPUs, globalBatch 64) and moved to 4 GPUs and to 1, by editing the
// recipe (--set) and by --gpus, and compares what it says will train with
// testdata/plan/sft-ddp.txt: global batch, steps per epoch and in all,
// tokens per step, that gradAccum follows the topology while the global
// batch stays, and what --gpus says it changed. FTC_UPDATE_GOLDEN=1
// rewrites the golden.
func TestPlanShowsWhatTrains(t *testing.T) {
	recipe := filepath.Join(repoRoot, "examples", "sft-ddp", "recipe.cue")
	var got strings.Builder
	for _, args := range [][]string{
		{"plan", recipe},
		{"plan", "--set", "hardware.gpusPerNode=4", recipe},
		{"plan", "--set", "hardware.gpusPerNode=1", "--set", "hardware.strategy=single", recipe},
		{"plan", "--gpus", "4", recipe},
		{"plan", "--gpus", "1", recipe},
	} {
		var stdout, stderr bytes.Buffer
		if code := Run(args, &stdout, &stderr); code != 0 {
			t.Fatalf("ftc %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
		}
		shown := append([]string{"ftc"}, args...)
		shown[len(shown)-1] = "examples/sft-ddp/recipe.cue"
		got.WriteString("$ " + strings.Join(shown, " ") + "\n")
		for _, l := range strings.Split(stdout.String(), "\n") {
			if whatTrains.MatchString(l) {
				got.WriteString(l + "\n")
			}
		}
	}
	golden := filepath.Join("testdata", "plan", "sft-ddp.txt")
	if os.Getenv("FTC_UPDATE_GOLDEN") != "" {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with FTC_UPDATE_GOLDEN=1 to create it)", err)
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("ftc plan of examples/sft-ddp changed (-golden +got); if deliberate, refresh with FTC_UPDATE_GOLDEN=1:\n%s", diff)
	}
}
