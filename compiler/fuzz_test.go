package compiler_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/load"
)

// FuzzVet vets arbitrary recipe text, with an optional --set, and wants
// an answer: diagnostics or a plain error, never a panic or a hang. The
// seeds are the broken-recipe corpus (internal/cli/testdata/vet) and the
// examples, each with the files its archive carries (data, reward
// functions) beside it, so that mutations reach the semantic checks.
//
//	go test -run '^$' -fuzz '^FuzzVet$' -fuzztime 30s ./compiler/
//
// While fuzzing, an input that takes longer than hangBound fails: a bound
// on termination, far above the time any recipe takes (well under a
// second); plain `go test` runs the seeds without it.
func FuzzVet(f *testing.F) {
	archives, _ := filepath.Glob("../internal/cli/testdata/vet/*.txtar")
	files := map[string][]byte{}
	for _, a := range archives {
		ar, err := txtar.ParseFile(a)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range ar.Files {
			switch {
			case file.Name == "recipe.cue":
				f.Add(file.Data, "")
			case file.Name != "want.txt" && !strings.Contains(file.Name, "/"):
				files[file.Name] = file.Data
			}
		}
	}
	examples, _ := filepath.Glob("../examples/*/recipe.cue")
	for _, e := range examples {
		b, err := os.ReadFile(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "")
	}
	if len(archives) == 0 || len(examples) == 0 {
		f.Fatal("no seeds found")
	}
	f.Add([]byte(""), "stages.sft.training.learningRate=1e-5")
	f.Add(mustRead(f, "../examples/sft-ddp/recipe.cue"), "hardware.strategy=zero3")
	f.Add(mustRead(f, "../examples/sft-ddp/recipe.cue"), "stages.sfx.training.learningRate=1e-5")

	fuzzing := flag.Lookup("test.fuzz") != nil && flag.Lookup("test.fuzz").Value.String() != ""
	f.Fuzz(func(t *testing.T, src []byte, set string) {
		file := filepath.Join(t.TempDir(), "recipe.cue")
		if err := os.WriteFile(file, src, 0o644); err != nil {
			t.Fatal(err)
		}
		// The archives' other files, copied: a recipe names them by
		// relative path, and a symlink out of the recipe's directory would
		// be refused as an escape before any data or reward check ran.
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(filepath.Dir(file), name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var ovs []load.Override
		if set != "" {
			o, err := load.ParseOverride(set)
			if err != nil {
				return
			}
			ovs = append(ovs, o)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			r, diags, err := compiler.Vet(file, ovs)
			if err == nil && r == nil {
				t.Errorf("no recipe and no error")
			}
			if err != nil && !diags.HasErrors() && len(diags) > 0 {
				t.Errorf("error %v with diagnostics that hold no error:\n%v", err, diags)
			}
		}()
		if !fuzzing {
			<-done
			return
		}
		select {
		case <-done:
		case <-time.After(hangBound):
			t.Fatalf("vet did not return within %s on:\n%s\n--set %q", hangBound, src, set)
		}
	})
}

// hangBound is the fuzzer's bound on one input (see FuzzVet).
const hangBound = 20 * time.Second

func mustRead(f *testing.F, name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
