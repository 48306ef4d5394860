package examples

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/runtime/resolve"
)

// TestExampleLocksAreCurrent: every example has its ftc.lock committed, resolved (by `ftc lock`, against PyPI) for exactly
// what its recipe's profile pins now, and the stock profile's base image
// is the official Python image of the profile's Python. deepspeed, which
// PyPI has only as sdists, is locked by its sdist's sha256
// (image.SourceBuilt). After a profile
// change: `ftc lock --update examples/NAME/recipe.cue` (about a minute
// each; the base stays unpinned where Docker Hub is not reachable).
func TestExampleLocksAreCurrent(t *testing.T) {
	recipes, err := filepath.Glob("*/recipe.cue")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range recipes {
		name := filepath.Dir(path)
		t.Run(name, func(t *testing.T) {
			r, diags, err := compiler.Vet(path, nil)
			if err != nil {
				t.Fatalf("example does not vet:\n%v", diags)
			}
			env := r.Environment
			if want := "python:" + env.Python + "-slim-"; !strings.HasPrefix(env.Base.Image, want) {
				t.Errorf("profile %s: base %s is not the official image of its Python %s (%s…)", env.Profile, env.Base.Image, env.Python, want)
			}
			reqs := image.Requirements(r)
			lockPath := filepath.Join(name, "ftc.lock")
			if _, err := os.Stat(lockPath); err != nil {
				t.Fatalf("%v: run `ftc lock %s`", err, path)
			}
			lock, err := resolve.ReadLock(lockPath)
			if err != nil {
				t.Fatalf("%v (run `ftc lock %s`)", err, path)
			}
			if lock.Python == nil || !image.PythonLockCurrent(r, "", lock.Python.Input, image.DefaultPlatform) {
				t.Fatalf("%s is not resolved for what profile %s pins now: run `ftc lock --update %s`", lockPath, env.Profile, path)
			}
			locked := map[string]string{}
			var pkgs []image.Package
			for _, p := range lock.Python.Packages {
				pkgs = append(pkgs, image.Package{Name: p.Name, Version: p.Version, Hashes: p.Hashes, Sdist: p.Sdist})
				locked[image.Normalize(p.Name)] = p.Version
				if len(p.Hashes) == 0 {
					t.Errorf("%s: %s==%s has no hash", lockPath, p.Name, p.Version)
				}
			}
			if err := image.CheckSdists(pkgs); err != nil {
				t.Errorf("%s: %v", lockPath, err)
			}
			for _, q := range reqs {
				if v := locked[image.Normalize(q.Name)]; v != q.Version {
					t.Errorf("%s: %s locked at %q, the profile pins %s", lockPath, q.Name, v, q.Version)
				}
			}
		})
	}
}
