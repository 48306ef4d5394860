package image

import (
	"fmt"
	"sort"
	"strings"
)

// ftc locks and installs wheels only: an sdist runs a build backend. A
// few distributions a profile needs exist on PyPI only as sdists (every
// deepspeed release). Those, and only those, are locked by the sha256 of
// their sdist (the index's file, exact version, like any wheel) and built
// at install time, after every wheel is installed, without build isolation
// (against the locked torch and setuptools, nothing fetched) and with the
// environment their entry names. One list, used by ftc lock, ftc build,
// ftc env create and the CI test environments (internal/pyenvs).

// SourceBuild is how one sdist-only distribution is locked and built.
type SourceBuild struct {
	// Requires are runtime dependencies the sdist's PKG-INFO does not
	// declare (its setup.py adds them when it runs on the target), PEP 508.
	Requires []string
	// Build is the build backend, resolved into the closure and installed
	// with the wheels, before the sdist is built.
	Build []string
	// Env is the build's environment (KEY=VALUE).
	Env []string
}

var sourceBuilt = map[string]SourceBuild{
	// DeepSpeed's setup.py adds nvidia-ml-py to its dependencies when it
	// sees CUDA; the target is CUDA. DS_BUILD_OPS=0: no C++/CUDA op is
	// compiled at install (DeepSpeed JIT-compiles the ops a run needs).
	// DS_ACCELERATOR=cpu: setup.py's accelerator probe, which on a machine
	// with a GPU and no CUDA toolkit (the torch wheels bring none) fails in
	// 0.16 (installed_cuda_version: CUDA_HOME does not exist), and which
	// records only build-time facts (deepspeed/git_version_info_installed:
	// installed_ops, all False; the compatible ops are recomputed at each
	// launch for the accelerator that runs). setuptools ≥ 70.1 builds wheels
	// without the wheel package.
	"deepspeed": {
		Requires: []string{"nvidia-ml-py"},
		Build:    []string{"setuptools>=70.1"},
		Env:      []string{"DS_BUILD_OPS=0", "DS_ACCELERATOR=cpu"},
	},
}

// SourceBuilt reports whether name is a distribution ftc takes from its
// sdist, and how.
func SourceBuilt(name string) (SourceBuild, bool) {
	b, ok := sourceBuilt[Normalize(name)]
	return b, ok
}

// SourceBuiltNames are the distributions of SourceBuilt, sorted.
func SourceBuiltNames() []string {
	var out []string
	for n := range sourceBuilt {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// CheckSdists refuses a closure with an sdist ftc does not build from
// source, or a SourceBuilt distribution locked as a wheel.
func CheckSdists(pkgs []Package) error {
	for _, p := range pkgs {
		_, ok := SourceBuilt(p.Name)
		switch {
		case p.Sdist && !ok:
			return fmt.Errorf("Python package %s==%s is locked as an sdist; ftc installs only wheels, except for %s: run `ftc lock --update`",
				p.Name, p.Version, strings.Join(SourceBuiltNames(), ", "))
		case !p.Sdist && ok:
			return fmt.Errorf("Python package %s==%s is locked as a wheel; ftc builds it from its sdist: run `ftc lock --update`", p.Name, p.Version)
		}
	}
	return nil
}

// InstallPass is one pip install of a locked closure: the wheels first,
// then (when the closure has any) the sdists, built against them.
type InstallPass struct {
	// Packages are what this pass installs (RequirementsTxt renders them).
	Packages []Package
	// Args are pip install's options: --require-hashes and --no-deps
	// always (the lock is the closure), wheels only or these sdists only.
	Args []string
	// Env is the environment of the pass (the sdists' builds).
	Env []string
}

// InstallPasses splits a locked closure into the pip installs that put it
// in place, in order. Every installer (image, ftc env create, CI's test
// environments) runs these, adding only where to install and where the
// files come from.
func InstallPasses(pkgs []Package) ([]InstallPass, error) {
	if err := CheckSdists(pkgs); err != nil {
		return nil, err
	}
	var wheels, sdists []Package
	for _, p := range pkgs {
		if p.Sdist {
			sdists = append(sdists, p)
		} else {
			wheels = append(wheels, p)
		}
	}
	out := []InstallPass{{Packages: wheels, Args: []string{"--require-hashes", "--no-deps", "--only-binary=:all:"}}}
	if len(sdists) == 0 {
		return out, nil
	}
	var names []string
	env := map[string]bool{}
	for _, p := range sdists {
		names = append(names, Normalize(p.Name))
		b, _ := SourceBuilt(p.Name)
		for _, e := range b.Env {
			env[e] = true
		}
	}
	// --use-pep517: a setup.py-only sdist (deepspeed's) is built into a
	// wheel by the locked setuptools' PEP 517 backend and installed with a
	// dist-info, whatever pip the base has. Without it, pip 23.0 (Debian
	// 12's) falls back to `setup.py install` when the wheel package is not
	// importable, and installs an egg-info: another layout than the test
	// environments' (TestSdistIsBuiltInBuildKit).
	s := InstallPass{Packages: sdists, Args: []string{"--require-hashes", "--no-deps", "--no-binary=" + strings.Join(names, ","), "--no-build-isolation", "--use-pep517"}}
	for e := range env {
		s.Env = append(s.Env, e)
	}
	sort.Strings(s.Env)
	return append(out, s), nil
}
