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

// TestLocalModelLaidOutAsDirectory: a local model directory reaches the
// stage as the input's folder holding its files, which the entrypoints
// load with from_pretrained as a model directory.
func TestLocalModelLaidOutAsDirectory(t *testing.T) {
	src := t.TempDir()
	c, w := filepath.Join(src, "config.json"), filepath.Join(src, "w.bin")
	os.WriteFile(c, []byte("{}"), 0o644)
	os.WriteFile(w, []byte("w"), 0o644)
	r := &runner{opts: Options{Models: map[string]map[string]string{
		"models/tiny": {"config.json": c, "sub/w.bin": w},
	}}}
	s := &plan.Stage{Name: "sft", Inputs: []plan.Input{{Role: "model", Source: &plan.Source{Kind: "local-model", Ref: "models/tiny"}}}}
	dir := t.TempDir()
	in, err := r.layInputs(s, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := in["model"]; got.Path != filepath.Join("inputs", "model") || got.Kind != "local-model" {
		t.Fatalf("input: %+v", got)
	}
	for rel, want := range map[string]string{"config.json": "{}", "sub/w.bin": "w"} {
		got, err := os.ReadFile(filepath.Join(dir, "inputs", "model", filepath.FromSlash(rel)))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v", rel, got, err)
		}
	}
	s.Inputs[0].Source.Ref = "models/other"
	if _, err := r.layInputs(s, t.TempDir()); err == nil {
		t.Error("an unchecked model directory was laid out")
	}
}
