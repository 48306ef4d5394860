package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ftc-dev/ftc/runtime/cas"
	ftcremote "github.com/ftc-dev/ftc/runtime/remote"
)

// Media types and annotations of the artifact.
const (
	ArtifactType    = "application/vnd.ftc.research.v1"
	ConfigMediaType = "application/vnd.ftc.research.index.v1+json"
	APIVersion      = "ftc.dev/artifact/v1alpha1"

	// AnnotationTitle is a layer's path in the artifact (the recipe's
	// directory is its root).
	AnnotationTitle = "org.opencontainers.image.title"
	// AnnotationRole says what a layer is (the Role constants).
	AnnotationRole = "dev.ftc.role"
	// AnnotationRecipe is the recipe's name, on the manifest.
	AnnotationRecipe = "dev.ftc.recipe"
	// AnnotationRefName names the manifest in an OCI layout's index.
	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// Roles of the artifact's files, each with its media type (MediaType).
const (
	RoleRecipe     = "recipe"      // the recipe file
	RoleRecipeFile = "recipe-file" // a reward function, a chat template
	RoleData       = "data"        // a data file the recipe pins by sha256
	RoleLock       = "lock"        // ftc.lock
	RolePlan       = "plan"        // the plan, as ftc plan --json prints it
	RoleEvents     = "events"      // the run record's events.jsonl
	RoleReport     = "report"      // the run record's report.html
	RoleMetrics    = "metrics"     // a stage's metrics.jsonl
	RoleProvenance = "provenance"  // the in-toto statement
	// RoleOutputTree is a stage output's tree manifest as the cache
	// stores it (its digest is the output's): the files by path and
	// sha256, so that a rerun can say which files differ.
	RoleOutputTree = "output-tree"
	// RoleOutput is a file of a stage's output, carried when asked
	// (ftc publish --with-output): ftc-run/outputs/<stage>/<path>.
	RoleOutput = "output"
	// RoleModel is a file of a local model directory the run trained
	// from, carried when asked (ftc publish --with-models), under the
	// directory's path in the recipe's.
	RoleModel = "model"
)

// MediaType is the media type of a file of role.
func MediaType(role string) string {
	switch role {
	case RoleRecipe:
		return "application/vnd.ftc.recipe.v1+cue"
	case RoleRecipeFile:
		return "application/vnd.ftc.recipe-file.v1"
	case RoleData:
		return "application/vnd.ftc.data.v1"
	case RoleLock:
		return "application/vnd.ftc.lock.v1+text"
	case RolePlan:
		return "application/vnd.ftc.plan.v1+json"
	case RoleEvents:
		return "application/vnd.ftc.events.v1+jsonl"
	case RoleReport:
		return "text/html"
	case RoleMetrics:
		return "application/vnd.ftc.metrics.v1+jsonl"
	case RoleProvenance:
		return "application/vnd.in-toto+json"
	case RoleOutputTree:
		return cas.TreeMediaType
	case RoleOutput:
		return "application/vnd.ftc.output.v1"
	case RoleModel:
		return "application/vnd.ftc.model.v1"
	}
	return "application/octet-stream"
}

// Index is the artifact's config blob: what was run and what came out.
type Index struct {
	APIVersion string `json:"apiVersion"`
	// Recipe is the recipe's name; RecipeFile its path in the artifact.
	Recipe     string `json:"recipe"`
	RecipeFile string `json:"recipeFile"`
	// Flags are the run's flags that decided the stage keys (--set,
	// --gpus, --cpu), as the run record has them.
	Flags []string `json:"flags,omitempty"`
	// Image is the stage image by digest, when one was given.
	Image string `json:"image,omitempty"`
	// Record is the run record's id; Started and Finished its first and
	// last event's times (RFC 3339).
	Record   string  `json:"record,omitempty"`
	Started  string  `json:"started,omitempty"`
	Finished string  `json:"finished,omitempty"`
	Stages   []Stage `json:"stages"`
	// Models are the local model directories the run trained from, by
	// tree digest, carried or not.
	Models []Model `json:"models,omitempty"`
}

// Stage is one stage of the published plan.
type Stage struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	Key  string `json:"key"`
	// Output is the digest of the stage's output tree in the cache;
	// Metrics its final metrics (the cache entry's summary).
	Output  string          `json:"output,omitempty"`
	Metrics json.RawMessage `json:"metrics,omitempty"`
}

// File is one file of the artifact: Content, or the file at Source.
type File struct {
	Name    string // slash-separated path relative to the recipe's directory
	Role    string
	Content []byte
	Source  string
	// Digest is the file's sha256 (Fetch sets it, verified).
	Digest string
}

// Artifact is what Build makes an image of.
type Artifact struct {
	Index Index
	Files []File
	// Builder names the tool that ran (ftc and its version), for the
	// provenance.
	Builder string
}

// layer is one file as an uncompressed layer, its digest computed once.
type layer struct {
	f      File
	digest v1.Hash
	size   int64
	mt     types.MediaType
}

