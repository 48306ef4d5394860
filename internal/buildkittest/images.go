package buildkittest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Entry is one entry of a base image's file system.
type Entry struct {
	Path    string
	Mode    int64
	Content []byte
	// Link makes the entry a symbolic link to Link.
	Link string
	// Dir makes the entry a directory.
	Dir bool
}

// Tar writes entries as a tar with fixed times and owners, sorted.
func Tar(entries []Entry) ([]byte, error) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: strings.TrimPrefix(e.Path, "/"), Mode: e.Mode, ModTime: time.Unix(0, 0)}
		switch {
		case e.Dir:
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case e.Link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Content))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.Content); err != nil {
			return nil, err
		}
	}
	err := tw.Close()
	return buf.Bytes(), err
}

// PushBase pushes a one-layer linux/amd64 image made of the tar at
// layerTar (a file, or bytes) to ref and returns ref's repository with the
// pushed digest ("host/repo:tag@sha256:…" split as image and digest).
func PushBase(ctx context.Context, ref string, layer v1.Layer, env []string) (string, string, error) {
	return PushBaseLayers(ctx, ref, []v1.Layer{layer}, env)
}

// PushBaseLayers is PushBase with several layers, bottom first.
func PushBaseLayers(ctx context.Context, ref string, layers []v1.Layer, env []string) (string, string, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return "", "", err
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return "", "", err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return "", "", err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = env
	cf.Config.Cmd = []string{"/bin/sh"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return "", "", err
	}
	if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
		return "", "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", "", err
	}
	return ref, d.String(), nil
}

// fakePython is a stand-in for `python3 -m pip install` in the busybox
// base: enough of pip's command line for ftc's two pip steps, so the
// environment step really runs there without a Python.
//
//   - with --dry-run --report FILE: for each "name==version" requirement,
//     the wheel name-version-*.whl from --find-links, reported with its
//     sha256 as pip does;
//   - otherwise (--require-hashes): each requirement's wheel is checked
//     against its --hash values and unzipped into --target.
const fakePython = `#!/bin/sh
# Fake python3 for ftc's tests: implements "python3 -m pip install" only.
set -eu
[ "$1 $2 $3" = "-m pip install" ] || { echo "fake python3: only '-m pip install' is supported: $*" >&2; exit 2; }
shift 3
links= target= report= reqs= dry=
while [ $# -gt 0 ]; do
	case "$1" in
	--find-links) links=$2; shift ;;
	--target) target=$2; shift ;;
	--report) report=$2; shift ;;
	-r) reqs=$2; shift ;;
	--dry-run) dry=1 ;;
	esac
	shift
done
wheel() { # name version
	n=$(echo "$1" | sed 's/[-.]/_/g' | tr 'A-Z' 'a-z')
	for w in "$links"/*; do
		b=$(basename "$w" | tr 'A-Z' 'a-z')
		case "$b" in "$n-$2-"*.whl) echo "$w"; return 0 ;; esac
	done
	echo "fake pip: no wheel for $1==$2 in $links" >&2; exit 1
}
if [ -n "$dry" ]; then
	sep=
	printf '{"version": "1", "install": [' > "$report"
	grep -v '^#' "$reqs" | while read -r line; do
		[ -n "$line" ] || continue
		n=${line%%==*}; v=${line#*==}
		w=$(wheel "$n" "$v")
		h=$(sha256sum "$w" | cut -d' ' -f1)
		printf '%s{"metadata": {"name": "%s", "version": "%s"}, "download_info": {"url": "file://%s", "archive_info": {"hashes": {"sha256": "%s"}}}}' "$sep" "$n" "$v" "$w" "$h" >> "$report"
		sep=', '
	done
	printf ']}\n' >> "$report"
	exit 0
fi
mkdir -p "$target"
grep -v '^#' "$reqs" | while read -r spec rest; do
	[ -n "$spec" ] || continue
	n=${spec%%==*}; v=${spec#*==}
	w=$(wheel "$n" "$v")
	h=$(sha256sum "$w" | cut -d' ' -f1)
	case " $rest " in *" --hash=sha256:$h "*) ;; *) echo "fake pip: hash mismatch for $w: $h not in $rest" >&2; exit 1 ;; esac
	unzip -q -o "$w" -d "$target"
	echo "installed $n $v"
done
`

