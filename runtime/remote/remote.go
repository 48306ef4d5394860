package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ftc-dev/ftc/runtime/cas"
)

// Media types of the artifact.
const (
	ArtifactType  = "application/vnd.ftc.action.v1+json"
	BlobMediaType = "application/vnd.ftc.blob.v1"
)

// Cache is a remote cache at an OCI repository.
type Cache struct {
	repo  name.Repository
	opts  []remote.Option
	Store *cas.Store
	// Progress, when set, is told about each entry transferred.
	Progress func(msg string)
	// Bytes, when set, is told of the blob bytes as they are sent or
	// received (n more each call), for a byte count and a rate. Blobs the
	// other side has already are not sent and not counted. It may be
	// called from the transport's goroutines.
	Bytes func(n int64)
}

// counted passes the bytes read through r on to the Bytes callback.
func (c *Cache) counted(r io.ReadCloser) io.ReadCloser {
	if c.Bytes == nil {
		return r
	}
	return &countingReader{ReadCloser: r, add: c.Bytes}
}

type countingReader struct {
	io.ReadCloser
	add func(int64)
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		r.add(int64(n))
	}
	return n, err
}

func (c *Cache) progress(format string, args ...any) {
	if c.Progress != nil {
		c.Progress(fmt.Sprintf(format, args...))
	}
}

// Options tune a Cache.
type Options struct {
	// Transport overrides the HTTP transport (tests count requests).
	Transport http.RoundTripper
}

// Open returns the cache at repository ref (e.g. "registry:5000/ftc").
// Loopback registries may be plain HTTP.
func Open(ctx context.Context, ref string, store *cas.Store, o Options) (*Cache, error) {
	var nopts []name.Option
	if isLoopback(ref) {
		nopts = append(nopts, name.Insecure)
	}
	repo, err := name.NewRepository(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("remote cache %q: %w", ref, err)
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	if o.Transport != nil {
		opts = append(opts, remote.WithTransport(o.Transport))
	}
	return &Cache{repo: repo, opts: opts, Store: store}, nil
}

func isLoopback(ref string) bool {
	host := strings.SplitN(ref, "/", 2)[0]
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Tag is the tag of a stage key.
func Tag(key string) string { return strings.Replace(key, ":", "-", 1) }

// blobLayer serves a store blob as an uncompressed layer.
type blobLayer struct {
	c    *Cache
	d    cas.Digest
	size int64
	mt   types.MediaType
}

func (l *blobLayer) Digest() (v1.Hash, error)             { return v1.NewHash(string(l.d)) }
func (l *blobLayer) DiffID() (v1.Hash, error)             { return v1.NewHash(string(l.d)) }
func (l *blobLayer) Size() (int64, error)                 { return l.size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error)  { return l.mt, nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error)   { return l.open() }
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) { return l.open() }

func (l *blobLayer) open() (io.ReadCloser, error) {
	r, err := l.c.Store.OpenBlob(l.d)
	if err != nil {
		return nil, err
	}
	return l.c.counted(r), nil
}

// manifest is an OCI image manifest carrying an artifact.
type manifest struct {
	raw []byte
}

func (m manifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m manifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// PushStats says what a push transferred.
type PushStats struct {
	Entries        int
	EntriesSkipped int
}

// Push uploads the entries of keys (all local entries when keys is nil).
func (c *Cache) Push(ctx context.Context, keys []string) (PushStats, error) {
	var st PushStats
	if keys == nil {
		acts, err := c.Store.Actions()
		if err != nil {
			return st, err
		}
		for _, a := range acts {
			keys = append(keys, a.Key)
		}
	}
	pusher, err := remote.NewPusher(c.opts...)
	if err != nil {
		return st, err
	}
	for _, k := range keys {
		a, err := c.Store.GetAction(k)
		if errors.Is(err, cas.ErrNotFound) {
			continue
		}
		if err != nil {
			return st, fmt.Errorf("%s: %w", k, err)
		}
		pushed, err := c.pushOne(ctx, pusher, a)
		if err != nil {
			return st, fmt.Errorf("pushing %s: %w", k, err)
		}
		if pushed {
			st.Entries++
		} else {
			st.EntriesSkipped++
		}
	}
	return st, nil
}

func (c *Cache) pushOne(ctx context.Context, pusher *remote.Pusher, a *cas.Action) (bool, error) {
	cfg, err := json.Marshal(a)
	if err != nil {
		return false, err
	}
	cfgDigest, err := c.Store.PutBytes(cfg)
	if err != nil {
		return false, err
	}
	var layers []*blobLayer
	for _, out := range sortedOutputs(a) {
		td := a.Outputs[out]
		t, err := c.Store.ReadTree(td)
		if err != nil {
			return false, err
		}
		raw, _ := c.Store.ReadBlob(td)
		layers = append(layers, &blobLayer{c, td, int64(len(raw)), types.MediaType(cas.TreeMediaType)})
		for _, e := range t.Entries {
			layers = append(layers, &blobLayer{c, e.Digest, e.Size, BlobMediaType})
		}
	}
	layers = dedupe(layers)
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: ArtifactType, Size: int64(len(cfg)), Digest: mustHash(string(cfgDigest))},
		Annotations:   map[string]string{"dev.ftc.key": a.Key, "dev.ftc.kind": a.Kind},
	}
	for _, l := range layers {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: l.mt, Size: l.size, Digest: mustHash(string(l.d))})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return false, err
	}
	tag := c.repo.Tag(Tag(a.Key))
	want := v1.Hash{Algorithm: "sha256", Hex: sha256Hex(raw)}
	if d, err := remote.Head(tag, c.opts...); err == nil && d.Digest == want {
		return false, nil // the registry has this entry already
	}
	for _, l := range layers {
		if err := pusher.Upload(ctx, c.repo, l); err != nil {
			return false, err
		}
	}
	if err := pusher.Upload(ctx, c.repo, &blobLayer{c, cfgDigest, int64(len(cfg)), ArtifactType}); err != nil {
		return false, err
	}
	if err := pusher.Push(ctx, tag, manifest{raw: raw}); err != nil {
		return false, err
	}
	var size int64
	for _, l := range layers {
		size += l.size
	}
	c.progress("pushed %s (%s): %d blobs, %d bytes (blobs the registry had were skipped)", a.Name, Tag(a.Key)[:19], len(layers), size)
	return true, nil
}

