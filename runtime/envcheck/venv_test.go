package envcheck

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/image"
)

// ftc env create installs the wheels, then builds the locked sdists
// against them (image.InstallPasses): the second pip run has its own
// requirements file, no build isolation, the build's environment, and
// the same source of files.
func TestPipInstallsBuildTheSdistsLast(t *testing.T) {
	h := []string{"sha256:" + strings.Repeat("a", 64)}
	o := VenvOptions{Profile: "p", Dir: "/env", Wheels: "/w", Packages: []image.Package{
		{Name: "deepspeed", Version: "0.16.2", Hashes: h, Sdist: true},
		{Name: "torch", Version: "2.5.0", Hashes: h},
	}}
	in, err := pipInstalls(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 2 || in[0].File != filepath.Join("/env", "ftc-requirements.txt") || in[1].File != filepath.Join("/env", "ftc-requirements-sdist.txt") {
		t.Fatalf("%+v", in)
	}
	if !strings.Contains(string(in[0].Content), "\ntorch==2.5.0 ") || strings.Contains(string(in[0].Content), "deepspeed") ||
		!strings.Contains(string(in[1].Content), "\ndeepspeed==0.16.2 ") || strings.Contains(string(in[1].Content), "torch") {
		t.Fatalf("requirements:\n%s\n%s", in[0].Content, in[1].Content)
	}
	a0, a1 := strings.Join(in[0].Args, " "), strings.Join(in[1].Args, " ")
	if a0 != "-m pip install --require-hashes --no-deps --only-binary=:all: --no-input --disable-pip-version-check -r /env/ftc-requirements.txt --no-index --find-links /w --no-cache-dir" {
		t.Fatalf("wheels: %s", a0)
	}
	if a1 != "-m pip install --require-hashes --no-deps --no-binary=deepspeed --no-build-isolation --use-pep517 --no-input --disable-pip-version-check -r /env/ftc-requirements-sdist.txt --no-index --find-links /w --no-cache-dir" {
		t.Fatalf("sdists: %s", a1)
	}
	if e := strings.Join(in[1].Env, " "); !strings.Contains(e, "PIP_CONFIG_FILE=/dev/null") || !strings.HasSuffix(e, " DS_ACCELERATOR=cpu DS_BUILD_OPS=0") {
		t.Fatalf("sdists' environment: %s", e)
	}
	// A closure of wheels is one pip run, as before.
	o.Packages = o.Packages[1:]
	if in, err := pipInstalls(o); err != nil || len(in) != 1 {
		t.Fatalf("%+v %v", in, err)
	}
	// An sdist ftc does not build is refused before anything runs.
	o.Packages = []image.Package{{Name: "numpy", Version: "2.0", Hashes: h, Sdist: true}}
	if _, err := pipInstalls(o); err == nil || !strings.Contains(err.Error(), "numpy==2.0 is locked as an sdist") {
		t.Fatalf("err = %v", err)
	}
}
