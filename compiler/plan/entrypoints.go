package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ftc-dev/ftc/stdlib"
)

// entrypointsDigest identifies the code that runs every stage: the
// entrypoints package embedded in this ftc and shipped in its images. It
// is part of every key, so a fix to the entrypoints reruns what they
// produced, while an ftc release that leaves them alone keeps every cached
// result. (DESIGN.md asks keys to hash the image config digest; that
// config carries ftc's version label, which would invalidate every cache
// on every release. The library set is hashed as the environment key.)
func entrypointsDigest() string {
	if d := pinnedEntrypoints.Load(); d != nil {
		return *d
	}
	return embeddedEntrypointsDigest()
}

var embeddedEntrypointsDigest = sync.OnceValue(func() string {
	d, err := TreeDigest(stdlib.Entrypoints())
	if err != nil {
		panic("hashing the embedded entrypoints: " + err.Error())
	}
	return d
})

// EntrypointsDigest is the digest of the embedded entrypoints package, as
// hashed into every key. The local backend names its materialised copy by
// it.
func EntrypointsDigest() string { return embeddedEntrypointsDigest() }

var pinnedEntrypoints atomic.Pointer[string]

// PinEntrypointsDigestForGoldens makes the keys computed afterwards in this
// process hash d in place of the embedded entrypoints' digest. It exists
// for golden tests only (examples, launch scripts): with it, an edit to
// the Python entrypoints does not rewrite every golden key, while
// TestKeysHashTheEmbeddedEntrypoints checks that the real digest reaches
// every kind of stage key. ftc itself never calls it (the same test checks
// that no non-test file does). EntrypointsDigest is unaffected.
func PinEntrypointsDigestForGoldens(d string) { pinnedEntrypoints.Store(&d) }

// TreeDigest hashes a file tree the way the entrypoints digest does: every
// file's path and content in lexical order, bytecode caches left out. The
// local backend verifies its materialised copy of the entrypoints with it,
// so one function decides what "the same entrypoints" means.
func TreeDigest(fsys fs.FS) (string, error) {
	h := sha256.New()
	// fs.WalkDir visits in lexical order: the digest does not depend on
	// the file system.
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "__pycache__" {
				return fs.SkipDir // bytecode a local test run leaves behind
			}
			return nil
		}
		if strings.HasSuffix(p, ".pyc") {
			return nil
		}
		f, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		io.WriteString(h, path.Clean(p)+"\x00")
		_, err = io.Copy(h, f)
		io.WriteString(h, "\x00")
		return err
	})
	if err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
