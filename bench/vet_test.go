package bench

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/load"
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

// BenchmarkVetLarge vets generated large recipes next to a small one in
// the same run and reports each one's time as a multiple of the small
// recipe's (x-small): 5 MB of comments, load.MaxFields datasets (the
// most a struct may have; CUE's time grows with the square of a struct's
// fields) and a chain of load.MaxStages stages each training on the
// previous one's output (CUE's time grows with about the cube of its
// length), and the same datasets with two mistakes each (2,000
// diagnostics). All stay well under two seconds on CI's machine.
//
//	go test ./bench -run '^$' -bench VetLarge -benchtime 3x
func BenchmarkVetLarge(b *testing.B) {
	dir := b.TempDir()
	data := []byte("{\"text\": \"hi\"}\n")
	if err := os.WriteFile(filepath.Join(dir, "d.jsonl"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(data))
	gen := func(name string, datasets, comment, chain int, bad bool) string {
		var s strings.Builder
		s.WriteString(strings.ReplaceAll(largeHead, strings.Repeat("0", 64), sum))
		for i := 0; i < datasets; i++ {
			if bad {
				// A wrong format and a misspelt field in each: two
				// diagnostics per dataset.
				fmt.Fprintf(&s, "datasets: d%d: {file: {path: \"d.jsonl\", sha256: %q}, format: \"textz\", colums: {}}\n", i, sum)
				continue
			}
			fmt.Fprintf(&s, "datasets: d%d: {file: {path: \"d.jsonl\", sha256: %q}, format: \"text\"}\n", i, sum)
		}
		line := "// " + strings.Repeat("x", 77) + "\n"
		for i := 0; i < comment/len(line); i++ {
			s.WriteString(line)
		}
		prev := "s"
		for i := 1; i < chain; i++ {
			fmt.Fprintf(&s, "stages: t%d: {method: \"sft\", model: stages.%s.output, data: train: datasets.d, training: epochs: 1}\n", i, prev)
			prev = fmt.Sprintf("t%d", i)
		}
		f := filepath.Join(dir, name+".cue")
		if err := os.WriteFile(f, []byte(s.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		return f
	}
	small := gen("small", 0, 0, 0, false)
	vet := func(f string, bad bool) time.Duration {
		t := time.Now()
		if _, diags, err := compiler.Vet(f, nil); (err != nil) != bad {
			b.Fatalf("%v\n%v", err, diags)
		}
		return time.Since(t)
	}
	for _, c := range []struct {
		name                     string
		datasets, comment, chain int
		bad                      bool
	}{
		{"comments-5MB", 0, 5 << 20, 0, false},
		{"datasets-max", load.MaxFields - 1, 0, 0, false},
		{"stage-chain-max", 0, 0, load.MaxStages, false},
		{"datasets-max-2-errors-each", load.MaxFields - 1, 0, 0, true},
	} {
		f := gen(c.name, c.datasets, c.comment, c.chain, c.bad)
		b.Run(c.name, func(b *testing.B) {
			var base, large time.Duration
			for b.Loop() {
				base += vet(small, false)
				large += vet(f, c.bad)
			}
			b.ReportMetric(float64(large)/float64(base), "x-small")
			b.ReportMetric(large.Seconds()/float64(b.N), "s/large")
		})
	}
}

const largeHead = `package recipe

import (
	"ftc.dev/stdlib/gpus"
	"ftc.dev/stdlib/models"
	"ftc.dev/stdlib/profiles"
)

apiVersion:  "ftc.dev/v1alpha1"
name:        "large"
environment: profiles.Pinned2025Q1
hardware: gpu: gpus.H100_80G
datasets: d: {
	file: {path: "d.jsonl", sha256: "0000000000000000000000000000000000000000000000000000000000000000"}
	format: "text"
}
stages: s: {
	method: "sft"
	model:  models.Qwen25_05BInstruct
	data: train: datasets.d
	training: epochs: 1
}
`
