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
	b, sd := e.Render([]image.Package{{Name: "torch", Version: "2.11.0", Hashes: []string{h}}})
	if sd != nil {
		t.Fatalf("an sdist file for a closure of wheels:\n%s", sd)
	}
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

// A closure with deepspeed (an sdist, image.SourceBuilt) renders it into
// a file of its own, whose header gives pyvenv.sh pip's options and the
// build's environment; the wheels' file does not name it.
func TestRenderSdists(t *testing.T) {
	e, err := Load("../..", "pinned-2025q1")
	if err != nil {
		t.Fatal(err)
	}
	h := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	w, sd := e.Render([]image.Package{
		{Name: "deepspeed", Version: "0.16.2", Hashes: []string{h("a")}, Sdist: true},
		{Name: "torch", Version: "2.5.0", Hashes: []string{h("b")}},
	})
	if strings.Contains(string(w), "\ndeepspeed==") {
		t.Fatalf("the wheels' file names the sdist:\n%s", w)
	}
	for _, want := range []string{
		"\n# pip-args --require-hashes --no-deps --no-binary=deepspeed --no-build-isolation --use-pep517\n",
		"\n# build-env DS_ACCELERATOR=cpu DS_BUILD_OPS=0\n",
		"\ndeepspeed==0.16.2 --hash=sha256:" + strings.Repeat("a", 64) + "\n",
		"\n# input " + e.Input() + "\n",
	} {
		if !strings.Contains(string(sd), want) {
			t.Errorf("the sdists' file lacks %q:\n%s", want, sd)
		}
	}
	l, err := Parse(sd)
	if err != nil || l.Packages["deepspeed"].Version != "0.16.2" || len(l.Packages) != 1 {
		t.Fatalf("%+v %v", l, err)
	}
}
