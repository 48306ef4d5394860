package resolve

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/internal/hubtest"
)

// TestLockModels: the lock is written with the pins and architectures
// read now, Added names the new pins only, and a second pass writes
// nothing; a lock that cannot be written is a WriteError.
func TestLockModels(t *testing.T) {
	hub := hubtest.New()
	defer hub.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, LockFile)
	r := recipe(dir, "")
	r.Stages["s"].Model.Arch = config.Architecture{}
	res, err := LockModels(context.Background(), r, &Lock{}, path, &Hub{Endpoint: hub.URL})
	if err != nil || !res.LockChanged || len(res.Archs) != 1 || len(res.Added) != len(res.Pins) {
		t.Fatalf("LockModels = %+v, %v", res, err)
	}
	lock, err := ReadLock(path)
	if err != nil || len(lock.Archs) != 1 {
		t.Fatalf("written lock: %+v, %v", lock, err)
	}
	before, _ := os.ReadFile(path)
	r = recipe(dir, "")
	r.Stages["s"].Model.Arch = config.Architecture{}
	res, err = LockModels(context.Background(), r, lock, path, &Hub{Endpoint: hub.URL})
	after, _ := os.ReadFile(path)
	if err != nil || res.LockChanged || len(res.Added) != 0 || string(before) != string(after) {
		t.Fatalf("second pass: %+v, %v", res, err)
	}

	r = recipe(dir, "")
	r.Stages["s"].Model.Arch = config.Architecture{}
	var we *WriteError
	if _, err := LockModels(context.Background(), r, &Lock{}, filepath.Join(dir, "no", "such", LockFile), &Hub{Endpoint: hub.URL}); !errors.As(err, &we) {
		t.Fatalf("unwritable lock: %v, want a WriteError", err)
	}
}

func TestPinSum(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("one\n"), 0o644)
	sum := PinSum(dir, &Hasher{})
	if d, err := sum("a.txt"); err != nil || d != "2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806" {
		t.Errorf("a.txt: %s, %v", d, err)
	}
	if _, err := sum("../a.txt"); err == nil || !strings.Contains(err.Error(), "not a path inside the recipe's directory") {
		t.Errorf("../a.txt: %v", err)
	}
}

func TestReplaceFileKeepsMode(t *testing.T) {
	f := filepath.Join(t.TempDir(), "recipe.cue")
	os.WriteFile(f, []byte("old"), 0o600)
	if err := ReplaceFile(f, []byte("new")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f)
	fi, _ := os.Stat(f)
	if string(b) != "new" || fi.Mode().Perm() != 0o600 {
		t.Errorf("%q, mode %v", b, fi.Mode())
	}
	if ents, _ := os.ReadDir(filepath.Dir(f)); len(ents) != 1 {
		t.Errorf("left %d files", len(ents))
	}
}
