package resolve

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ftc-dev/ftc/compiler/config"
)

// PinSum is the digest ftc pin writes for a path a recipe file in dir
// names (the sum load.RewritePins takes): a file's sha256, or, for a
// directory or a glob, the digest of its files' (config.PathDigest, which
// vet checks as the dataset declares it). A path that leaves the recipe's
// directory is refused and left alone.
func PinSum(dir string, h *Hasher) func(path string) (string, error) {
	return func(path string) (string, error) {
		if !fs.ValidPath(path) {
			return "", fmt.Errorf("not a path inside the recipe's directory; left alone")
		}
		return config.PathDigest(os.DirFS(dir), path, "", func(rel string) (string, error) {
			return h.SHA256(filepath.Join(dir, filepath.FromSlash(rel)))
		})
	}
}

// ReplaceFile replaces file with b atomically (a temporary file beside
// it, renamed over it), keeping its mode.
func ReplaceFile(file string, b []byte) error {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(file); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".ftc-pin-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
