package cas

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		f := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(f), 0o755)
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPutTreeIsContentAddressed(t *testing.T) {
	s, _ := Open(t.TempDir())
	a, _, err := s.PutTree(tree(t, map[string]string{"a": "1", "d/b": "2"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := s.PutTree(tree(t, map[string]string{"d/b": "2", "a": "1"}), nil)
	c, _, _ := s.PutTree(tree(t, map[string]string{"a": "1", "d/b": "3"}), nil)
	if a != b || a == c {
		t.Fatalf("tree digests: same content %s %s, other content %s", a, b, c)
	}
}

func TestActionHitNeedsEveryBlob(t *testing.T) {
	s, _ := Open(t.TempDir())
	d, tr, err := s.PutTree(tree(t, map[string]string{"model.bin": "weights", "x/tok.json": "{}"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	key := "sha256:" + strings.Repeat("1", 64)
	if err := s.PutAction(Action{Key: key, Outputs: map[string]Digest{"output": d}, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAction(key); err != nil {
		t.Fatalf("hit: %v", err)
	}
	if _, err := s.GetAction("sha256:" + strings.Repeat("2", 64)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("miss: %v", err)
	}

	// Tamper with a blob, keeping its size: the entry is no longer a hit.
	p := s.BlobPath(tr.Entries[0].Digest)
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte("WEIGHTS"), 0o644); err != nil {
		t.Fatal(err)
	}
	var ce *CorruptError
	if _, err := s.GetAction(key); !errors.As(err, &ce) {
		t.Fatalf("tampered blob: got %v, want a CorruptError", err)
	}
	probs, _, err := s.Verify(true)
	if err != nil || len(probs) != 1 {
		t.Fatalf("verify: %v %v", probs, err)
	}
	if _, err := s.GetAction(key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after repair: %v", err)
	}

	// A missing blob also fails the entry.
	d2, tr2, _ := s.PutTree(tree(t, map[string]string{"f": "content"}), nil)
	key2 := "sha256:" + strings.Repeat("3", 64)
	s.PutAction(Action{Key: key2, Outputs: map[string]Digest{"output": d2}})
	os.Remove(s.BlobPath(tr2.Entries[0].Digest))
	if _, err := s.GetAction(key2); !errors.As(err, &ce) {
		t.Fatalf("missing blob: got %v", err)
	}
}

func TestPutRefusesWrongDigest(t *testing.T) {
	s, _ := Open(t.TempDir())
	_, _, err := s.Put(strings.NewReader("abc"), Digest("sha256:"+strings.Repeat("0", 64)))
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(s.Root(), "blobs", "sha256"))
	if len(ents) != 0 {
		t.Fatalf("a blob with the wrong content was stored: %v", ents)
	}
}

func TestTreeRefusesLinksAndUnsafePaths(t *testing.T) {
	s, _ := Open(t.TempDir())
	dir := tree(t, map[string]string{"a": "1"})
	os.Symlink("/etc/passwd", filepath.Join(dir, "link"))
	if _, _, err := s.PutTree(dir, nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("symlink accepted: %v", err)
	}
	// A manifest naming ../ paths is refused on read.
	bad := []byte(`{"mediaType":"` + TreeMediaType + `","entries":[{"path":"../evil","mode":420,"size":1,"digest":"sha256:` + strings.Repeat("0", 64) + `"}]}`)
	d, _ := s.PutBytes(bad)
	if _, err := s.ReadTree(d); err == nil {
		t.Fatal("a tree with a ../ path was accepted")
	}
}

func TestGCKeepsLiveBlobs(t *testing.T) {
	s, _ := Open(t.TempDir())
	keep, _, _ := s.PutTree(tree(t, map[string]string{"k": "keep"}), nil)
	drop, _, _ := s.PutTree(tree(t, map[string]string{"d": "drop"}), nil)
	kk, kd := "sha256:"+strings.Repeat("4", 64), "sha256:"+strings.Repeat("5", 64)
	s.PutAction(Action{Key: kk, Outputs: map[string]Digest{"output": keep}, Created: time.Now()})
	s.PutAction(Action{Key: kd, Outputs: map[string]Digest{"output": drop}, Created: time.Now().Add(-48 * time.Hour)})
	res, err := s.GC(GCOptions{KeepNewerThan: 24 * time.Hour, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if res.ActionsRemoved != 1 || res.BlobsRemoved != 2 {
		t.Fatalf("gc: %+v", res)
	}
	if _, err := s.GetAction(kk); err != nil {
		t.Fatalf("kept entry lost: %v", err)
	}
}

// TestVerifyRehashesWhateverTheMemoSays pins down what the memo does and
// does not guarantee (doc.go): a blob rewritten together with its memo
// passes the quick check a cache hit makes, and `ftc cache verify`
// (Store.Verify) still finds it, since it re-hashes every blob.
func TestVerifyRehashesWhateverTheMemoSays(t *testing.T) {
	s, _ := Open(t.TempDir())
	d, tr, err := s.PutTree(tree(t, map[string]string{"model.bin": "weights"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	key := "sha256:" + strings.Repeat("4", 64)
	if err := s.PutAction(Action{Key: key, Outputs: map[string]Digest{"output": d}, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	blob := tr.Entries[0].Digest
	if err := s.VerifyBlob(blob); err != nil { // writes the memo
		t.Fatal(err)
	}
	// A forger with write access rewrites the blob, then the memo to match.
	p := s.BlobPath(blob)
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte("WEIGHTS"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.writeMemo(blob, p)
	if err := s.VerifyBlob(blob); err != nil {
		t.Fatalf("the quick check trusts a rewritten memo (doc.go says so), got %v", err)
	}
	probs, _, err := s.Verify(false)
	if err != nil || len(probs) != 1 {
		t.Fatalf("cache verify must re-hash and find the forged blob: %v %v", probs, err)
	}
}
