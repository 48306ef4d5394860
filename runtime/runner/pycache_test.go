package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/compiler/config"
)

// TestPycacheEnv: only backends that run the stages in the image with the
// cache mounted get a bytecode folder, one per image digest; a dry run
// makes none.
func TestPycacheEnv(t *testing.T) {
	const img = "reg.example/ftc@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	pyxis := &config.Recipe{Hardware: config.Hardware{Slurm: &config.Slurm{Container: "pyxis"}}}
	bare := &config.Recipe{Hardware: config.Hardware{Slurm: &config.Slurm{Container: "none"}}}
	for _, c := range []struct {
		backend, image string
		r              *config.Recipe
		dry, want      bool
	}{
		{"docker", img, bare, false, true},
		{"podman", img, bare, false, true},
		{"slurm", img, pyxis, false, true},
		{"slurm", img, bare, false, false},
		{"slurm", img, &config.Recipe{}, false, false},
		{"local", img, bare, false, false},
		{"kubernetes", img, bare, false, false},
		{"docker", "reg.example/ftc:latest", bare, false, false},
		{"docker", img, bare, true, false},
	} {
		root := t.TempDir()
		o := Options{Backend: c.backend, Image: c.image, DryRun: c.dry, Dirs: DirsAt(root)}
		env, err := o.pycacheEnv(c.r)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(root, "pycache", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
		got := len(env) == 1 && env[0] == "PYTHONPYCACHEPREFIX="+dir
		if got != c.want || (!c.want && len(env) > 0) {
			t.Errorf("%s %s (dry run %v): env %q, want the folder: %v", c.backend, c.image, c.dry, env, c.want)
		}
		_, err = os.Stat(filepath.Join(dir, pycacheStamp))
		if c.want != (err == nil) {
			t.Errorf("%s %s: stamp %v", c.backend, c.image, err)
		}
	}
}

// TestPrunePycache: a folder a run used within keep stays; an older one,
// one without a stamp and, with keep 0, every one goes.
func TestPrunePycache(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	mk := func(name string, used time.Time) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Join(p, "usr/lib"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(p, "usr/lib/m.cpython-311.pyc"), []byte(strings.Repeat("x", 100)), 0o644)
		if !used.IsZero() {
			os.WriteFile(filepath.Join(p, pycacheStamp), nil, 0o644)
			os.Chtimes(filepath.Join(p, pycacheStamp), used, used)
		}
	}
	mk("recent", now.Add(-time.Hour))
	mk("old", now.Add(-72*time.Hour))
	mk("unstamped", time.Time{})
	u, err := prunePycache(dir, 24*time.Hour, now)
	if err != nil || u.Entries != 2 || u.Bytes != 200 {
		t.Fatalf("prunePycache(1 day) = %+v, %v; want 2 folders, 200 bytes", u, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "recent")); err != nil {
		t.Fatalf("the recently used folder went: %v", err)
	}
	if u, err := prunePycache(dir, 0, now); err != nil || u.Entries != 1 {
		t.Fatalf("prunePycache(0) = %+v, %v; want the last folder", u, err)
	}
	if u, err := prunePycache(filepath.Join(dir, "missing"), 0, now); err != nil || u.Entries != 0 {
		t.Fatalf("no folder: %+v, %v", u, err)
	}
}