// PullStats says what a pull transferred.
type PullStats struct {
	Entries      int
	Missing      int
	BlobsFetched int
	BlobsLocal   int
}

// Pull fetches the entries of keys that the registry has and the local
// store lacks. Every blob is verified against its digest before it is
// committed; the action entry is written last.
func (c *Cache) Pull(ctx context.Context, keys []string) (PullStats, error) {
	var st PullStats
	for _, k := range keys {
		if _, err := c.Store.GetAction(k); err == nil {
			continue
		}
		ok, err := c.pullOne(ctx, k, &st)
		if err != nil {
			return st, fmt.Errorf("pulling %s: %w", k, err)
		}
		if ok {
			st.Entries++
		} else {
			st.Missing++
		}
	}
	return st, nil
}

func (c *Cache) pullOne(ctx context.Context, key string, st *PullStats) (bool, error) {
	desc, err := remote.Get(c.repo.Tag(Tag(key)), c.opts...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return false, nil // the registry does not have this entry
		}
		return false, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return false, err
	}
	if m.Config.MediaType != ArtifactType {
		return false, fmt.Errorf("tag %s is not an ftc cache entry (config %s)", Tag(key), m.Config.MediaType)
	}
	for _, l := range append(m.Layers, m.Config) {
		d := cas.Digest(l.Digest.String())
		if c.Store.HasBlob(d) && c.Store.VerifyBlob(d) == nil {
			st.BlobsLocal++
			continue
		}
		if err := c.fetch(d); err != nil {
			return false, err
		}
		st.BlobsFetched++
	}
	cfg, err := c.Store.ReadBlob(cas.Digest(m.Config.Digest.String()))
	if err != nil {
		return false, err
	}
	var a cas.Action
	if err := json.Unmarshal(cfg, &a); err != nil {
		return false, err
	}
	if a.Key != key {
		return false, fmt.Errorf("entry under tag %s claims key %s", Tag(key), a.Key)
	}
	if err := c.Store.PutAction(a); err != nil { // verifies every tree and blob first
		return false, err
	}
	c.progress("pulled %s (%s)", a.Name, Tag(key)[:19])
	return true, nil
}

func (c *Cache) fetch(d cas.Digest) error {
	l, err := remote.Layer(c.repo.Digest(string(d)), c.opts...)
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, _, err = c.Store.Put(c.counted(rc), d)
	return err
}

func sortedOutputs(a *cas.Action) []string {
	var out []string
	for k := range a.Outputs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func dedupe(ls []*blobLayer) []*blobLayer {
	seen := map[cas.Digest]bool{}
	var out []*blobLayer
	for _, l := range ls {
		if !seen[l.d] {
			seen[l.d] = true
			out = append(out, l)
		}
	}
	return out
}

func mustHash(s string) v1.Hash {
	h, err := v1.NewHash(s)
	if err != nil {
		panic(err)
	}
	return h
}

// IsLoopback reports whether a registry reference names a loopback host,
// which may be plain HTTP (ftc build pushes there too).
func IsLoopback(ref string) bool { return isLoopback(ref) }
