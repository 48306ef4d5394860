package envcheck

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/ftc-dev/ftc/compiler/plan"
)

func TestEntrypointsWrittenOnceReadOnlyVerified(t *testing.T) {
	root := filepath.Join(t.TempDir(), "entrypoints")
	dir, err := Entrypoints(root)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dir) != plan.EntrypointsDigest()[len("sha256:"):] {
		t.Fatalf("%s is not named by the entrypoints digest", dir)
	}
	init := filepath.Join(dir, "ftc", "__init__.py")
	st, err := os.Stat(init)
	if err != nil || st.Mode().Perm() != 0o444 {
		t.Fatalf("%s: %v %v", init, st.Mode(), err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "ftc")); st.Mode().Perm() != 0o555 {
		t.Fatalf("ftc/ is %v", st.Mode())
	}
	if _, err := os.Stat(filepath.Join(dir, "ftc", "entry.py")); err != nil {
		t.Fatal(err)
	}

	// Reused as it is: not rewritten.
	again, err := Entrypoints(root)
	if err != nil || again != dir {
		t.Fatal(again, err)
	}
	if st2, _ := os.Stat(init); !os.SameFile(st, st2) || !st2.ModTime().Equal(st.ModTime()) {
		t.Fatal("rewritten on reuse")
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}

	// A copy someone changed is replaced, never imported.
	os.Chmod(filepath.Join(dir, "ftc"), 0o755)
	os.Chmod(init, 0o644)
	if err := os.WriteFile(init, []byte("raise SystemExit('edited')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Entrypoints(root); err != nil {
		t.Fatal(err)
	}
	if err := verify(dir, plan.EntrypointsDigest()); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

func TestMaterializeRefusesWhatDoesNotMatchItsDigest(t *testing.T) {
	fsys := fstest.MapFS{"ftc/__init__.py": {Data: []byte("x = 1\n")}}
	root := t.TempDir()
	if _, err := materialize(root, fsys, "sha256:00"); err == nil {
		t.Fatal("a tree that does not match its digest was committed")
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
	d, _ := plan.TreeDigest(fsys)
	dir, err := materialize(root, fsys, d)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ftc", "__init__.py")); string(b) != "x = 1\n" {
		t.Fatal(string(b))
	}
}

// TestEntrypointsConcurrentWriters: runs that start together each get a
// complete copy; one directory is left.
func TestEntrypointsConcurrentWriters(t *testing.T) {
	root := filepath.Join(t.TempDir(), "entrypoints")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			dir, err := Entrypoints(root)
			if err == nil {
				err = verify(dir, plan.EntrypointsDigest())
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}
