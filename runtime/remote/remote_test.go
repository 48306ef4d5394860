package remote_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/internal/registrytest"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/remote"
)

// counting counts blob upload sessions (POST .../blobs/uploads/).
type counting struct {
	uploads atomic.Int64
	puts    atomic.Int64
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads") {
		c.uploads.Add(1)
	}
	if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
		c.puts.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// entry makes a store with one action whose output is a small tree.
func entry(t *testing.T, root string) (*cas.Store, string) {
	t.Helper()
	s, err := cas.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "adapter.bin"), []byte("weights"), 0o644)
	os.MkdirAll(filepath.Join(out, "tok"), 0o755)
	os.WriteFile(filepath.Join(out, "tok", "vocab.json"), []byte(`{"a":1}`), 0o644)
	d, _, err := s.PutTree(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := "sha256:" + strings.Repeat("ab", 32)
	if err := s.PutAction(cas.Action{Key: key, Kind: "sft", Name: "sft", Outputs: map[string]cas.Digest{"output": d}, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return s, key
}

func testRoundTrip(t *testing.T, addr string) {
	ctx := context.Background()
	src, key := entry(t, t.TempDir())
	tr := &counting{}
	c, err := remote.Open(ctx, addr+"/ftc/cache", src, remote.Options{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	var pushed atomic.Int64
	c.Bytes = func(n int64) { pushed.Add(n) }
	st, err := c.Push(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 1 || tr.uploads.Load() == 0 {
		t.Fatalf("first push: %+v, %d uploads", st, tr.uploads.Load())
	}

	// A second push uploads no blob and no manifest.
	tr2 := &counting{}
	c2, _ := remote.Open(ctx, addr+"/ftc/cache", src, remote.Options{Transport: tr2})
	var pushed2 atomic.Int64
	c2.Bytes = func(n int64) { pushed2.Add(n) }
	st, err = c2.Push(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr2.uploads.Load() != 0 || tr2.puts.Load() != 0 || st.EntriesSkipped != 1 {
		t.Fatalf("second push uploaded %d blobs and %d manifests (%+v)", tr2.uploads.Load(), tr2.puts.Load(), st)
	}
	if pushed2.Load() != 0 {
		t.Errorf("second push counted %d bytes, want 0", pushed2.Load())
	}

	// Pull into an empty store: the entry verifies and its tree is whole.
	dst, err := cas.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c3, _ := remote.Open(ctx, addr+"/ftc/cache", dst, remote.Options{})
	var pulled atomic.Int64
	c3.Bytes = func(n int64) { pulled.Add(n) }
	pst, err := c3.Pull(ctx, []string{key, "sha256:" + strings.Repeat("cd", 32)})
	if err != nil {
		t.Fatal(err)
	}
	if pst.Entries != 1 || pst.Missing != 1 || pst.BlobsFetched == 0 {
		t.Fatalf("pull: %+v", pst)
	}
	// The bytes counted are the blobs moved: the entry's config, its tree
	// and its two files, the same both ways.
	u, err := dst.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	if pushed.Load() != u.Bytes || pulled.Load() != u.Bytes {
		t.Errorf("counted %d bytes pushed and %d pulled, want the %d bytes of the blobs", pushed.Load(), pulled.Load(), u.Bytes)
	}
	a, err := dst.GetAction(key)
	if err != nil {
		t.Fatal(err)
	}
	m := filepath.Join(t.TempDir(), "m")
	if err := dst.Materialize(a.Outputs["output"], m); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(m, "tok", "vocab.json")); string(b) != `{"a":1}` {
		t.Fatalf("pulled file content %q", b)
	}
	// Pulling again fetches nothing.
	pulled.Store(0)
	pst, err = c3.Pull(ctx, []string{key})
	if err != nil || pst.BlobsFetched != 0 || pulled.Load() != 0 {
		t.Fatalf("second pull fetched %d blobs, %d bytes (%v)", pst.BlobsFetched, pulled.Load(), err)
	}
}

func TestRoundTripDockerRegistry(t *testing.T)    { testRoundTrip(t, registrytest.DockerRegistry(t)) }
func TestRoundTripInProcessRegistry(t *testing.T) { testRoundTrip(t, registrytest.InProcess(t)) }

func TestTagOfKey(t *testing.T) {
	k := "sha256:" + strings.Repeat("0", 64)
	if got := remote.Tag(k); got != "sha256-"+strings.Repeat("0", 64) || len(got) > 128 {
		t.Fatalf("Tag = %q", got)
	}
}
