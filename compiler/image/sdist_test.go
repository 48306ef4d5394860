package image_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/image"
)

// withSdist is inputs(r) with deepspeed locked as its sdist (or, sdist
// false, as a wheel).
func withSdist(t *testing.T, sdist bool) image.Inputs {
	r := vetFile(t, "../../examples/sft-zero2/recipe.cue")
	in := inputs(r)
	found := false
	for i, p := range in.Python {
		if p.Name == "deepspeed" {
			in.Python[i].Sdist, found = sdist, true
		}
	}
	if !found {
		t.Fatalf("a ZeRO recipe's closure has no deepspeed: %+v", in.Python)
	}
	return in
}

// deepspeed (PyPI has only sdists) is installed from its sdist, pinned by
// its sha256, in a step after the wheels: no build isolation (the locked
// torch and setuptools on PYTHONPATH), no C++ ops compiled, wheels only
// for everything else.
func TestSpecBuildsTheSdistsAfterTheWheels(t *testing.T) {
	r := vetFile(t, "../../examples/sft-zero2/recipe.cue")
	s, err := image.Build(r, withSdist(t, true))
	if err != nil {
		t.Fatal(err)
	}
	st := s.Environment.Steps
	if len(st) != 4 || st[2].File == nil || st[2].File.Path != image.SdistRequirementsFile || st[3].Run == nil {
		t.Fatalf("steps: %+v", st)
	}
	if w := string(st[0].File.Content); strings.Contains(w, "deepspeed") || !strings.Contains(w, "\ntorch==2.5.0 ") {
		t.Fatalf("the wheels' requirements:\n%s", w)
	}
	if sd := string(st[2].File.Content); !strings.Contains(sd, "\ndeepspeed==0.16.2 --hash=sha256:aaaa") || strings.Contains(sd, "torch") {
		t.Fatalf("the sdists' requirements:\n%s", sd)
	}
	args := " " + strings.Join(st[3].Run.Args, " ") + " "
	for _, want := range []string{" --require-hashes ", " --no-deps ", " --no-binary=deepspeed ", " --no-build-isolation ", " --target " + image.SitePackages + " ", " -r " + image.SdistRequirementsFile + " "} {
		if !strings.Contains(args, want) {
			t.Errorf("pip args lack%s: %s", want, args)
		}
	}
	if strings.Contains(args, "only-binary") {
		t.Errorf("the sdist step allows wheels only: %s", args)
	}
	env := " " + strings.Join(st[3].Run.Env, " ") + " "
	for _, want := range []string{" DS_BUILD_OPS=0 ", " DS_ACCELERATOR=cpu ", " PYTHONPATH=" + image.SitePackages + " ", " SOURCE_DATE_EPOCH="} {
		if !strings.Contains(env, want) {
			t.Errorf("the sdist step's environment lacks%s: %s", want, env)
		}
	}
}

// A lock that has deepspeed as a wheel, or another package as an sdist,
// is not one ftc lock wrote: refused as unpinned, naming it.
func TestBuildRefusesAnSdistNotAllowed(t *testing.T) {
	r := vetFile(t, "../../examples/sft-zero2/recipe.cue")
	var u image.Unpinned
	_, err := image.Build(r, withSdist(t, false))
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "deepspeed==0.16.2 is locked as a wheel") {
		t.Fatalf("err = %v", err)
	}
	in := withSdist(t, true)
	for i, p := range in.Python {
		if p.Name == "numpy" {
			in.Python[i].Sdist = true
		}
	}
	_, err = image.Build(r, in)
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "numpy==2.0.0 is locked as an sdist; ftc installs only wheels, except for deepspeed") {
		t.Fatalf("err = %v", err)
	}
}

func TestInstallPasses(t *testing.T) {
	h := []string{hashA}
	p, err := image.InstallPasses([]image.Package{{Name: "torch", Version: "2.5.0", Hashes: h}})
	if err != nil || len(p) != 1 || strings.Join(p[0].Args, " ") != "--require-hashes --no-deps --only-binary=:all:" || p[0].Env != nil {
		t.Fatalf("%+v %v", p, err)
	}
	p, err = image.InstallPasses([]image.Package{{Name: "DeepSpeed", Version: "0.19.8", Hashes: h, Sdist: true}, {Name: "torch", Version: "2.11.0", Hashes: h}})
	if err != nil || len(p) != 2 || p[0].Packages[0].Name != "torch" || p[1].Packages[0].Name != "DeepSpeed" ||
		strings.Join(p[1].Args, " ") != "--require-hashes --no-deps --no-binary=deepspeed --no-build-isolation --use-pep517" ||
		strings.Join(p[1].Env, " ") != "DS_ACCELERATOR=cpu DS_BUILD_OPS=0" {
		t.Fatalf("%+v %v", p, err)
	}
}
