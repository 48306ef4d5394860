package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/internal/buildkittest"
	"github.com/ftc-dev/ftc/internal/needs"
)

// fakeSdist is an sdist of name==version whose PKG-INFO declares requires.
func fakeSdist(t *testing.T, name, version string, requires []string) []byte {
	t.Helper()
	meta := fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", name, version)
	for _, r := range requires {
		meta += "Requires-Dist: " + r + "\n"
	}
	meta += "\nRequires-Dist: not-a-header (the description)\n"
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for p, c := range map[string]string{name + "-" + version + "/PKG-INFO": meta, name + "-" + version + "/sub/PKG-INFO": "Requires-Dist: nope\n"} {
		tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg})
		tw.Write([]byte(c))
	}
	tw.Close()
	zw.Close()
	return b.Bytes()
}

// deepspeed (image.SourceBuilt) is locked by its sdist's sha256; its
// PKG-INFO's dependencies (not its extras'), its entry's (nvidia-ml-py)
// and its build backend (setuptools) are resolved as wheels with the rest.
// From a wheel directory and from an index (PEP 503 page).
func TestResolvePythonLocalLocksAnSdist(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		needs.Missing(t, "python3 on PATH")
	}
	wheels := t.TempDir()
	for _, w := range [][2]string{{"ftc-b", "2.1"}, {"nvidia-ml-py", "12.0"}, {"setuptools", "80.0"}, {"ftc-a", "1.0"}} {
		if _, err := buildkittest.Wheel(wheels, w[0], w[1], map[string]string{strings.ReplaceAll(w[0], "-", "_") + "/__init__.py": ""}); err != nil {
			t.Fatal(err)
		}
	}
	sd := fakeSdist(t, "deepspeed", "0.16.2", []string{"ftc-b>=2", "ftc-c; extra == \"dev\""})
	if err := os.WriteFile(filepath.Join(wheels, "deepspeed-0.16.2.tar.gz"), sd, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(sd)
	hash := hex.EncodeToString(sum[:])
	reqs := []image.Requirement{{Name: "deepspeed", Version: "0.16.2"}, {Name: "ftc-a", Version: "1.0"}}
	check := func(pkgs []image.Package, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range pkgs {
			got = append(got, fmt.Sprintf("%s==%s %v", image.Normalize(p.Name), p.Version, p.Sdist))
		}
		if strings.Join(got, " ") != "deepspeed==0.16.2 true ftc-a==1.0 false ftc-b==2.1 false nvidia-ml-py==12.0 false setuptools==80.0 false" {
			t.Fatalf("closure %v", got)
		}
		if pkgs[0].Hashes[0] != "sha256:"+hash {
			t.Fatalf("deepspeed's hash %v is not its sdist's %s", pkgs[0].Hashes, hash)
		}
	}
	target := LocalTarget{PythonVersion: "3.11", Platforms: ManylinuxPlatforms(28), Wheels: wheels}
	check(ResolvePythonLocal(context.Background(), reqs, target))

	// From an index: the sdist's link carries its sha256, which the
	// downloaded file must match; the wheels come from the directory.
	served := sd
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/simple/deepspeed/":
			fmt.Fprintf(w, `<html><body><a href="../../files/deepspeed-0.16.1.tar.gz#sha256=%s">deepspeed-0.16.1.tar.gz</a>
<a href="../../files/deepspeed-0.16.2.tar.gz#sha256=%s" data-requires-python="&gt;=3.8">deepspeed-0.16.2.tar.gz</a></body></html>`, strings.Repeat("0", 64), hash)
		case "/files/deepspeed-0.16.2.tar.gz":
			w.Write(served)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	s, err := fetchSdist(context.Background(), "deepspeed", "0.16.2", srv.URL+"/simple", "")
	if err != nil || s.SHA256 != hash || strings.Join(s.Requires, ",") != "ftc-b>=2" {
		t.Fatalf("%+v %v", s, err)
	}
	served = append(append([]byte(nil), sd...), 0)
	if _, err := fetchSdist(context.Background(), "deepspeed", "0.16.2", srv.URL+"/simple", ""); err == nil || !strings.Contains(err.Error(), "the index says "+hash) {
		t.Fatalf("a file that is not the index's: err = %v", err)
	}
	if _, err := fetchSdist(context.Background(), "deepspeed", "0.16.3", srv.URL+"/simple", ""); err == nil || !strings.Contains(err.Error(), "no sdist deepspeed-0.16.3.tar.gz") {
		t.Fatalf("a missing version: err = %v", err)
	}
}