func (l *layer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *layer) Size() (int64, error)                { return l.size, nil }
func (l *layer) MediaType() (types.MediaType, error) { return l.mt, nil }
func (l *layer) Compressed() (io.ReadCloser, error) {
	if l.f.Source == "" {
		return io.NopCloser(bytes.NewReader(l.f.Content)), nil
	}
	return os.Open(l.f.Source)
}

func newLayer(f File) (*layer, error) {
	l := &layer{f: f, mt: types.MediaType(MediaType(f.Role))}
	h := sha256.New()
	if f.Source == "" {
		h.Write(f.Content)
		l.size = int64(len(f.Content))
	} else {
		r, err := os.Open(f.Source)
		if err != nil {
			return nil, err
		}
		l.size, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return nil, err
		}
	}
	l.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	return l, nil
}

// image is the artifact as a v1.Image with a manifest of its own making.
type image struct {
	manifest []byte
	config   []byte
	layers   map[v1.Hash]*layer
}

func (i *image) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i *image) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (i *image) RawManifest() ([]byte, error)        { return i.manifest, nil }
func (i *image) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := i.layers[h]; ok {
		return l, nil
	}
	if h == sha256Hash(i.config) {
		return &layer{f: File{Content: i.config}, digest: h, size: int64(len(i.config)), mt: ConfigMediaType}, nil
	}
	return nil, fmt.Errorf("no blob %s in the artifact", h)
}

// Build makes the artifact's image: the provenance statement is made
// from the files and the index and added as the last layer. The same
// artifact gives the same manifest, byte for byte.
func Build(a Artifact) (v1.Image, error) {
	if a.Index.APIVersion == "" {
		a.Index.APIVersion = APIVersion
	}
	files := append([]File(nil), a.Files...)
	sort.SliceStable(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	seen := map[string]bool{}
	var layers []*layer
	for _, f := range files {
		if !SafePath(f.Name) {
			return nil, fmt.Errorf("%q: not a relative path inside the recipe's directory", f.Name)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("%s: named twice", f.Name)
		}
		seen[f.Name] = true
		l, err := newLayer(f)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	stmt, err := statement(a, layers)
	if err != nil {
		return nil, err
	}
	pl, _ := newLayer(File{Name: "ftc-run/provenance.intoto.json", Role: RoleProvenance, Content: stmt})
	layers = append(layers, pl)

	cfg, err := json.MarshalIndent(a.Index, "", "  ")
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  ArtifactType,
		Config:        v1.Descriptor{MediaType: ConfigMediaType, Size: int64(len(cfg)), Digest: sha256Hash(cfg)},
		Annotations:   map[string]string{AnnotationRecipe: a.Index.Recipe},
	}
	img := &image{config: cfg, layers: map[v1.Hash]*layer{}}
	for _, l := range layers {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: l.mt, Size: l.size, Digest: l.digest,
			Annotations: map[string]string{AnnotationTitle: l.f.Name, AnnotationRole: l.f.Role}})
		img.layers[l.digest] = l
	}
	if img.manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(img)
}

// SafePath reports whether p is a clean relative slash path that stays
// inside the directory it is relative to.
func SafePath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && path.Clean(p) == p && p != ".." && !strings.HasPrefix(p, "../") && !strings.Contains(p, "\\")
}

func sha256Hash(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// WriteLayout writes img into the OCI layout at dir (made when absent),
// named tag in its index; an image of the same name is replaced.
func WriteLayout(dir, tag string, img v1.Image) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return err
		}
	}
	return p.ReplaceImage(img, match.Annotation(AnnotationRefName, tag), layout.WithAnnotations(map[string]string{AnnotationRefName: tag}))
}

