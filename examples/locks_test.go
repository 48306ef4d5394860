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

// noWheel are the distributions PyPI has only as sdists: ftc lock and
// ftc build take wheels only (an sdist would run a build backend), so an
// example that needs one cannot be locked yet.
var noWheel = map[string]bool{"deepspeed": true}

// TestExampleLocksAreCurrent: every example that can be locked has its
// ftc.lock committed, resolved (by `ftc lock`, against PyPI) for exactly
// what its recipe's profile pins now, and the stock profile's base image
// is the official Python image of the profile's Python. After a profile
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
			var blocked []string
			for _, q := range reqs {
				if noWheel[q.Name] {
					blocked = append(blocked, q.Name)
				}
			}
			lockPath := filepath.Join(name, "ftc.lock")
			if len(blocked) > 0 {
				if _, err := os.Stat(lockPath); err == nil {
					t.Errorf("%s is committed, but %v has no wheel on PyPI: how was it locked?", lockPath, blocked)
				}
				t.Logf("not lockable: %v has only an sdist on PyPI", blocked)
				return
			}
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
			for _, p := range lock.Python.Packages {
				locked[image.Normalize(p.Name)] = p.Version
				if len(p.Hashes) == 0 {
					t.Errorf("%s: %s==%s has no hash", lockPath, p.Name, p.Version)
				}
			}
			for _, q := range reqs {
				if v := locked[image.Normalize(q.Name)]; v != q.Version {
					t.Errorf("%s: %s locked at %q, the profile pins %s", lockPath, q.Name, v, q.Version)
				}
			}
		})
	}
}
