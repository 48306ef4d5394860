package build

import (
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/internal/buildkittest"
	"github.com/ftc-dev/ftc/internal/registrytest"
	"github.com/ftc-dev/ftc/stdlib"
)

// TestRealPipInstallsWheelsOffline is the dependency step with a real
// Python: a Debian 12 base made by debootstrap (python3, pip 23), a
// pure-Python wheel made here, `ftc lock`'s resolution (pip --dry-run
// --report) and the install (pip --require-hashes, no network) inside
// BuildKit, built twice on fresh daemons to the same digest, and the
// result run: python3 imports the installed package and ftc's entrypoints.
//
// The first run on a machine makes the Debian root file system (about
// 300 MB from Debian's mirror, a few minutes); it is kept in
// buildkittest.CacheDir.
func TestRealPipInstallsWheelsOffline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	reg := registrytest.InProcess(t)
	ref, digest := pushDebianPython(ctx, t, reg)
	wheels := t.TempDir()
	wheel, err := buildkittest.Wheel(wheels, "ftc-hello", "0.3", map[string]string{
		"ftc_hello/__init__.py": "def greet():\n    return 'hello from a locked wheel'\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &config.Recipe{Name: "python-base", Environment: config.Environment{
		Profile: "debian-python", Python: "3.11", Base: config.BaseImage{Image: ref, Digest: digest},
		Packages: map[string]string{"ftc-hello": "0.3"},
	}}
	base, _ := image.BaseRef(r.Environment, "")

	d := buildkittest.Start(t)
	b := New(Options{BuildKit: d.Addr, Cache: t.TempDir(), Wheels: wheels})
	reqs := image.Requirements(r)
	pkgs, err := b.ResolvePython(ctx, base, image.DefaultPlatform, reqs)
	if err != nil {
		t.Fatal(err)
	}
	sum := must(fileSHA256(wheel))
	if len(pkgs) != 1 || !strings.EqualFold(pkgs[0].Name, "ftc-hello") || pkgs[0].Version != "0.3" || pkgs[0].Hashes[0] != "sha256:"+sum {
		t.Fatalf("pip resolved %+v, want ftc-hello 0.3 sha256:%s", pkgs, sum)
	}
	spec, err := image.Build(r, image.Inputs{Python: pkgs, PythonInput: image.RequirementsDigest(reqs, base, image.DefaultPlatform),
		Entrypoints: stdlib.Entrypoints(), Version: "test", Epoch: 1700000000})
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	fs := buildkittest.Files(t, res.Image)
	if !strings.Contains(fs[image.SitePackages+"/ftc_hello/__init__.py"], "locked wheel") || fs[image.SitePackages+"/ftc_hello-0.3.dist-info/RECORD"] == "" {
		t.Fatalf("pip did not install the wheel into %s", image.SitePackages)
	}
	noBytecode(t, fs)
	// A fresh daemon and cache: the same digest, with real pip.
	sameDigestOnAFreshDaemon(ctx, t, spec, wheels, res.Digest)

	// Run the image: the installed package and ftc's entrypoints import
	// with the image's own PYTHONPATH.
	pushed, err := (Registry{Ref: reg + "/ftc/python-base:test"}).Publish(ctx, res.Image, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := runInImage(t, d.Addr, pushed, `python3 -c "import ftc_hello, ftc, sys; print(ftc_hello.greet()); print(ftc.__file__)" > /out/result`)
	if !strings.Contains(out, "hello from a locked wheel") || !strings.Contains(out, image.PythonDir+"/ftc/__init__.py") {
		t.Fatalf("running the image: %q", out)
	}
}

// runInImage runs a shell command in ref (with its config's environment)
// through BuildKit and returns what it wrote to /out/result.
func runInImage(t *testing.T, addr, ref, cmd string) string {
	t.Helper()
	ctx := context.Background()
	c, err := connect(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	opt := bkclient.SolveOpt{Exports: []bkclient.ExportEntry{{Type: bkclient.ExporterLocal, OutputDir: dir}}}
	err = runBuild(ctx, c, opt, func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		st, _, err := baseState(ctx, gw, ref, image.DefaultPlatform)
		if err != nil {
			return nil, err
		}
		run := st.Run(llb.Args([]string{"/bin/sh", "-c", cmd}), llb.AddMount("/out", llb.Scratch()))
		def, err := run.GetMount("/out").Marshal(ctx)
		if err != nil {
			return nil, err
		}
		return gw.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
	}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "result"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pushDebianPython pushes to reg a base of the stock bases' shape: Debian
// 12 with its python3 (3.11) and pip, made by debootstrap once per machine
// (buildkittest.DebianPythonTar). It returns the reference and digest.
func pushDebianPython(ctx context.Context, t *testing.T, reg string) (ref, digest string) {
	t.Helper()
	tarPath, err := buildkittest.DebianPythonTar(ctx)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromFile(tarPath, tarball.WithCompressedCaching, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		t.Fatal(err)
	}
	ref, digest, err = buildkittest.PushBase(ctx, reg+"/base/debian-python3:12", layer, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
	if err != nil {
		t.Fatal(err)
	}
	return ref, digest
}

// noBytecode fails when an image's site-packages hold .pyc files, which
// embed source mtimes.
func noBytecode(t *testing.T, files map[string]string) {
	t.Helper()
	for p := range files {
		if strings.HasPrefix(p, image.SitePackages) && strings.HasSuffix(p, ".pyc") {
			t.Fatalf("bytecode installed: %s", p)
		}
	}
}

// sameDigestOnAFreshDaemon builds spec again on a fresh daemon and cache
// and fails unless the digest is want.
func sameDigestOnAFreshDaemon(ctx context.Context, t *testing.T, spec *image.Spec, wheels string, want v1.Hash) {
	t.Helper()
	d := buildkittest.Start(t)
	res, err := New(Options{BuildKit: d.Addr, Cache: t.TempDir(), Wheels: wheels}).Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != want {
		t.Fatalf("two fresh daemons: %s and %s", want, res.Digest)
	}
}
