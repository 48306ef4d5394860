package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/compiler/key"
)

// Options configure a Builder.
type Options struct {
	// BuildKit is the daemon's address (see Address). The daemon is
	// contacted only when something must be solved.
	BuildKit string
	// Cache is the directory environment images are kept in, one OCI
	// layout per environment key.
	Cache string
	// Wheels is a local directory of wheels to install (and resolve) from,
	// without network. IndexURL is a package index used otherwise; with
	// neither, pip's default index.
	Wheels   string
	IndexURL string
	// NoCache solves the environment again even when it is cached, and
	// has BuildKit run its steps again rather than reuse its own cache.
	NoCache bool
	// Progress receives BuildKit's display and push progress; nil
	// discards it. ProgressMode is "auto", "plain", "tty" or "quiet".
	Progress     io.Writer
	ProgressMode string
}

// Builder builds images from specs.
type Builder struct {
	o Options
}

// New returns a Builder.
func New(o Options) *Builder { return &Builder{o: o} }

// Result is a built image.
type Result struct {
	Image  v1.Image
	Digest v1.Hash
	// EnvironmentKey is the environment image's cache key, and
	// EnvironmentCached whether it came from the cache.
	EnvironmentKey    key.Key
	EnvironmentCached bool
}

// Build builds spec's image: the environment from the cache or BuildKit,
// the ftc layers appended.
func (b *Builder) Build(ctx context.Context, spec *image.Spec) (*Result, error) {
	env, k, cached, err := b.environment(ctx, spec)
	if err != nil {
		return nil, err
	}
	img, err := assemble(env, spec)
	if err != nil {
		return nil, fmt.Errorf("appending ftc layers: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	return &Result{Image: img, Digest: d, EnvironmentKey: k, EnvironmentCached: cached}, nil
}

func (b *Builder) source() source {
	return source{wheels: b.o.Wheels, indexURL: b.o.IndexURL, noCache: b.o.NoCache}
}

// environment returns the environment image: from the cache when its key
// is there and whole, else solved by BuildKit into a temporary layout
// that is renamed into place, so the cache never holds a partial image.
func (b *Builder) environment(ctx context.Context, spec *image.Spec) (v1.Image, key.Key, bool, error) {
	k, err := spec.EnvironmentKey()
	if err != nil {
		return nil, "", false, err
	}
	root := filepath.Join(b.o.Cache, "env")
	dir := filepath.Join(root, k.Hex())
	if !b.o.NoCache {
		if img, err := openLayoutImage(dir); err == nil {
			touch(dir, time.Now()) // a use, for PruneEnvironments
			return img, k, true, nil
		}
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, "", false, err
	}
	tmp, err := os.MkdirTemp(root, k.Hex()[:12]+".tmp-")
	if err != nil {
		return nil, "", false, err
	}
	defer os.RemoveAll(tmp)
	c, err := connect(ctx, Address(b.o.BuildKit))
	if err != nil {
		return nil, "", false, err
	}
	defer c.Close()
	if err := solveEnvironment(ctx, c, spec, b.source(), tmp, b.o.Progress, b.o.ProgressMode); err != nil {
		return nil, "", false, fmt.Errorf("building the environment image: %w", err)
	}
	if _, err := openLayoutImage(tmp); err != nil {
		return nil, "", false, fmt.Errorf("environment image from BuildKit: %w", err)
	}
	if b.o.NoCache {
		// Replace the old copy only now that the new one is whole.
		old := tmp + ".old"
		if os.Rename(dir, old) == nil {
			defer os.RemoveAll(old)
		}
	}
	touch(tmp, time.Now())
	if err := os.Rename(tmp, dir); err != nil {
		// A concurrent build of the same key got there first: same key,
		// same image.
		if img, err2 := openLayoutImage(dir); err2 == nil {
			return img, k, false, nil
		}
		return nil, "", false, err
	}
	img, err := openLayoutImage(dir)
	return img, k, false, err
}

// openLayoutImage opens the one image of an OCI layout and checks that
// every blob it names is present with its size.
func openLayoutImage(dir string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("%s: want one image, found %d manifests", dir, len(im.Manifests))
	}
	img, err := p.Image(im.Manifests[0].Digest)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		fi, err := os.Stat(filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex))
		if err != nil {
			return nil, err
		}
		if fi.Size() != d.Size {
			return nil, fmt.Errorf("blob %s has %d bytes, want %d", d.Digest, fi.Size(), d.Size)
		}
	}
	return img, nil
}

// ResolvePython resolves requirements in the base image (by digest) with
// pip, against the builder's wheel source, and returns the closure with
// the sha256 of every chosen wheel.
func (b *Builder) ResolvePython(ctx context.Context, base string, p image.Platform, reqs []image.Requirement) ([]image.Package, error) {
	for _, q := range reqs {
		if _, ok := image.SourceBuilt(q.Name); ok {
			return nil, fmt.Errorf("resolving Python packages in %s: %s==%s is built from its sdist, which only the resolution on this machine locks: run ftc lock without --in-base", base, q.Name, q.Version)
		}
	}
	c, err := connect(ctx, Address(b.o.BuildKit))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	report, err := resolvePython(ctx, c, base, p, reqs, b.source(), b.o.Progress, b.o.ProgressMode)
	if err != nil {
		return nil, fmt.Errorf("resolving Python packages in %s: %w", base, err)
	}
	return packagesFromReport(report, b.o.Wheels)
}

// packagesFromReport reads pip's installation report. A wheel's hash is
// the report's, or, for a wheel from the local directory that pip did
// not hash, computed here from that file.
func packagesFromReport(report []byte, wheels string) ([]image.Package, error) {
	var r pipReport
	if err := json.Unmarshal(report, &r); err != nil {
		return nil, fmt.Errorf("pip report: %w", err)
	}
	var out []image.Package
	for _, in := range r.Install {
		name, version := in.Metadata.Name, in.Metadata.Version
		if name == "" || version == "" {
			return nil, errors.New("pip report: an entry without name or version")
		}
		ai := in.DownloadInfo.ArchiveInfo
		h := ai.Hashes["sha256"]
		if v, ok := strings.CutPrefix(ai.Hash, "sha256="); h == "" && ok {
			h = v
		}
		if h == "" && wheels != "" {
			if rel, ok := strings.CutPrefix(in.DownloadInfo.URL, "file://"+image.WheelsMount+"/"); ok {
				sum, err := fileSHA256(filepath.Join(wheels, filepath.FromSlash(rel)))
				if err != nil {
					return nil, err
				}
				h = sum
			} else if p, ok := strings.CutPrefix(in.DownloadInfo.URL, "file://"); ok && strings.HasPrefix(p, wheels+"/") {
				// Resolved on this machine (ResolvePythonLocal), from wheels itself.
				sum, err := fileSHA256(p)
				if err != nil {
					return nil, err
				}
				h = sum
			}
		}
		if h == "" {
			return nil, fmt.Errorf("pip report: no sha256 for %s==%s (%s)", name, version, in.DownloadInfo.URL)
		}
		out = append(out, image.Package{Name: name, Version: version, Hashes: []string{"sha256:" + strings.TrimPrefix(h, "sha256:")}})
	}
	return out, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h, _, err := v1.SHA256(f)
	if err != nil {
		return "", err
	}
	return h.Hex, nil
}
