package runner

import (
	"path/filepath"
	"testing"
)

// TestCacheRoot: --cache, then $FTC_CACHE, then $XDG_CACHE_HOME/ftc, then
// ~/.cache/ftc.
func TestCacheRoot(t *testing.T) {
	t.Setenv("FTC_CACHE", "/f")
	t.Setenv("XDG_CACHE_HOME", "/x")
	t.Setenv("HOME", "/h")
	if got := CacheRoot("/flag"); got != "/flag" {
		t.Errorf("--cache: %s", got)
	}
	if got := CacheRoot(""); got != "/f" {
		t.Errorf("$FTC_CACHE: %s", got)
	}
	t.Setenv("FTC_CACHE", "")
	if got := CacheRoot(""); got != filepath.Join("/x", "ftc") {
		t.Errorf("$XDG_CACHE_HOME: %s", got)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	if got := CacheRoot(""); got != filepath.Join("/h", ".cache", "ftc") {
		t.Errorf("home: %s", got)
	}
}

// TestDirsAt: the layout the commands and ftc cache gc agree on.
func TestDirsAt(t *testing.T) {
	d := DirsAt("/c")
	want := map[string]string{d.Store: "/c/cas", d.Runs: "/c/runs", d.Records: "/c/records", d.Hashes: "/c/hashes",
		d.Envs: "/c/envs", d.Images: "/c/images", d.Entrypoints: "/c/entrypoints"}
	for got, w := range want {
		if got != filepath.FromSlash(w) {
			t.Errorf("got %s, want %s", got, w)
		}
	}
	if c := d.Cache(); c.Root != "/c" || c.Store != d.Store || c.Images != d.Images {
		t.Errorf("Cache() = %+v", c)
	}
}