// BusyboxEntries is a minimal root file system: Debian's static busybox
// with a link per applet, /tmp, and the fake python3 above.
func BusyboxEntries() ([]Entry, error) {
	bin, err := exec.LookPath("busybox")
	if err != nil {
		return nil, fmt.Errorf("busybox is not installed (scripts/test.sh installs it: apt-get install busybox-static): %w", err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(bin, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w (is it busybox-static?)", bin, err)
	}
	entries := []Entry{
		{Path: "bin", Dir: true, Mode: 0o755},
		{Path: "bin/busybox", Mode: 0o755, Content: b},
		{Path: "tmp", Dir: true, Mode: 0o1777},
		{Path: "etc", Dir: true, Mode: 0o755},
		{Path: "etc/passwd", Mode: 0o644, Content: []byte("root:x:0:0:root:/root:/bin/sh\n")},
		{Path: "usr", Dir: true, Mode: 0o755},
		{Path: "usr/bin", Dir: true, Mode: 0o755},
		{Path: "usr/bin/python3", Mode: 0o755, Content: []byte(fakePython)},
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" {
			entries = append(entries, Entry{Path: "bin/" + applet, Link: "busybox", Mode: 0o777})
		}
	}
	return entries, nil
}

// BusyboxBase pushes the busybox base to registry (host:port) and returns
// its image reference and digest.
func BusyboxBase(t testing.TB, registry string) (string, string) {
	t.Helper()
	entries, err := BusyboxEntries()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Tar(entries)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	ref, digest, err := PushBase(context.Background(), registry+"/base/busybox:1", layer, []string{"PATH=/usr/local/bin:/usr/bin:/bin"})
	if err != nil {
		t.Fatal(err)
	}
	return ref, digest
}

// DebianPythonTar makes (once per CacheDir) a Debian 12 root file system
// with python3 and pip by debootstrap, as a tar; about 300 MB, a few
// minutes the first time. It needs root, debootstrap and Debian's mirror.
func DebianPythonTar(ctx context.Context) (string, error) {
	dir := CacheDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "debian-bookworm-python3.tar")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", fmt.Errorf("debootstrap is not installed (scripts/test.sh installs it: apt-get install debootstrap): %w", err)
	}
	lock := flockFor(out)
	if ok, err := lock.TryLockContext(ctx, time.Second); err != nil || !ok {
		return "", fmt.Errorf("locking %s: %v", out, err)
	}
	defer lock.Unlock()
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	root, err := os.MkdirTemp(dir, "debootstrap-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(root)
	mirror := os.Getenv("FTC_TEST_DEBIAN_MIRROR")
	if mirror == "" {
		mirror = "http://deb.debian.org/debian"
	}
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include=python3,python3-pip", "bookworm", root, mirror)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("debootstrap: %v\n%s", err, tail(b, 3000))
	}
	// Unmount what debootstrap may have left mounted (proc, sys).
	if err := Unmount(root); err != nil {
		return "", err
	}
	tmp := out + ".tmp"
	cmd = exec.CommandContext(ctx, "tar", "--sort=name", "--mtime=@0", "--numeric-owner", "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "-C", root, "-cf", tmp, ".")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("tar: %v\n%s", err, b)
	}
	return out, os.Rename(tmp, out)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Files reads an image's flattened file system: path → content.
func Files(t testing.TB, img v1.Image) map[string]string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out["/"+strings.TrimPrefix(h.Name, "/")] = string(b)
	}
}
