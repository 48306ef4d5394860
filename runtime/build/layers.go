package build

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ftc-dev/ftc/compiler/image"
)

// LayerTar writes a layer's files as a tar that depends on nothing but
// the files and the epoch: entries sorted by name with their parent
// directories, uid/gid 0 without names, directories 0755, files with
// their spec mode, every time the epoch.
func LayerTar(l image.Layer, epoch int64) ([]byte, error) {
	mtime := time.Unix(epoch, 0).UTC()
	entries := map[string]*image.File{}
	dirs := map[string]bool{}
	for i := range l.Files {
		f := &l.Files[i]
		name := strings.TrimPrefix(path.Clean("/"+f.Path), "/")
		if name == "" {
			return nil, fmt.Errorf("layer %s: file with an empty path", l.Name)
		}
		if _, dup := entries[name]; dup {
			return nil, fmt.Errorf("layer %s: %s twice", l.Name, name)
		}
		entries[name] = f
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var names []string
	for n := range entries {
		names = append(names, n)
	}
	for d := range dirs {
		if _, clash := entries[d]; clash {
			return nil, fmt.Errorf("layer %s: %s is both a file and a directory", l.Name, d)
		}
		names = append(names, d+"/")
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		h := &tar.Header{Name: n, ModTime: mtime, Uid: 0, Gid: 0, Format: tar.FormatPAX}
		var body []byte
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		} else {
			f := entries[n]
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, int64(f.Mode&0o7777), int64(len(f.Content))
			body = f.Content
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// layer is an ftc layer as a gzip-compressed OCI layer. go-containerregistry
// compresses with a fixed level and no gzip header time, so the same tar
// always gives the same blob.
func layer(l image.Layer, epoch int64) (v1.Layer, error) {
	b, err := LayerTar(l, epoch)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// assemble appends the ftc layers to the environment image and applies
// the spec's config. Every time in the result is the epoch.
func assemble(env v1.Image, spec *image.Spec) (v1.Image, error) {
	epoch := v1.Time{Time: time.Unix(spec.Epoch, 0).UTC()}
	img := env
	for _, l := range spec.Layers {
		ly, err := layer(l, spec.Epoch)
		if err != nil {
			return nil, err
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: ly, MediaType: types.OCILayer,
			History: v1.History{Created: epoch, CreatedBy: "ftc: " + l.Name, Comment: "ftc"}})
		if err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	c := spec.Config
	cf.Config.Env = applyEnv(cf.Config.Env, c)
	cf.Config.Labels = applyLabels(cf.Config.Labels, c.Labels)
	if len(c.Cmd) > 0 {
		cf.Config.Cmd = c.Cmd
	}
	cf.Created = epoch
	return mutate.ConfigFile(img, cf)
}
