package pyenvs

import (
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/image"
)

// The committed requirement files are what ftc lock resolves for the
// profiles now: same top-level versions, same resolution input. (The
// full re-resolution needs the index: go run ./internal/pyenvs/pylock.)
func TestRequirementsAreCurrent(t *testing.T) {
	for _, p := range Profiles {
		e, err := Load("../..", p)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Check("../.."); err != nil {
			t.Error(err)
		}
	}
}

// A profile pin that moves makes the file stale, naming the package.
func TestCheckFindsAMovedPin(t *testing.T) {
	e, err := Load("../..", "pinned-2025q1")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range e.Requirements {
		if r.Name == "trl" {
			e.Requirements[i].Version = "0.17.0"
		}
	}
	err = e.Check("../..")
	if err == nil || !strings.Contains(err.Error(), "trl is locked at 0.16.0, the profile pins 0.17.0") || !strings.Contains(err.Error(), "resolved for input") {
		t.Fatalf("err = %v", err)
	}
}

func TestRenderParses(t *testing.T) {
	e, err := Load("../..", "current-2026")
	if err != nil {
		t.Fatal(err)
	}
	h := "sha256:" + strings.Repeat("ab", 32)
	b := e.Render([]image.Package{{Name: "torch", Version: "2.11.0", Hashes: []string{h}}})
	if !strings.Contains(string(b), "the profile names Python 3.12") {
		t.Fatalf("the header does not say the Python version differs:\n%s", b)
	}
	l, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if l.Input != e.Input() || l.Packages["torch"].Hashes[0] != h {
		t.Fatalf("%+v", l)
	}
}
