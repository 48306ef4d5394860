package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/internal/buildkittest"
	"github.com/ftc-dev/ftc/internal/registrytest"
)

func TestLayerTarIsDeterministic(t *testing.T) {
	files := []image.File{
		{Path: "/opt/ftc/recipe/rewards.py", Mode: 0o644, Content: []byte("def f(): pass\n")},
		{Path: "/opt/ftc/python/ftc/__init__.py", Mode: 0o644, Content: nil},
		{Path: "/opt/ftc/python/ftc/entry.py", Mode: 0o755, Content: []byte("print(1)\n")},
	}
	a, err := LayerTar(image.Layer{Name: "x", Files: files}, 1700000000)
	if err != nil {
		t.Fatal(err)
	}
	rev := []image.File{files[2], files[0], files[1]}
	b, err := LayerTar(image.Layer{Name: "x", Files: rev}, 1700000000)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("the order of files changed the tar")
	}
	tr := tar.NewReader(bytes.NewReader(a))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || h.ModTime.Unix() != 1700000000 {
			t.Errorf("%s: uid %d gid %d %q %q mtime %v", h.Name, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime)
		}
		if h.Typeflag == tar.TypeDir && h.Mode != 0o755 {
			t.Errorf("%s: mode %o", h.Name, h.Mode)
		}
	}
	want := "opt/ opt/ftc/ opt/ftc/python/ opt/ftc/python/ftc/ opt/ftc/python/ftc/__init__.py opt/ftc/python/ftc/entry.py opt/ftc/recipe/ opt/ftc/recipe/rewards.py"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("entries:\n got %s\nwant %s", got, want)
	}
	if _, err := LayerTar(image.Layer{Files: []image.File{{Path: "/a"}, {Path: "/a/b"}}}, 0); err == nil {
		t.Fatal("a file that is also a directory was accepted")
	}
}

// fixture is a busybox base in a registry, a wheel directory with one
// wheel, and the spec that installs it.
type fixture struct {
	registry string
	base     string // ref@digest
	wheels   string
	wheel    string // path of hello-1.0 wheel
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	reg := registrytest.InProcess(t)
	ref, digest := buildkittest.BusyboxBase(t, reg)
	wheels := t.TempDir()
	w, err := buildkittest.Wheel(wheels, "hello", "1.0", map[string]string{"hello/__init__.py": "GREETING = 'hello from a wheel'\n"})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{registry: reg, base: ref + "@" + digest, wheels: wheels, wheel: w}
}

func (f fixture) spec(t *testing.T, pkgs []image.Package, reward string) *image.Spec {
	t.Helper()
	s := &image.Spec{Platform: image.DefaultPlatform, Epoch: 1700000000}
	s.Environment = image.Environment{Base: f.base, Profile: "test", Packages: pkgs,
		Config: image.Config{Env: []string{"PYTHONPATH=" + image.SitePackages}, PathPrefix: []string{image.SitePackages + "/bin"}, Labels: map[string]string{image.LabelProfile: "test"}}}
	s.Environment.Steps = []image.Step{
		{Name: "requirements", File: &image.File{Path: image.RequirementsFile, Mode: 0o644, Content: image.RequirementsTxt(pkgs, "test")}},
		{Name: "install Python packages", Run: &image.Run{
			Args:   []string{"python3", "-m", "pip", "install", "--require-hashes", "--find-links", image.WheelsMount, "--target", image.SitePackages, "-r", image.RequirementsFile},
			Mounts: []image.Mount{{Input: image.WheelsInput, Target: image.WheelsMount}},
		}},
	}
	s.Layers = []image.Layer{
		{Name: "entrypoints", Files: []image.File{{Path: image.PythonDir + "/ftc/__init__.py", Mode: 0o644, Content: []byte("")}}},
		{Name: "recipe files", Files: []image.File{{Path: image.RecipeDir + "/rewards.py", Mode: 0o644, Content: []byte(reward)}}},
	}
	s.Config = image.Config{Env: []string{"PYTHONPATH=" + image.PythonDir + ":" + image.SitePackages}, Cmd: []string{"python3", "-m", "ftc.entry"},
		Labels: map[string]string{image.LabelRecipe: "r"}}
	return s
}

