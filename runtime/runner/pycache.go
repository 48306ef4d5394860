package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/runtime/envcheck"
)

// Stage images carry no bytecode: .pyc files embed source mtimes, and
// their bytes depend on the order modules were compiled in
// (python/cpython#129724), so an image with them would not be
// reproducible. Compiling torch, transformers and trl at each import
// costs a stage process 10–20 seconds, in every container and every
// rank. Python can keep bytecode outside the source tree instead
// (PYTHONPYCACHEPREFIX): stages that run in an image write it into the
// cache, one folder per image digest, which the container backends mount
// at the same path; the first stage of an image compiles, the others and
// their ranks read. Bytecode is checked against its source's mtime and
// size at import, and a folder never serves another image.

// pycacheStamp is touched at each run that uses the folder: ftc cache gc
// removes the folders not used within --keep-days.
const pycacheStamp = ".ftc-used"

// PycacheDir is where stages running in image (REF@sha256:HEX) keep their
// bytecode; "" for an image not named by digest.
func (d Dirs) PycacheDir(image string) string {
	_, digest, ok := strings.Cut(image, "@sha256:")
	if !ok || len(digest) != 64 || d.Pycache == "" {
		return ""
	}
	return filepath.Join(d.Pycache, digest)
}

// pycacheEnv makes the image's bytecode folder and returns the variable
// that points the stages' Python at it; none for a backend that does not
// run the stages in the image with the cache mounted (local, kubernetes,
// slurm without a container runtime).
func (o *Options) pycacheEnv(r *config.Recipe) ([]string, error) {
	container := r.Hardware.SlurmSettings().Container
	inImage := o.Backend == "docker" || o.Backend == "podman" || (o.Backend == "slurm" && container != "" && container != "none")
	dir := o.Dirs.PycacheDir(o.Image)
	if !inImage || dir == "" || o.DryRun {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("the stage image's bytecode folder: %w", err)
	}
	stamp := filepath.Join(dir, pycacheStamp)
	now := time.Now()
	if err := os.Chtimes(stamp, now, now); errors.Is(err, fs.ErrNotExist) {
		err = os.WriteFile(stamp, nil, 0o644)
		if err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	return []string{"PYTHONPYCACHEPREFIX=" + dir}, nil
}

// prunePycache removes the image bytecode folders not used since before
// keep ago (all of them when keep is 0): they are only a cache, which
// the next stage in that image writes again.
func prunePycache(dir string, keep time.Duration, now time.Time) (envcheck.Usage, error) {
	var u envcheck.Usage
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return u, nil
	} else if err != nil {
		return u, err
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if !e.IsDir() {
			continue
		}
		if st, err := os.Stat(filepath.Join(p, pycacheStamp)); err == nil && keep > 0 && now.Sub(st.ModTime()) < keep {
			continue
		}
		size, err := envcheck.DirUsage(p)
		if err != nil {
			return u, err
		}
		if err := os.RemoveAll(p); err != nil {
			return u, fmt.Errorf("removing %s: %w (a container engine that runs as root writes it as root)", p, err)
		}
		u.Entries++
		u.Bytes += size.Bytes
	}
	return u, nil
}
