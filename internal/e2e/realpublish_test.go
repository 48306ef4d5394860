package e2e

import (
	"path/filepath"
	"regexp"
	"testing"
)

// TestRealEntrypointsPublishReproduce is issue 16's acceptance for
// research artifacts with the real entrypoints on the CPU (current-2026's
// locked environment, a tiny Qwen2 in the Hub cache): LoRA SFT and its
// merged export run with --cpu, ftc publish writes the run into an OCI
// layout, and ftc reproduce --rerun sft pulls it into another directory,
// reruns prepare and sft in a fresh cache and finds the same stage keys
// and the same output tree, byte for byte (weights and every other file).
func TestRealEntrypointsPublishReproduce(t *testing.T) {
	rs := realRecipe(t, "realsft-export")
	e, real, dir := rs.env, rs.extraEnv, rs.dir
	expect(t, e.run(real, "--cpu"), 0, 0, 3) // prepare, sft, sft.export

	layout := filepath.Join(dir, "layout")
	if r := e.ftc(real, "publish", "--layout", layout, e.recipe); r.code != 0 {
		t.Fatalf("ftc publish: exit %d\n%s", r.code, r.out)
	}
	r := e.ftc(real, "reproduce", "--layout", layout, "--dir", filepath.Join(dir, "elsewhere"), "--rerun", "sft")
	t.Logf("ftc reproduce:\n%s", r.out)
	if r.code != 0 {
		t.Fatalf("ftc reproduce: exit %d\n%s", r.code, r.out)
	}
	for _, want := range []string{
		`(?m)^key sft +([0-9a-f]{12}) +([0-9a-f]{12}) +yes$`,
		`(?m)^key sft\.export +[0-9a-f]{12} +[0-9a-f]{12} +yes$`,
		// The whole tree, not only the weights: every file the run wrote
		// (adapter_config.json among them) is the same, byte for byte
		// (the runtime starts stages with PYTHONHASHSEED=0).
		`(?m)^output sft \(tree\) +([0-9a-f]{12}) +([0-9a-f]{12}) +yes$`,
		`(?m)^metric sft train_loss +\S+ +\S+ +yes$`,
		`(?m)^reproduced: every check matched`,
	} {
		if !regexp.MustCompile(want).MatchString(r.out) {
			t.Errorf("reproduce: no match for %s", want)
		}
	}
}
