package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/internal/buildkittest"
	"github.com/ftc-dev/ftc/internal/pyenvtest"
	"github.com/ftc-dev/ftc/internal/registrytest"
	"github.com/ftc-dev/ftc/stdlib"
)

// setupPySdist is an sdist laid out as deepspeed's is (setup.py and
// setup.cfg, no pyproject.toml, so pip takes the same path as for the real
// one), whose setup.py records at build time what the build saw: the
// environment image.SourceBuilt gives deepspeed and the setuptools that
// built it.
func setupPySdist(t *testing.T, name, version string) []byte {
	t.Helper()
	dir := name + "-" + version + "/"
	files := map[string]string{
		dir + "PKG-INFO":  "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\nRequires-Dist: nvidia-ml-py\n",
		dir + "setup.cfg": "[metadata]\nname = " + name + "\n",
		dir + "setup.py": `import os
import setuptools
from setuptools import setup

os.makedirs("` + name + `", exist_ok=True)
with open("` + name + `/__init__.py", "w") as f:
    f.write("BUILD_OPS = %r\nACCELERATOR = %r\nSETUPTOOLS = %r\n" % (
        os.environ.get("DS_BUILD_OPS"), os.environ.get("DS_ACCELERATOR"), setuptools.__version__))
setup(name="` + name + `", version="` + version + `", packages=["` + name + `"], install_requires=["nvidia-ml-py"])
`,
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for _, p := range []string{dir + "PKG-INFO", dir + "setup.cfg", dir + "setup.py"} {
		c := files[p]
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(c))
	}
	tw.Close()
	zw.Close()
	return b.Bytes()
}

// TestSdistIsBuiltInBuildKit is the step that builds deepspeed (the one
// distribution ftc takes from its sdist, image.SourceBuilt) in a real
// BuildKit, on a Debian 12 base with its python3 and pip as the stock
// bases have them: the closure is locked without a daemon (sdist by its
// sha256, its undeclared runtime dependency and its build backend as
// PyPI's wheels, from scripts/pyvenv.sh's wheelhouse), the wheels install
// in the first pass, then the sdist builds without build isolation
// against the locked setuptools (not the base's) with deepspeed's build
// environment (DS_BUILD_OPS=0: no op compiled), and a second fresh daemon
// gives the same digest. The sdist stands in for deepspeed's own, whose
// setup.py imports torch: building it for real needs the whole CUDA
// closure in the image (the journey's size), and it installs in CI's
// test environments from the same requirements (scripts/pyvenv.sh).
func TestSdistIsBuiltInBuildKit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	pyenvtest.Python(t, "pinned-2025q1") // the wheelhouse holds its closure: setuptools and nvidia-ml-py
	wheels := t.TempDir()
	for _, w := range []string{"setuptools-84.2.1-py3-none-any.whl", "nvidia_ml_py-13.615.71-py3-none-any.whl"} {
		b, err := os.ReadFile(filepath.Join(pyenvtest.Wheelhouse(), w))
		if err != nil {
			t.Fatalf("the wheelhouse lacks a wheel of profile pinned-2025q1's closure: %v", err)
		}
		if err := os.WriteFile(filepath.Join(wheels, w), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(wheels, "deepspeed-0.16.2.tar.gz"), setupPySdist(t, "deepspeed", "0.16.2"), 0o644); err != nil {
		t.Fatal(err)
	}

	ref, digest := pushDebianPython(ctx, t, registrytest.InProcess(t))
	r := &config.Recipe{Name: "sdist", Environment: config.Environment{
		Profile: "debian-python", Python: "3.11", Base: config.BaseImage{Image: ref, Digest: digest},
		Packages: map[string]string{"deepspeed": "0.16.2", "setuptools": "84.2.1"},
	}}
	base, _ := image.BaseRef(r.Environment, "")
	reqs := image.Requirements(r)
	pkgs, err := ResolvePythonLocal(ctx, reqs, LocalTarget{PythonVersion: "3.11", Platforms: ManylinuxPlatforms(image.LockGlibc), Wheels: wheels})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, image.Normalize(p.Name)+"=="+p.Version+map[bool]string{true: " (sdist)", false: ""}[p.Sdist])
	}
	if strings.Join(got, ", ") != "deepspeed==0.16.2 (sdist), nvidia-ml-py==13.615.71, setuptools==84.2.1" {
		t.Fatalf("the closure: %v", got)
	}
	spec, err := image.Build(r, image.Inputs{Python: pkgs, PythonInput: image.RequirementsDigest(reqs, base, image.DefaultPlatform),
		Entrypoints: stdlib.Entrypoints(), Version: "test", Epoch: 1700000000})
	if err != nil {
		t.Fatal(err)
	}

	d := buildkittest.Start(t)
	var progress bytes.Buffer
	res, err := New(Options{BuildKit: d.Addr, Cache: t.TempDir(), Wheels: wheels, Progress: &progress, ProgressMode: "plain"}).Build(ctx, spec)
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(progress.String(), 6000))
	}
	fs := buildkittest.Files(t, res.Image)
	init := fs[image.SitePackages+"/deepspeed/__init__.py"]
	if init != "BUILD_OPS = '0'\nACCELERATOR = 'cpu'\nSETUPTOOLS = '84.2.1'\n" {
		t.Fatalf("the sdist's build saw %q, want DS_BUILD_OPS=0, DS_ACCELERATOR=cpu and the locked setuptools 84.2.1", init)
	}
	for _, want := range []string{"/nvidia_ml_py-13.615.71.dist-info/RECORD", "/setuptools-84.2.1.dist-info/RECORD", "/deepspeed-0.16.2.dist-info/RECORD"} {
		if fs[image.SitePackages+want] == "" {
			var have []string
			for p := range fs {
				if strings.Contains(p, "deepspeed") {
					have = append(have, p)
				}
			}
			t.Errorf("%s%s is not in the image; deepspeed's files: %v", image.SitePackages, want, have)
		}
	}
	noBytecode(t, fs)
	// The build of an sdist must not make the image irreproducible.
	sameDigestOnAFreshDaemon(ctx, t, spec, wheels, res.Digest)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
