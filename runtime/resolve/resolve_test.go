package resolve

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/ident"
	"github.com/ftc-dev/ftc/internal/hubtest"
)

func TestHasherMemoSeesChanges(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "data.jsonl")
	os.WriteFile(f, []byte("one\n"), 0o644)
	h := &Hasher{MemoDir: filepath.Join(dir, "memo")}
	reads := 0
	h.Progress = func(string, int64, int64) { reads++ }
	a, err := h.SHA256(f)
	if err != nil || a != "2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806" {
		t.Fatalf("sha256 = %s, %v", a, err)
	}
	if _, err := h.SHA256(f); err != nil || reads != 1 {
		t.Fatalf("unchanged file was read again (%d reads)", reads)
	}
	os.WriteFile(f, []byte("two\n"), 0o644)
	b, _ := h.SHA256(f)
	if b == a || reads != 2 {
		t.Fatalf("changed file: %s (reads %d)", b, reads)
	}
}

// A deferred hasher writes no memo until Flush, and uses the ones it holds.
func TestHasherDefersMemos(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "data.jsonl")
	os.WriteFile(f, []byte("one\n"), 0o644)
	memo := filepath.Join(dir, "memo")
	h := &Hasher{MemoDir: memo, Defer: true}
	reads := 0
	h.Progress = func(string, int64, int64) { reads++ }
	for i := 0; i < 2; i++ {
		if _, err := h.SHA256(f); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(memo); err == nil || reads != 1 {
		t.Fatalf("before Flush: memo dir %v, %d reads (want none written, 1 read)", err, reads)
	}
	h.Flush()
	if ents, _ := os.ReadDir(memo); len(ents) != 1 {
		t.Fatalf("after Flush: %d memos, want 1", len(ents))
	}
	if _, err := (&Hasher{MemoDir: memo, Progress: h.Progress}).SHA256(f); err != nil || reads != 1 {
		t.Fatalf("the flushed memo was not used (%d reads, %v)", reads, err)
	}
}

