package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/runtime/resolve"
)

// TestPinFile: a missing pin is added, a stale one updated, a current
// one counted, a file that cannot be hashed fails; nothing is written.
func TestPinFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.jsonl", "a\n")
	write("b.jsonl", "b\n")
	a, err := resolve.PinSum(dir, &resolve.Hasher{})("a.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	src := `package recipe

x: file: {path: "a.jsonl", sha256: "` + a + `"}
y: file: {path: "b.jsonl"}
z: file: {path: "b.jsonl", sha256: "sha256:` + strings.Repeat("0", 64) + `"}
w: file: {path: "missing.jsonl"}
`
	write("r.cue", src)
	file := filepath.Join(dir, "r.cue")
	p, err := PinFile(file, &resolve.Hasher{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Added != 1 || p.Updated != 1 || p.Current != 1 || !p.Failed || !p.Changed() {
		t.Errorf("got added %d, updated %d, current %d, failed %v", p.Added, p.Updated, p.Current, p.Failed)
	}
	if b, _ := os.ReadFile(file); string(b) != src {
		t.Errorf("PinFile wrote the file")
	}
	if !strings.Contains(string(p.Out), `y: file: {path: "b.jsonl", sha256:`) {
		t.Errorf("no pin added:\n%s", p.Out)
	}
}