func TestEnvironmentStepRunsInBuildKit(t *testing.T) {
	f := newFixture(t)
	d := buildkittest.Start(t)
	ctx := context.Background()
	var progress bytes.Buffer
	b := New(Options{BuildKit: d.Addr, Cache: t.TempDir(), Wheels: f.wheels, Progress: &progress, ProgressMode: "plain"})

	// Resolution inside BuildKit: pip's report gives the wheel's sha256.
	pkgs, err := b.ResolvePython(ctx, f.base, image.DefaultPlatform, []image.Requirement{{Name: "hello", Version: "1.0"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	sum, _ := fileSHA256(f.wheel)
	if len(pkgs) != 1 || pkgs[0].Name != "hello" || pkgs[0].Version != "1.0" || strings.Join(pkgs[0].Hashes, ",") != "sha256:"+sum {
		t.Fatalf("resolved %+v, want hello 1.0 sha256:%s", pkgs, sum)
	}

	res, err := b.Build(ctx, f.spec(t, pkgs, "def r(): return 1\n"))
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if res.EnvironmentCached {
		t.Fatal("first build came from the cache")
	}
	fs := buildkittest.Files(t, res.Image)
	if got := fs[image.SitePackages+"/hello/__init__.py"]; !strings.Contains(got, "hello from a wheel") {
		t.Fatalf("the RUN step did not install the wheel: %q\n%s", got, progress.String())
	}
	if !strings.Contains(fs[image.RequirementsFile], "hello==1.0 --hash=sha256:"+sum) {
		t.Fatalf("requirements: %q", fs[image.RequirementsFile])
	}
	if fs[image.RecipeDir+"/rewards.py"] != "def r(): return 1\n" || fs["/bin/busybox"] == "" {
		t.Fatal("recipe file or base missing")
	}
	cf, err := res.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Join(cf.Config.Env, " ")
	for _, want := range []string{"PATH=" + image.SitePackages + "/bin:/usr/local/bin:/usr/bin:/bin", "PYTHONPATH=" + image.PythonDir + ":" + image.SitePackages} {
		if !strings.Contains(env, want) {
			t.Errorf("env %s lacks %s", env, want)
		}
	}
	if cf.Config.Labels[image.LabelRecipe] != "r" || cf.Config.Labels[image.LabelProfile] != "test" || strings.Join(cf.Config.Cmd, " ") != "python3 -m ftc.entry" {
		t.Errorf("config: %+v", cf.Config)
	}
	if !cf.Created.Time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("created %v", cf.Created)
	}
	ftcHistory := 0
	for _, h := range cf.History {
		if h.Comment != "ftc" {
			continue // the base's
		}
		ftcHistory++
		if !h.Created.Time.Equal(time.Unix(1700000000, 0)) {
			t.Errorf("history %+v is not at the epoch", h)
		}
	}
	if ftcHistory != 4 {
		t.Errorf("%d ftc history entries, want 2 steps + 2 layers: %+v", ftcHistory, cf.History)
	}
	if !strings.Contains(progress.String(), "install Python packages") {
		t.Errorf("no progress display:\n%s", progress.String())
	}

	// Rebuilt from the cache: no daemon is needed.
	b2 := New(Options{BuildKit: "unix:///nonexistent.sock", Cache: b.o.Cache, Wheels: f.wheels})
	res2, err := b2.Build(ctx, f.spec(t, pkgs, "def r(): return 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !res2.EnvironmentCached || res2.Digest != res.Digest {
		t.Fatalf("cached rebuild: cached %v, digest %s vs %s", res2.EnvironmentCached, res2.Digest, res.Digest)
	}
}

func TestWrongHashFailsTheInstall(t *testing.T) {
	f := newFixture(t)
	d := buildkittest.Start(t)
	b := New(Options{BuildKit: d.Addr, Cache: t.TempDir(), Wheels: f.wheels})
	bad := []image.Package{{Name: "hello", Version: "1.0", Hashes: []string{"sha256:" + strings.Repeat("0", 64)}}}
	_, err := b.Build(context.Background(), f.spec(t, bad, ""))
	if err == nil || !strings.Contains(err.Error(), "building the environment image") {
		t.Fatalf("a wheel that does not match its hash was installed: %v", err)
	}
}

func TestSameDigestFromFreshDaemons(t *testing.T) {
	f := newFixture(t)
	pkgs := []image.Package{{Name: "hello", Version: "1.0", Hashes: []string{"sha256:" + must(fileSHA256(f.wheel))}}}
	var digests []v1.Hash
	for i := 0; i < 2; i++ {
		d := buildkittest.Start(t) // a fresh root each time
		res, err := New(Options{BuildKit: d.Addr, Cache: t.TempDir(), Wheels: f.wheels}).Build(context.Background(), f.spec(t, pkgs, "x = 1\n"))
		if err != nil {
			t.Fatal(err)
		}
		if res.EnvironmentCached {
			t.Fatal("a fresh cache hit")
		}
		digests = append(digests, res.Digest)
		if err := d.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	if digests[0] != digests[1] {
		t.Fatalf("two fresh daemons built %s and %s", digests[0], digests[1])
	}
	t.Logf("digest %s on both daemons", digests[0])
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestUncleanStopIsCleanedUp(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bin, err := buildkittest.BuildkitdBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, err := buildkittest.StartDaemon(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	s := f.spec(t, nil, "")
	s.Environment.Steps = []image.Step{{Name: "sleep", Run: &image.Run{Args: []string{"/bin/sh", "-c", "sleep 60"}}}}
	errc := make(chan error, 1)
	go func() {
		_, err := New(Options{BuildKit: d.Addr, Cache: t.TempDir()}).Build(ctx, s)
		errc <- err
	}()
	// Wait for the step's container: its root file system is mounted
	// under the daemon's root.
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, _ := buildkittest.Mounts(d.Root)
		if len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mount under %s after 30s\n%s", d.Root, d.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	if m, _ := buildkittest.Mounts(d.Root); len(m) > 0 {
		t.Fatalf("mounts left: %v", m)
	}
	if _, err := os.Stat(d.Root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("root not removed: %v", err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("the build succeeded without its daemon")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the client did not notice the daemon died")
	}
}

func TestBaseLayersAreKeptAsTheyAre(t *testing.T) {
	f := newFixture(t)
	d := buildkittest.Start(t)
	pkgs := []image.Package{{Name: "hello", Version: "1.0", Hashes: []string{"sha256:" + must(fileSHA256(f.wheel))}}}
	res, err := New(Options{BuildKit: d.Addr, Cache: t.TempDir(), Wheels: f.wheels}).Build(context.Background(), f.spec(t, pkgs, ""))
	if err != nil {
		t.Fatal(err)
	}
	base, err := remote.Image(must(name.NewDigest(f.base, name.Insecure)))
	if err != nil {
		t.Fatal(err)
	}
	bl, il := must(base.Manifest()).Layers, must(res.Image.Manifest()).Layers
	if il[0].Digest != bl[0].Digest {
		t.Fatalf("the base layer was rewritten: %s, base %s", il[0].Digest, bl[0].Digest)
	}

	// An environment without packages is the base with ftc's config: its
	// layers, then the ftc layers.
	s := f.spec(t, nil, "")
	s.Environment.Steps = nil
	res, err = New(Options{BuildKit: d.Addr, Cache: t.TempDir()}).Build(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	il = must(res.Image.Manifest()).Layers
	if len(il) != len(bl)+2 || il[0].Digest != bl[0].Digest {
		t.Fatalf("no-step environment: %d layers, want the base's %d + 2", len(il), len(bl))
	}
}

func TestPackagesFromPipReport(t *testing.T) {
	wheels := t.TempDir()
	w, err := buildkittest.Wheel(wheels, "local-pkg", "2.0", map[string]string{"local_pkg/__init__.py": ""})
	if err != nil {
		t.Fatal(err)
	}
	h := strings.Repeat("a", 64)
	report := `{"version": "1", "pip_version": "23.0.1", "install": [
		{"metadata": {"name": "a", "version": "1"}, "download_info": {"url": "https://x/a.whl", "archive_info": {"hashes": {"sha256": "` + h + `"}}}},
		{"metadata": {"name": "b", "version": "2"}, "download_info": {"url": "https://x/b.whl", "archive_info": {"hash": "sha256=` + h + `"}}},
		{"metadata": {"name": "local-pkg", "version": "2.0"}, "download_info": {"url": "file:///ftc/wheels/` + filepath.Base(w) + `", "archive_info": {}}}
	]}`
	pkgs, err := packagesFromReport([]byte(report), wheels)
	if err != nil {
		t.Fatal(err)
	}
	sum := must(fileSHA256(w))
	if len(pkgs) != 3 || pkgs[0].Hashes[0] != "sha256:"+h || pkgs[1].Hashes[0] != "sha256:"+h || pkgs[2].Hashes[0] != "sha256:"+sum {
		t.Fatalf("%+v", pkgs)
	}
	if _, err := packagesFromReport([]byte(`{"install": [{"metadata": {"name": "c", "version": "1"}, "download_info": {"url": "https://x/c.whl"}}]}`), ""); err == nil {
		t.Fatal("a package without a hash was accepted")
	}
}

func TestLayoutRefusesADirectoryWithOtherFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
	img := must(mutate.AppendLayers(empty.Image))
	if _, err := (Layout{Dir: dir, Name: "x"}).Publish(context.Background(), img, nil); err == nil || !strings.Contains(err.Error(), "not an OCI layout") {
		t.Fatalf("wrote a layout over other files: %v", err)
	}
}

func TestArchiveIsReproducibleAndReadable(t *testing.T) {
	l, err := layer(image.Layer{Name: "x", Files: []image.File{{Path: "/opt/ftc/a", Mode: 0o644, Content: []byte("a")}}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	img := must(mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), l))
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	atts := []Attachment{{ArtifactType: image.SBOMArtifactType, Title: "sbom.spdx.json", Data: []byte(`{"spdxVersion":"SPDX-2.3"}`)}}
	var sums []string
	for i := 0; i < 2; i++ {
		p := filepath.Join(t.TempDir(), "image.tar")
		if _, err := (Archive{Path: p, Name: "r", Epoch: 0}).Publish(context.Background(), img, atts); err != nil {
			t.Fatal(err)
		}
		sums = append(sums, must(fileSHA256(p)))
		if i == 0 {
			b, err := exec.Command("skopeo", "inspect", "--raw", "oci-archive:"+p+":r").CombinedOutput()
			if err != nil {
				t.Fatalf("skopeo inspect oci-archive: %v\n%s", err, b)
			}
			if d, _, _ := v1.SHA256(bytes.NewReader(b)); d != must(img.Digest()) {
				t.Fatalf("skopeo read manifest %s, want %s", d, must(img.Digest()))
			}
		}
	}
	if sums[0] != sums[1] {
		t.Fatalf("two archives of the same image differ: %s %s", sums[0], sums[1])
	}
}
