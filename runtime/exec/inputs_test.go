package exec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ftc-dev/ftc/compiler/plan"
)

// TestSetOfFilesLaidOutUnderRecipePaths: a dataset naming several files
// (a directory or a glob) reaches the stage as a folder holding each
// checked file under its path relative to the recipe, which the prepare
// entrypoint reads in path order and names in its messages.
func TestSetOfFilesLaidOutUnderRecipePaths(t *testing.T) {
	src := t.TempDir()
	a, b := filepath.Join(src, "a.jsonl"), filepath.Join(src, "b.jsonl")
	os.WriteFile(a, []byte("a\n"), 0o644)
	os.WriteFile(b, []byte("b\n"), 0o644)
	r := &runner{opts: Options{Sets: map[string]map[string]string{
		"data/shards": {"data/shards/a.jsonl": a, "data/shards/sub/b.jsonl": b},
	}}}
	s := &plan.Stage{Name: "p", Inputs: []plan.Input{{Role: "dataset", Source: &plan.Source{Kind: "file", Ref: "data/shards"}}}}
	dir := t.TempDir()
	in, err := r.layInputs(s, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := in["dataset"]; got.Path != filepath.Join("inputs", "dataset") || got.Kind != "file" {
		t.Fatalf("input: %+v", got)
	}
	for rel, want := range map[string]string{"data/shards/a.jsonl": "a\n", "data/shards/sub/b.jsonl": "b\n"} {
		got, err := os.ReadFile(filepath.Join(dir, "inputs", "dataset", filepath.FromSlash(rel)))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v", rel, got, err)
		}
	}
	// A set resolve did not check is refused, as a single file is.
	s.Inputs[0].Source.Ref = "data/other"
	if _, err := r.layInputs(s, t.TempDir()); err == nil {
		t.Error("an unchecked dataset was laid out")
	}
}
