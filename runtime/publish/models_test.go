package publish

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ftc-dev/ftc/compiler/config"
)

// TestPlaceModels: a given directory is placed only when its tree is the
// published one (hidden files aside, as config.TreeDigest hashes it);
// what is missing, unknown or given twice is a typed error.
func TestPlaceModels(t *testing.T) {
	src := t.TempDir()
	write := func(dir, name, s string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(src, "config.json", `{"model_type": "qwen2"}`)
	write(src, "shards/model-00001.safetensors", "weights")
	write(src, ".cache/lock", "not part of the tree")
	fsys := os.DirFS(src)
	_, tree, err := config.TreeDigest(fsys, ".", func(rel string) (string, error) { return config.HashFile(fsys, rel) })
	if err != nil {
		t.Fatal(err)
	}
	base := Model{Path: "models/base", Tree: tree, Files: 2}
	carried := Model{Path: "models/rm", Tree: tree, Files: 2, Carried: true}

	var missing *MissingModelsError
	if err := placeModels([]Model{base, carried}, t.TempDir(), nil); !errors.As(err, &missing) || len(missing.Models) != 1 || missing.Models[0].Path != base.Path {
		t.Fatalf("no directory given: %v, want MissingModelsError of %s only", err, base.Path)
	}
	var unknown *UnknownModelError
	if err := placeModels([]Model{base}, t.TempDir(), map[string]string{"models/bsae": src}); !errors.As(err, &unknown) {
		t.Fatalf("a path the run has no model at: %v", err)
	}
	if err := placeModels([]Model{carried}, t.TempDir(), map[string]string{"models/rm": src}); err == nil {
		t.Fatal("a directory given for a carried model was taken")
	}

	// One byte changed: refused, nothing placed.
	other := t.TempDir()
	write(other, "config.json", `{"model_type": "qwen2"}`)
	write(other, "shards/model-00001.safetensors", "weightz")
	recipe := t.TempDir()
	var mismatch *ModelMismatchError
	if err := placeModels([]Model{base}, recipe, map[string]string{"models/base": other}); !errors.As(err, &mismatch) || mismatch.Got == tree {
		t.Fatalf("another tree: %v", err)
	}
	if _, err := os.Stat(filepath.Join(recipe, "models")); !os.IsNotExist(err) {
		t.Fatalf("a refused model left files: %v", err)
	}

	// The same tree ("./models/base/" names the same path): placed, the
	// hidden file left out, the bytes the same.
	if err := placeModels([]Model{base}, recipe, map[string]string{"./models/base/": src}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(recipe, "models/base/shards/model-00001.safetensors"))
	if err != nil || string(got) != "weights" {
		t.Fatalf("placed weights = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(recipe, "models/base/.cache")); !os.IsNotExist(err) {
		t.Errorf("a hidden file was placed: %v", err)
	}
}

// TestLinkOrCopyCopiesAcrossFilesystems: where a hard link cannot be
// made (another filesystem: EXDEV), the file is copied; an existing
// file is never overwritten.
func TestLinkOrCopyCopiesAcrossFilesystems(t *testing.T) {
	defer func(f func(string, string) error) { hardLink = f }(hardLink)
	hardLink = func(old, new string) error { return &os.LinkError{Op: "link", Old: old, New: new, Err: syscall.EXDEV} }
	src := filepath.Join(t.TempDir(), "w")
	if err := os.WriteFile(src, []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "a/w")
	if err := linkOrCopy(src, dst); err != nil {
		t.Fatal(err)
	}
	a, _ := os.Stat(src)
	b, err := os.Stat(dst)
	if err != nil || os.SameFile(a, b) {
		t.Fatalf("not linked: %v, same file %v", err, err == nil && os.SameFile(a, b))
	}
	if got, _ := os.ReadFile(dst); string(got) != "weights" {
		t.Fatalf("copied %q", got)
	}
	if err := linkOrCopy(src, dst); err == nil {
		t.Fatal("an existing file was overwritten")
	}
}
