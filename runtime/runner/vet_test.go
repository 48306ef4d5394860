package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/diag"
)

// TestBoundedGivesUp: a compiler call that does not return is abandoned
// with an error that says so, rather than hanging the command.
func TestBoundedGivesUp(t *testing.T) {
	defer func(b time.Duration) { EvalBound = b }(EvalBound)
	EvalBound = time.Millisecond
	block := make(chan struct{})
	defer close(block)
	_, _, err := Bounded(func() (int, diag.List, error) { <-block; return 0, nil, nil })
	if err == nil || !strings.Contains(err.Error(), "did not finish within") {
		t.Fatalf("err = %v", err)
	}
	v, _, err := Bounded(func() (int, diag.List, error) { return 7, nil, nil })
	if v != 7 || err != nil {
		t.Fatalf("got %d, %v", v, err)
	}
}

// TestLockArchs: the architectures come from the ftc.lock next to the
// recipe unless the options have them; an unreadable lock is an error
// that names it.
func TestLockArchs(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "recipe.cue")
	var o compiler.Options
	if err := LockArchs(file, &o); err != nil {
		t.Fatalf("no lock: %v", err)
	}
	if o.Archs == nil {
		t.Errorf("no lock: Archs left nil; a second call would read the lock again")
	}
	if err := os.WriteFile(filepath.Join(dir, "ftc.lock"), []byte("not a lock line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o = compiler.Options{}
	if err := LockArchs(file, &o); err == nil || !strings.Contains(err.Error(), "ftc.lock") {
		t.Errorf("a broken lock: err = %v, want one naming ftc.lock", err)
	}
}