// Push uploads img to ref (REGISTRY/REPO:TAG); loopback registries may
// be plain HTTP. Credentials come from the docker config keychain.
// bytes, when not nil, is told of the bytes sent as they go (n more each
// call; blobs the registry has are not sent).
func Push(ctx context.Context, ref string, img v1.Image, bytes func(n int64)) error {
	r, err := parseRef(ref)
	if err != nil {
		return err
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	if bytes != nil {
		updates := make(chan v1.Update, 16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			var last int64
			for u := range updates {
				if u.Complete > last {
					bytes(u.Complete - last)
					last = u.Complete
				}
			}
		}()
		defer func() { <-done }()
		opts = append(opts, remote.WithProgress(updates))
	}
	return remote.Write(r, img, opts...)
}

func parseRef(ref string) (name.Reference, error) {
	var nopts []name.Option
	if ftcremote.IsLoopback(ref) {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", ref, err)
	}
	return r, nil
}

// Pull reads the artifact at ref from its registry (its blobs are read
// when fetched).
func Pull(ctx context.Context, ref string) (v1.Image, string, error) {
	r, err := parseRef(ref)
	if err != nil {
		return nil, "", err
	}
	desc, err := remote.Get(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return nil, "", err
	}
	img, err := desc.Image()
	if err != nil {
		return nil, "", err
	}
	if got := sha256Hash(desc.Manifest); got != desc.Digest {
		return nil, "", &TamperedError{Name: "manifest", Want: desc.Digest.String(), Got: got.String()}
	}
	return img, desc.Digest.String(), nil
}

// ReadLayout finds the artifact in the OCI layout at dir: the one named
// tag, or the only one when tag is empty.
func ReadLayout(dir, tag string) (v1.Image, string, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, "", fmt.Errorf("%s is not an OCI layout: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, "", err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, "", err
	}
	var found []v1.Descriptor
	var names []string
	for _, d := range im.Manifests {
		names = append(names, d.Annotations[AnnotationRefName])
		if tag == "" || d.Annotations[AnnotationRefName] == tag {
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0 && tag != "":
		return nil, "", fmt.Errorf("the layout %s has no artifact named %q (it has: %s)", dir, tag, strings.Join(names, ", "))
	case len(found) == 0:
		return nil, "", fmt.Errorf("the layout %s holds no artifact", dir)
	case len(found) > 1:
		return nil, "", fmt.Errorf("the layout %s holds %d artifacts (%s): name one", dir, len(found), strings.Join(names, ", "))
	}
	img, err := p.Image(found[0].Digest)
	if err != nil {
		return nil, "", err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, "", err
	}
	if got := sha256Hash(raw); got != found[0].Digest {
		return nil, "", &TamperedError{Name: "manifest", Want: found[0].Digest.String(), Got: got.String()}
	}
	return img, found[0].Digest.String(), nil
}

// TamperedError says that a blob of the artifact is not what its
// manifest says.
type TamperedError struct {
	Name      string // the file's path in the artifact, "manifest" or "index"
	Want, Got string
	Err       error // a read that failed verification
}

func (e *TamperedError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v (the artifact is not what was published)", e.Name, e.Err)
	}
	return fmt.Sprintf("%s has sha256 %s, but the artifact's manifest says %s: it was changed after it was published", e.Name, strings.TrimPrefix(e.Got, "sha256:"), strings.TrimPrefix(e.Want, "sha256:"))
}

// Fetched is an artifact read back into a directory, every blob verified.
type Fetched struct {
	// Digest is the manifest's digest.
	Digest string
	Index  Index
	// Files are the artifact's files by role, in manifest order; each
	// was written to Dir/Name.
	Files []File
	Dir   string
}

// ByRole returns the files of role.
func (f *Fetched) ByRole(role string) []File {
	var out []File
	for _, x := range f.Files {
		if x.Role == role {
			out = append(out, x)
		}
	}
	return out
}

// Fetch writes the artifact's files under dir (their paths from the
// title annotations) and checks each against its digest as it is
// written; the config blob (the Index) is checked too. A blob that does
// not match is a *TamperedError naming the file.
//
// bytes, when not nil, is told of the bytes read as they come.
func Fetch(img v1.Image, digest, dir string, bytes func(n int64)) (*Fetched, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if m.ArtifactType != ArtifactType || m.Config.MediaType != ConfigMediaType {
		return nil, fmt.Errorf("not an ftc research artifact (artifactType %q, config %s): ftc publish makes them", m.ArtifactType, m.Config.MediaType)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return nil, &TamperedError{Name: "index", Err: err}
	}
	if got := sha256Hash(cfg); got != m.Config.Digest {
		return nil, &TamperedError{Name: "index (the config blob)", Want: m.Config.Digest.String(), Got: got.String()}
	}
	out := &Fetched{Digest: digest, Dir: dir}
	if err := json.Unmarshal(cfg, &out.Index); err != nil {
		return nil, fmt.Errorf("the artifact's index: %w", err)
	}
	for _, d := range m.Layers {
		f := File{Name: d.Annotations[AnnotationTitle], Role: d.Annotations[AnnotationRole], Digest: d.Digest.String()}
		if !SafePath(f.Name) {
			return nil, fmt.Errorf("layer %s: title %q is not a relative path inside the recipe's directory", d.Digest, f.Name)
		}
		f.Source = filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := fetchOne(img, d, f, bytes); err != nil {
			return nil, err
		}
		out.Files = append(out.Files, f)
	}
	return out, nil
}

func fetchOne(img v1.Image, d v1.Descriptor, f File, bytes func(int64)) error {
	l, err := img.LayerByDigest(d.Digest)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return &TamperedError{Name: f.Name, Err: err}
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(f.Source), 0o755); err != nil {
		return err
	}
	w, err := os.OpenFile(f.Source, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	var dst io.Writer = io.MultiWriter(w, h)
	if bytes != nil {
		dst = io.MultiWriter(dst, counter(bytes))
	}
	_, err = io.Copy(dst, rc)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Source)
		return &TamperedError{Name: f.Name, Err: err}
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != d.Digest.String() {
		os.Remove(f.Source)
		return &TamperedError{Name: f.Name, Want: d.Digest.String(), Got: got}
	}
	return nil
}

// counter is a writer that counts what passes through it.
type counter func(int64)

func (c counter) Write(p []byte) (int, error) {
	c(int64(len(p)))
	return len(p), nil
}

// IsTampered reports whether err says the artifact was changed.
func IsTampered(err error) bool {
	var t *TamperedError
	return errors.As(err, &t)
}
