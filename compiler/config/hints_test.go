package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/ftc-dev/ftc/compiler/load"
)

// TestHintsPassVet applies the change of every machine-applicable hint
// that a recipe of the vet corpus gets (memory fixes, vLLM GPU changes)
// and vets the changed recipe again with a fresh checker: it must have no
// error at the path the hint was for, and no error the recipe as written
// did not have. A hint must never propose a recipe vet refuses.
func TestHintsPassVet(t *testing.T) {
	archives, err := filepath.Glob("../../internal/cli/testdata/vet/*.txtar")
	if err != nil || len(archives) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	applied := 0
	for _, a := range archives {
		ar, err := txtar.ParseFile(a)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		for _, f := range ar.Files {
			p := filepath.Join(dir, f.Name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		inst, err := load.Load(filepath.Join(dir, "recipe.cue"), nil)
		if err != nil {
			continue // refused before the checks: no hint of theirs
		}
		b, err := inst.Value.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		r, _, _ := Decode(Source{JSON: b, Dir: inst.Dir, File: inst.File, Pos: inst.Pos}, os.DirFS(dir), Options{})
		if r == nil {
			continue
		}
		files := os.DirFS(dir)
		c := &checker{r: r, files: files, data: files}
		before := map[string]bool{}
		for _, d := range c.run().Errors() {
			before[d.Path+"\x00"+d.Message] = true
		}
		for _, o := range c.offered {
			applied++
			rr := *r
			rr.Stages = map[string]Stage{}
			for k, v := range r.Stages {
				rr.Stages[k] = v
			}
			st := rr.Stages[o.stage]
			o.apply(&rr, &st)
			rr.Stages[o.stage] = st
			for _, d := range Check(&rr, files).Errors() {
				if d.Path == o.target || !before[d.Path+"\x00"+d.Message] {
					t.Errorf("%s: the hint %q leads to\n%s: %s", filepath.Base(a), o.say, d.Path, strings.ReplaceAll(d.Message, "\n", "\n\t"))
				}
			}
		}
	}
	if applied < 5 {
		t.Errorf("only %d hints applied; the corpus should exercise the memory and vLLM hints", applied)
	}
	t.Logf("%d hints applied and vetted again", applied)
}
