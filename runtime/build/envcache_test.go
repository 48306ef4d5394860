package build

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeEnv(t *testing.T, dir string, size int, used time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", "a"), make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dir, used, used); err != nil {
		t.Fatal(err)
	}
}

func TestPruneEnvironmentsKeepsTheKeptAndTheRecent(t *testing.T) {
	cache := t.TempDir()
	now := time.Now()
	env := filepath.Join(cache, "env")
	writeEnv(t, filepath.Join(env, "old"), 1000, now.Add(-30*24*time.Hour))
	writeEnv(t, filepath.Join(env, "kept"), 10, now.Add(-30*24*time.Hour))
	writeEnv(t, filepath.Join(env, "recent"), 100, now.Add(-time.Hour))
	writeEnv(t, filepath.Join(env, "old.tmp-1"), 7, now.Add(-2*time.Hour)) // a killed build
	writeEnv(t, filepath.Join(env, "new.tmp-2"), 7, now.Add(-time.Minute)) // a build running now

	imgs, err := Environments(cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 3 || imgs[0].Key != "recent" || imgs[2].Size != 1000 && imgs[1].Size != 1000 {
		t.Fatalf("listed %+v", imgs)
	}
	res, err := PruneEnvironments(cache, map[string]bool{"kept": true}, 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 1 || res.Freed != 1007 {
		t.Errorf("removed %d, freed %d; want 1 image and 1007 bytes", res.Removed, res.Freed)
	}
	for name, want := range map[string]bool{"old": false, "kept": true, "recent": true, "old.tmp-1": false, "new.tmp-2": true} {
		_, err := os.Stat(filepath.Join(env, name))
		if got := err == nil; got != want {
			t.Errorf("%s present = %v, want %v", name, got, want)
		}
	}
	if imgs, _ := Environments(t.TempDir()); len(imgs) != 0 {
		t.Errorf("an empty cache lists %v", imgs)
	}
}
