package build

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/renameio/v2"

	ftcremote "github.com/ftc-dev/ftc/runtime/remote"
)

// Publisher stores an image and its attachments somewhere and returns
// where, by digest. Like ko's publishers, it is the only seam between
// building and storing.
type Publisher interface {
	Publish(ctx context.Context, img v1.Image, atts []Attachment) (string, error)
}

// Attachment is a document attached to an image as an OCI 1.1 artifact
// whose subject is the image (found through the referrers API or, in a
// registry without it, the sha256-<digest> tag schema; in a layout, its
// descriptor sits beside the image's in index.json).
type Attachment struct {
	ArtifactType string
	// Title is the document's file name.
	Title string
	Data  []byte
}

// refName is the OCI layout annotation that names an image (skopeo's and
// umoci's oci:DIR:NAME).
const refName = "org.opencontainers.image.ref.name"

// emptyConfig is the OCI empty descriptor's content.
var emptyConfig = []byte("{}")

// Artifact is att as an image manifest with subject img.
func Artifact(img v1.Image, att Attachment) (v1.Image, error) {
	subject, err := partial.Descriptor(img)
	if err != nil {
		return nil, err
	}
	mt := types.MediaType(att.ArtifactType)
	data := static.NewLayer(att.Data, mt)
	dd, err := data.Digest()
	if err != nil {
		return nil, err
	}
	ch, _, _ := v1.SHA256(bytes.NewReader(emptyConfig))
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  att.ArtifactType,
		Config:        v1.Descriptor{MediaType: types.MediaType("application/vnd.oci.empty.v1+json"), Digest: ch, Size: int64(len(emptyConfig)), Data: emptyConfig},
		Layers: []v1.Descriptor{{MediaType: mt, Digest: dd, Size: int64(len(att.Data)),
			Annotations: map[string]string{"org.opencontainers.image.title": att.Title}}},
		Subject: &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(artifactCore{raw: raw, data: data, digest: dd})
}

type artifactCore struct {
	raw    []byte
	data   v1.Layer
	digest v1.Hash
}

func (a artifactCore) RawConfigFile() ([]byte, error)      { return emptyConfig, nil }
func (a artifactCore) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a artifactCore) RawManifest() ([]byte, error)        { return a.raw, nil }
func (a artifactCore) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == a.digest {
		return a.data, nil
	}
	return nil, fmt.Errorf("artifact has no blob %s", h)
}

// Layout publishes into an OCI image layout directory under a name
// (skopeo's oci:DIR:NAME). The name moves to the new image; blobs are
// shared with what the layout already holds.
type Layout struct {
	Dir  string
	Name string
}

// Publish implements Publisher.
func (l Layout) Publish(_ context.Context, img v1.Image, atts []Attachment) (string, error) {
	p, err := layout.FromPath(l.Dir)
	if err != nil {
		// Never turn a directory holding something else into a layout.
		if ents, _ := os.ReadDir(l.Dir); len(ents) > 0 {
			return "", fmt.Errorf("%s is not an OCI layout (no index.json) and not empty", l.Dir)
		}
		if p, err = layout.Write(l.Dir, empty.Index); err != nil {
			return "", fmt.Errorf("creating OCI layout %s: %w", l.Dir, err)
		}
	}
	if err := p.ReplaceImage(img, match.Annotation(refName, l.Name), layout.WithAnnotations(map[string]string{refName: l.Name})); err != nil {
		return "", fmt.Errorf("writing %s: %w", l.Dir, err)
	}
	for _, att := range atts {
		a, err := Artifact(img, att)
		if err != nil {
			return "", err
		}
		d, err := a.Digest()
		if err != nil {
			return "", err
		}
		if err := p.ReplaceImage(a, match.Digests(d)); err != nil {
			return "", fmt.Errorf("writing %s to %s: %w", att.Title, l.Dir, err)
		}
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("oci:%s:%s (%s)", l.Dir, l.Name, d), nil
}

// Archive publishes an OCI layout as one tar file (an "OCI archive":
// skopeo's oci-archive:FILE, podman load). The tar is reproducible too:
// sorted entries, uid/gid 0, every mtime the epoch.
type Archive struct {
	Path  string
	Name  string
	Epoch int64
}

// Publish implements Publisher.
func (a Archive) Publish(ctx context.Context, img v1.Image, atts []Attachment) (string, error) {
	tmp, err := os.MkdirTemp("", "ftc-archive-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if _, err := (Layout{Dir: tmp, Name: a.Name}).Publish(ctx, img, atts); err != nil {
		return "", err
	}
	f, err := renameio.NewPendingFile(a.Path, renameio.WithPermissions(0o644))
	if err != nil {
		return "", err
	}
	defer f.Cleanup()
	if err := tarDir(f, tmp, time.Unix(a.Epoch, 0).UTC()); err != nil {
		return "", err
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return "", err
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("oci-archive:%s:%s (%s)", a.Path, a.Name, d), nil
}

func tarDir(w io.Writer, dir string, mtime time.Time) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Mode: 0o644, Typeflag: tar.TypeReg, Size: fi.Size()}
		if fi.IsDir() {
			h.Name, h.Mode, h.Typeflag, h.Size = h.Name+"/", 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.IsDir() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// Registry publishes to a registry repository under a tag, with the
// docker config keychain's credentials; loopback registries may be plain
// HTTP.
type Registry struct {
	Ref string
	// Progress receives push progress lines; nil discards them.
	Progress io.Writer
	// Options are extra go-containerregistry options (tests: transports).
	Options []remote.Option
}

// Publish implements Publisher.
func (r Registry) Publish(ctx context.Context, img v1.Image, atts []Attachment) (string, error) {
	var nopts []name.Option
	if ftcremote.IsLoopback(r.Ref) {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(r.Ref, nopts...)
	if err != nil {
		return "", fmt.Errorf("--push %q: %w", r.Ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	opts := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, r.Options...)
	if err := r.write(ref, img, opts); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	for _, att := range atts {
		a, err := Artifact(img, att)
		if err != nil {
			return "", err
		}
		ad, err := a.Digest()
		if err != nil {
			return "", err
		}
		if err := r.write(ref.Context().Digest(ad.String()), a, opts); err != nil {
			return "", fmt.Errorf("pushing %s: %w", att.Title, err)
		}
	}
	return ref.Context().Digest(d.String()).String(), nil
}

// write pushes one manifest with a progress line at most every second.
func (r Registry) write(ref name.Reference, img v1.Image, opts []remote.Option) error {
	if r.Progress == nil {
		return remote.Write(ref, img, opts...)
	}
	ch := make(chan v1.Update, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var last time.Time
		var u v1.Update
		for u = range ch {
			if time.Since(last) >= time.Second {
				last = time.Now()
				fmt.Fprintf(r.Progress, "pushing %s: %s of %s\n", ref, mb(u.Complete), mb(u.Total))
			}
		}
		if u.Total > 0 {
			fmt.Fprintf(r.Progress, "pushed %s: %s\n", ref, mb(u.Total))
		}
	}()
	err := remote.Write(ref, img, append(opts, remote.WithProgress(ch))...)
	<-done
	return err
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