func TestLockRoundTripIsSorted(t *testing.T) {
	l := &Lock{Pins: map[Ref]string{
		{Kind: "model", Repo: "b/m", Revision: "main"}: strings.Repeat("b", 40),
		{Kind: "dataset", Repo: "a/d", Revision: "v1"}: strings.Repeat("a", 40),
		{Kind: "model", Repo: "a/m", Revision: "main"}: strings.Repeat("c", 40),
	}}
	p := filepath.Join(t.TempDir(), LockFile)
	if err := l.Write(p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	want := []string{"dataset a/d@v1 " + strings.Repeat("a", 40), "model a/m@main " + strings.Repeat("c", 40), "model b/m@main " + strings.Repeat("b", 40)}
	if strings.Join(lines[2:], "|") != strings.Join(want, "|") {
		t.Fatalf("lock:\n%s", b)
	}
	back, err := ReadLock(p)
	if err != nil || len(back.Pins) != 3 {
		t.Fatalf("read back: %v %v", back, err)
	}
	if string(back.Bytes()) != string(b) {
		t.Fatal("lock does not round-trip byte for byte")
	}
}

func recipe(dir string, sum string) *config.Recipe {
	m := &config.Model{Repo: "Qwen/Qwen2.5-0.5B-Instruct", Revision: "main", Arch: config.Architecture{Family: "qwen2"}}
	return &config.Recipe{
		Dir:      dir,
		Datasets: map[string]config.Dataset{"d": {Name: "d", File: &config.FileSource{Path: "d.jsonl", SHA256: sum}}},
		Stages:   map[string]config.Stage{"s": {Name: "s", Method: "sft", Model: m}},
	}
}

func TestResolvePinsThroughHubAndLock(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "d.jsonl"), []byte("one\n"), 0o644)
	sum := "2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806"
	commit := strings.Repeat("e", 40)
	// A fake of the Hub's revision API (the real Hub is out of reach here).
	calls := 0
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if r.URL.Path != "/api/models/Qwen/Qwen2.5-0.5B-Instruct/revision/main" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"sha": "` + commit + `"}`))
	}))
	defer hub.Close()

	r := recipe(dir, sum)
	res, err := Resolve(context.Background(), r, Options{Hub: &Hub{Endpoint: hub.URL}, Hasher: &Hasher{}})
	if err != nil {
		t.Fatal(err)
	}
	// The model pinned now has its config.json read too: this fake has
	// none, which is a warning, since the recipe gives the architecture.
	if !res.LockChanged || r.Stages["s"].Model.Revision != commit || calls != 2 ||
		len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "404 Not Found; the recipe's arch for it is not checked against it") {
		t.Fatalf("resolution: %+v, revision %s, %d calls", res, r.Stages["s"].Model.Revision, calls)
	}
	lock := UpdatedLock(nil, res)

	// Offline with the lock: same pin, no call.
	r2 := recipe(dir, sum)
	if _, err := Resolve(context.Background(), r2, Options{Lock: lock, Hasher: &Hasher{}}); err != nil {
		t.Fatal(err)
	}
	if r2.Stages["s"].Model.Revision != commit || calls != 2 {
		t.Fatal("the lock was not used")
	}
	// Offline without a lock: a clear error.
	_, err = Resolve(context.Background(), recipe(dir, sum), Options{Hasher: &Hasher{}})
	if err == nil || !strings.Contains(err.Error(), "not pinned") {
		t.Fatalf("want an unpinned error, got %v", err)
	}
}

func TestResolveRefusesChangedData(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "d.jsonl"), []byte("changed\n"), 0o644)
	r := recipe(dir, strings.Repeat("0", 64))
	r.Stages["s"].Model.Revision = strings.Repeat("f", 40)
	_, err := Resolve(context.Background(), r, Options{Hasher: &Hasher{}})
	if err == nil || !strings.Contains(err.Error(), "but the recipe pins") {
		t.Fatalf("got %v", err)
	}
}

// TestResolveRefusesEscapingData: `ftc run` checks data files again, as
// vet did: a symlink out of the recipe's directory is refused unless it
// leads into a declared data root, and then the file is used where the
// link leads (content-checked as any other).
func TestResolveRefusesEscapingData(t *testing.T) {
	tmp := t.TempDir()
	dir, volume := filepath.Join(tmp, "recipe"), filepath.Join(tmp, "volume")
	os.MkdirAll(dir, 0o755)
	os.MkdirAll(volume, 0o755)
	os.WriteFile(filepath.Join(volume, "d.jsonl"), []byte("one\n"), 0o644)
	if err := os.Symlink(filepath.Join(volume, "d.jsonl"), filepath.Join(dir, "d.jsonl")); err != nil {
		t.Fatal(err)
	}
	sum := "2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806"
	r := recipe(dir, sum)
	r.Stages["s"].Model.Revision = strings.Repeat("f", 40)
	_, err := Resolve(context.Background(), r, Options{Hasher: &Hasher{}})
	if err == nil || !strings.Contains(err.Error(), `dataset d: "d.jsonl" leaves the recipe's directory through the symlink d.jsonl -> `+filepath.Join(volume, "d.jsonl")) ||
		!strings.Contains(err.Error(), "--data-root "+volume) {
		t.Fatalf("got %v", err)
	}

	// /etc/passwd is refused whatever its content.
	os.Remove(filepath.Join(dir, "d.jsonl"))
	os.Symlink("/etc/passwd", filepath.Join(dir, "d.jsonl"))
	if _, err := Resolve(context.Background(), r, Options{Hasher: &Hasher{}}); err == nil || !strings.Contains(err.Error(), "-> /etc/passwd") {
		t.Fatalf("got %v", err)
	}

	// Declared, the link is followed and the run reads the file it leads to.
	os.Remove(filepath.Join(dir, "d.jsonl"))
	os.Symlink(filepath.Join(volume, "d.jsonl"), filepath.Join(dir, "d.jsonl"))
	r.DataRoots = []string{volume}
	res, err := Resolve(context.Background(), r, Options{Hasher: &Hasher{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Files["d.jsonl"]; got != filepath.Join(volume, "d.jsonl") {
		t.Errorf("the run reads %s, want the file the link leads to", got)
	}
}

// TestLockRecordsArchitecture: ftc lock's pinning (PinModels, all
// configs) reads a model's config.json at its commit into the lock, as
// an arch line that reads back byte for byte, and the compiler finds the
// facts by the revision as written and by the commit. A model without an
// architecture whose config.json cannot be read is an error.
func TestLockRecordsArchitecture(t *testing.T) {
	hub := hubtest.New()
	defer hub.Close()
	repo := "Qwen/Qwen2.5-0.5B-Instruct"
	r := recipe(t.TempDir(), "")
	r.Stages["s"].Model.Arch = config.Architecture{}
	res, err := PinModels(context.Background(), r, Options{Hub: &Hub{Endpoint: hub.URL}, AllConfigs: true})
	if err != nil {
		t.Fatal(err)
	}
	commit := hubtest.Commit(repo)
	a, ok := res.Archs[ModelAt{Repo: repo, Commit: commit}]
	if !ok || a.Facts.ModelType != "qwen2" || a.Facts.Params() != 494032768 || !ident.IsDigest(a.ConfigSHA256) {
		t.Fatalf("archs: %+v", res.Archs)
	}
	lock := UpdatedLock(nil, res)
	p := filepath.Join(t.TempDir(), LockFile)
	if err := lock.Write(p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	back, err := ReadLock(p)
	if err != nil || string(back.Bytes()) != string(b) {
		t.Fatalf("read back: %v\n%s", err, b)
	}
	if !strings.Contains(string(b), "\narch "+repo+"@"+commit+" "+a.ConfigSHA256+" model_type=qwen2 layers=24 ") {
		t.Errorf("lock:\n%s", b)
	}
	facts := back.ModelFacts()
	for _, rev := range []string{"main", commit} {
		if f, ok := facts[config.HubRef{Kind: "model", Repo: repo, Revision: rev}]; !ok || f.Facts != a.Facts || f.At != repo+"@"+commit {
			t.Errorf("facts at %s: %+v", rev, f)
		}
	}

	// A second pass with the lock reads nothing.
	n := len(hub.Calls())
	r = recipe(t.TempDir(), "")
	r.Stages["s"].Model.Arch = config.Architecture{}
	if res, err := PinModels(context.Background(), r, Options{Lock: back, Hub: &Hub{Endpoint: hub.URL}, AllConfigs: true}); err != nil || res.LockChanged || len(hub.Calls()) != n {
		t.Fatalf("with the lock: %v, %+v, calls %v", err, res, hub.Calls()[n:])
	}

	// A model the Hub has no config.json for, and no arch: an error.
	r = recipe(t.TempDir(), "")
	r.Stages["s"].Model.Arch = config.Architecture{}
	r.Stages["s"].Model.Revision = strings.Repeat("a", 40)
	if _, err := PinModels(context.Background(), r, Options{Hub: &Hub{Endpoint: hub.URL}, AllConfigs: true}); err == nil ||
		!strings.Contains(err.Error(), "the Hub answered 404 Not Found (the recipe gives no arch for it") {
		t.Fatalf("got %v", err)
	}
}

// TestResolveChecksSetsOfFiles: a dataset naming a directory or a glob is
// checked file by file against the digest of their sha256sum lines, and
// every file is handed to the run.
func TestResolveChecksSetsOfFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "shards", "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "shards", "a.jsonl"), []byte("one\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "shards", "sub", "b.jsonl"), []byte("two\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "shards", "notes.txt"), []byte("not data\n"), 0o644)
	// sha256sum shards/a.jsonl shards/sub/b.jsonl | sha256sum
	lines := "2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806  shards/a.jsonl\n" +
		"27dd8ed44a83ff94d557f9fd0412ed5a8cbca69ea04922d88c01184a07300a5a  shards/sub/b.jsonl\n"
	sum := fmt.Sprintf("%x", sha256.Sum256([]byte(lines)))
	for _, path := range []string{"shards", "shards/*.jsonl"} {
		r := recipe(dir, sum)
		r.Datasets["d"].File.Path = path
		r.Stages["s"].Model.Revision = strings.Repeat("f", 40)
		res, err := Resolve(context.Background(), r, Options{Hasher: &Hasher{}})
		if path == "shards/*.jsonl" {
			// The glob does not reach into sub/: another set, another digest.
			if err == nil || !strings.Contains(err.Error(), "shards/*.jsonl (1 files)") {
				t.Fatalf("glob: got %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got := res.Sets["shards"]
		if len(got) != 2 || got["shards/a.jsonl"] != filepath.Join(dir, "shards", "a.jsonl") || got["shards/sub/b.jsonl"] == "" {
			t.Fatalf("sets: %v", res.Sets)
		}
	}
	os.WriteFile(filepath.Join(dir, "shards", "a.jsonl"), []byte("changed\n"), 0o644)
	r := recipe(dir, sum)
	r.Datasets["d"].File.Path = "shards"
	r.Stages["s"].Model.Revision = strings.Repeat("f", 40)
	if _, err := Resolve(context.Background(), r, Options{Hasher: &Hasher{}}); err == nil || !strings.Contains(err.Error(), "but the recipe pins") {
		t.Fatalf("changed shard: got %v", err)
	}
}

// TestResolveChecksLocalModelTree: a local model directory is hashed
// again at run time, as vet hashed it, and its files recorded by their
// paths inside it; a file changed since vet is refused.
func TestResolveChecksLocalModelTree(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "d.jsonl"), []byte("one\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "models", "tiny", "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "models", "tiny", "config.json"), []byte("one\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "models", "tiny", "sub", "w.bin"), []byte("two\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "models", "tiny", ".hidden"), []byte("x\n"), 0o644)
	// cd models/tiny && sha256sum config.json sub/w.bin | sha256sum
	lines := "2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806  config.json\n" +
		"27dd8ed44a83ff94d557f9fd0412ed5a8cbca69ea04922d88c01184a07300a5a  sub/w.bin\n"
	tree := fmt.Sprintf("%x", sha256.Sum256([]byte(lines)))
	local := func() *config.Recipe {
		r := recipe(dir, "2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806")
		r.Stages["s"].Model.Repo, r.Stages["s"].Model.Path = "", "models/tiny"
		r.ModelTrees = map[string]config.ModelTree{"models/tiny": {SHA256: tree}}
		return r
	}
	res, err := Resolve(context.Background(), local(), Options{Hasher: &Hasher{}})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Models["models/tiny"]
	if len(got) != 2 || got["config.json"] != filepath.Join(dir, "models", "tiny", "config.json") || got["sub/w.bin"] == "" {
		t.Fatalf("models: %v", res.Models)
	}
	os.WriteFile(filepath.Join(dir, "models", "tiny", "sub", "w.bin"), []byte("changed\n"), 0o644)
	if _, err := Resolve(context.Background(), local(), Options{Hasher: &Hasher{}}); err == nil || !strings.Contains(err.Error(), "model models/tiny: the directory has tree sha256") {
		t.Fatalf("changed weights: got %v", err)
	}
}
