package envcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/plan"
)

// TestPruneEntrypointsKeepsThisFtcs: another version's read-only copy and
// an interrupted write go; this ftc's copy stays and still verifies.
func TestPruneEntrypointsKeepsThisFtcs(t *testing.T) {
	root := filepath.Join(t.TempDir(), "entrypoints")
	mine, err := Entrypoints(root)
	if err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(root, strings.Repeat("0", 64))
	if err := os.MkdirAll(filepath.Join(old, "ftc"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(old, "ftc", "entry.py"), []byte("print('old')\n"), 0o444)
	if err := readOnly(old); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, ".tmp-123"), 0o755)
	before, _ := DirUsage(root)
	if before.Entries != 2 {
		t.Fatalf("entries before: %d, want 2 (hidden leftovers not counted)", before.Entries)
	}
	freed, err := PruneEntrypoints(root)
	if err != nil {
		t.Fatal(err)
	}
	if freed.Entries != 2 || freed.Bytes == 0 {
		t.Errorf("freed %+v, want the old copy and the leftover", freed)
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 1 || ents[0].Name() != strings.TrimPrefix(plan.EntrypointsDigest(), "sha256:") {
		t.Fatalf("left %v, want only this ftc's copy", ents)
	}
	if err := verify(mine, plan.EntrypointsDigest()); err != nil {
		t.Errorf("this ftc's copy no longer verifies: %v", err)
	}
}
