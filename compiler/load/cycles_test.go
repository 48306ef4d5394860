package load_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/load"
)

// TestReferenceCycles: every way of making a stage's model depend on its
// own output is reported at the references, before CUE evaluates the
// recipe (which would not end). The test would time out without the check.
func TestReferenceCycles(t *testing.T) {
	const model = "model:  models.Qwen25_05BInstruct"
	for _, c := range []struct {
		name, old, new string
		want           []string
	}{
		{"self", model, "model: stages.s.output",
			[]string{`stages.s.model: stage "s" uses its own output`}},
		{"self-refined", model, `model: stages.s.output & {dtype: "fp16"}`,
			[]string{`stages.s.model: stage "s" uses its own output`}},
		{"self-index", model, `model: stages["s"].output`,
			[]string{`stages.s.model: stage "s" uses its own output`}},
		{"through-top-level-field", model, "model: base\n}\nbase: stages.s.output\nx: {",
			[]string{`stages.s.model: stage "s" uses its own output`, `base: stage "s" uses its own output`}},
		{"through-let", model, "let m = stages.s.output\n\tmodel: m",
			[]string{`uses its own output`}},
		{"field-by-field", model, "model: {repo: stages.s.output.repo, arch: models.Qwen25_05BInstruct.arch}",
			[]string{`stages.s.model.repo: stage "s" uses its own output`}},
		{"three-stages", model, "model: stages.b.output\n}\nstages: b: {method: \"sft\", model: stages.c.output, data: train: datasets.d}\nstages: c: {method: \"sft\", model: stages.s.output, data: train: datasets.d}\nx: {",
			[]string{
				`stages.s.model: stage "s" uses the output of "b", which uses the output of "c", which uses the output of "s"`,
				`stages.b.model: stage "b" uses the output of "c", which uses the output of "s", which uses the output of "b"`,
				`stages.c.model: stage "c" uses the output of "s", which uses the output of "b", which uses the output of "c"`,
			}},
		{"plain", "training: learningRate: 1e-4", "training: {learningRate: stages.s.training.warmupRatio, warmupRatio: stages.s.training.learningRate}",
			[]string{"reference cycle: stages.s.training.learningRate → stages.s.training.warmupRatio → stages.s.training.learningRate"}},
		{"structural", "training: learningRate: 1e-4", "training: learningRate: 1e-4\n}\nx: y: x\nz: {",
			[]string{"x.y: refers to x, which contains it"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(recipe, c.old, c.new, 1)
			_, err := load.Load(write(t, src), nil)
			var l diag.List
			if !errors.As(err, &l) {
				t.Fatalf("want diagnostics, got %v", err)
			}
			var got strings.Builder
			l.Print(&got, "")
			for _, w := range c.want {
				if !strings.Contains(got.String(), w) {
					t.Errorf("missing %q in:\n%s", w, got.String())
				}
			}
		})
	}
}

// TestNoFalseCycles: references that lead back into the same stage
// without going through its output are not cycles.
func TestNoFalseCycles(t *testing.T) {
	src := strings.Replace(recipe, "training: learningRate: 1e-4", "training: {learningRate: 1e-4, warmupRatio: stages.s.training.learningRate * 100, seed: len(stages.s.name)}", 1)
	mustLoad(t, write(t, src))
}
