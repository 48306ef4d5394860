package bench

import (
	"path/filepath"
	"testing"

	"github.com/ftc-dev/ftc/compiler"
)

// BenchmarkVet measures loading, validating and checking each example in
// process (no process start-up).
func BenchmarkVet(b *testing.B) {
	recipes, err := filepath.Glob("../examples/*/recipe.cue")
	if err != nil || len(recipes) == 0 {
		b.Fatalf("no examples found: %v", err)
	}
	for _, r := range recipes {
		name := filepath.Base(filepath.Dir(r))
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, diags, err := compiler.Vet(r, nil); err != nil {
					b.Fatalf("%v\n%v", err, diags)
				}
			}
		})
	}
}

// BenchmarkPlan measures vet plus compiling the stage graph and keys.
func BenchmarkPlan(b *testing.B) {
	recipes, _ := filepath.Glob("../examples/*/recipe.cue")
	for _, r := range recipes {
		name := filepath.Base(filepath.Dir(r))
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, diags, err := compiler.Plan(r, nil); err != nil {
					b.Fatalf("%v\n%v", err, diags)
				}
			}
		})
	}
}
