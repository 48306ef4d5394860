package envcheck

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"

	"github.com/ftc-dev/ftc/compiler/image"
)

// A virtual environment made from a lock's Python closure (ftc env create)
// holds exactly the locked wheels, installed with pip --require-hashes
// --no-deps: no resolver runs, so nothing but the lock decides what is in
// it. Its directory in the cache is named by VenvKey, the digest of the
// closure and the Python release, so every recipe whose lock has the same
// closure shares one, and ftc run finds it without being told.

// VenvMarker is the file a finished environment holds, written last: a
// directory without it is a creation that did not finish.
const VenvMarker = "ftc-env.json"

// venvFormat versions VenvKey.
const venvFormat = "ftc venv v1"

// VenvKey names the environment of a closure for a Python release ("3.11").
func VenvKey(python string, pkgs []image.Package) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\npython %s\n", venvFormat, python)
	for _, p := range pkgs {
		fmt.Fprintf(h, "%s==%s %s\n", image.Normalize(p.Name), p.Version, strings.Join(p.Hashes, " "))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// VenvDir is the cache directory of the environment with key.
func VenvDir(root, key string) string { return filepath.Join(root, key[:32]) }

// Venv is a finished environment.
type Venv struct {
	Dir string `json:"-"`
	// Key is VenvKey of what it holds.
	Key     string `json:"key"`
	Profile string `json:"profile"`
	// Python is the interpreter's full version, Packages the number of
	// distributions installed from the lock.
	Python   string `json:"python"`
	Packages int    `json:"packages"`
	// Created is set when CreateVenv made it now.
	Created bool `json:"-"`
}

// Interpreter is the environment's python.
func (v *Venv) Interpreter() string { return filepath.Join(v.Dir, "bin", "python") }

// FindVenv returns the finished environment in dir when it holds key.
func FindVenv(dir, key string) (*Venv, bool) {
	b, err := os.ReadFile(filepath.Join(dir, VenvMarker))
	if err != nil {
		return nil, false
	}
	v := &Venv{Dir: dir}
	if json.Unmarshal(b, v) != nil || v.Key != key {
		return nil, false
	}
	if _, err := os.Stat(v.Interpreter()); err != nil {
		return nil, false
	}
	return v, true
}

// VenvOptions say what CreateVenv makes and from what.
type VenvOptions struct {
	// Python is the interpreter the environment is made from; it must be
	// the release the lock is for (Release, "3.11"), on x86_64 Linux.
	Python  string
	Release string
	Profile string
	// Packages is the locked closure, each with its sha256.
	Packages []image.Package
	// Dir is where the environment goes.
	Dir string
	// Wheels (a local directory, no network) or IndexURL is where the
	// wheels come from; neither: pip's default index.
	Wheels, IndexURL string
	// Entrypoints, when set, is a directory (Entrypoints') the
	// environment's site-packages points at with a .pth file, so that its
	// python imports ftc outside ftc run too.
	Entrypoints string
	// Log receives pip's output.
	Log io.Writer
}

// CheckWheelSource checks VenvOptions' Wheels and IndexURL as flags:
// one source at most, and Wheels a directory.
func CheckWheelSource(wheels, indexURL string) error {
	if wheels != "" && indexURL != "" {
		return errors.New("--wheels and --index-url: give one source of wheels")
	}
	if wheels != "" {
		if fi, err := os.Stat(wheels); err != nil || !fi.IsDir() {
			return fmt.Errorf("--wheels %s: not a directory", wheels)
		}
	}
	return nil
}

// pythonInfo is what the interpreter says about itself before an
// environment is made from it.
type pythonInfo struct {
	Version  string `json:"version"`
	Platform string `json:"platform"`
	Machine  string `json:"machine"`
	Venv     bool   `json:"venv"`
}

const infoScript = `import importlib.util, json, platform, sys
venv = all(importlib.util.find_spec(m) is not None for m in ("venv", "ensurepip"))
print(json.dumps({"version": "%d.%d.%d" % sys.version_info[:3], "platform": sys.platform,
                  "machine": platform.machine(), "venv": venv}))`

// CreateVenv makes the environment o asks for, or returns the finished
// one already in o.Dir. Another ftc making the same one waits. A creation
// that fails leaves nothing behind; a directory that is neither empty nor
// an environment ftc made is refused, never removed.
func CreateVenv(ctx context.Context, o VenvOptions) (*Venv, error) {
	key := VenvKey(o.Release, o.Packages)
	if err := os.MkdirAll(filepath.Dir(o.Dir), 0o755); err != nil {
		return nil, err
	}
	lk := flock.New(o.Dir + ".lock")
	if err := lk.Lock(); err != nil {
		return nil, fmt.Errorf("locking %s: %w", o.Dir, err)
	}
	defer lk.Unlock()
	if v, ok := FindVenv(o.Dir, key); ok {
		return v, linkEntrypoints(v, o.Entrypoints)
	}
	if err := usableDir(o.Dir); err != nil {
		return nil, err
	}
	info, err := interpreterInfo(ctx, o.Python)
	if err != nil {
		return nil, err
	}
	switch {
	case !sameRelease(info.Version, o.Release):
		return nil, fmt.Errorf("%s is Python %s; the lock's closure is for Python %s (profile %s): give a Python %s interpreter with --python (e.g. python%s)",
			o.Python, info.Version, o.Release, o.Profile, o.Release, o.Release)
	case info.Platform != "linux" || info.Machine != "x86_64":
		return nil, fmt.Errorf("%s runs on %s/%s; the lock's wheels are for linux/x86_64", o.Python, info.Platform, info.Machine)
	case !info.Venv:
		return nil, fmt.Errorf("%s has no venv module (on Debian and Ubuntu: apt-get install python%s-venv)", o.Python, o.Release)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(o.Dir)
		}
	}()
	if err := run(ctx, o.Log, o.Python, nil, "-m", "venv", o.Dir); err != nil {
		return nil, fmt.Errorf("making a virtual environment with %s: %w", o.Python, err)
	}
	installs, err := pipInstalls(o)
	if err != nil {
		return nil, err
	}
	v := &Venv{Dir: o.Dir, Key: key, Profile: o.Profile, Python: info.Version, Packages: len(o.Packages)}
	for i, in := range installs {
		if err := os.WriteFile(in.File, in.Content, 0o644); err != nil {
			return nil, err
		}
		if err := run(ctx, o.Log, v.Interpreter(), in.Env, in.Args...); err != nil {
			var pe *pipError
			if errors.As(err, &pe) && strings.Contains(pe.out, "DO NOT MATCH THE HASHES") {
				return nil, fmt.Errorf("a wheel's (or sdist's) sha256 is not the one ftc.lock pins (the file changed, or the lock was edited): nothing was installed\n%s", pe.tail())
			}
			if i > 0 {
				return nil, fmt.Errorf("building the locked sdists: %w", err)
			}
			return nil, fmt.Errorf("installing the locked packages: %w", err)
		}
	}
	if err := linkEntrypoints(v, o.Entrypoints); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	if err := renameio.WriteFile(filepath.Join(o.Dir, VenvMarker), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	done, v.Created = true, true
	return v, nil
}

// pipInstall is one pip run of CreateVenv: the requirements file it
// writes first, then pip's arguments and environment.
type pipInstall struct {
	File    string
	Content []byte
	Args    []string
	Env     []string
}

// pipInstalls are the pip runs that put o's closure in o.Dir, in order
// (image.InstallPasses: the wheels, then the sdists built against them).
// Exactly the lock: each file checked against its hash, no dependency
// resolution. The machine's pip configuration (extra indexes,
// find-links) has no say, as in ftc lock.
func pipInstalls(o VenvOptions) ([]pipInstall, error) {
	passes, err := image.InstallPasses(o.Packages)
	if err != nil {
		return nil, err
	}
	var out []pipInstall
	for i, p := range passes {
		file := filepath.Join(o.Dir, "ftc-requirements.txt")
		if i > 0 {
			file = filepath.Join(o.Dir, "ftc-requirements-sdist.txt")
		}
		args := append([]string{"-m", "pip", "install"}, p.Args...)
		args = append(args, "--no-input", "--disable-pip-version-check", "-r", file)
		switch {
		case o.Wheels != "":
			args = append(args, "--no-index", "--find-links", o.Wheels, "--no-cache-dir")
		case o.IndexURL != "":
			args = append(args, "--index-url", o.IndexURL)
		}
		env := []string{"PIP_CONFIG_FILE=/dev/null", "PIP_FIND_LINKS=", "PIP_EXTRA_INDEX_URL=", "PIP_INDEX_URL=", "PIP_REQUIRE_VIRTUALENV="}
		out = append(out, pipInstall{File: file, Content: image.RequirementsTxt(p.Packages, o.Profile), Args: args, Env: append(env, p.Env...)})
	}
	return out, nil
}

// usableDir accepts a missing or empty directory, and removes an
// environment ftc left unfinished or made from another closure (it has
// the requirements file ftc writes first).
func usableDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(ents) == 0 {
		return nil
	} else if err != nil {
		return err
	}
	_, marker := os.Stat(filepath.Join(dir, VenvMarker))
	_, reqs := os.Stat(filepath.Join(dir, "ftc-requirements.txt"))
	_, cfg := os.Stat(filepath.Join(dir, "pyvenv.cfg"))
	if cfg == nil && (marker == nil || reqs == nil) {
		return os.RemoveAll(dir)
	}
	return fmt.Errorf("%s exists and is not an environment ftc made: remove it or choose another directory", dir)
}

// linkEntrypoints points the environment's site-packages at the
// entrypoints directory (rewritten each time: a newer ftc brings its own).
func linkEntrypoints(v *Venv, dir string) error {
	if dir == "" {
		return nil
	}
	var out bytes.Buffer
	cmd := exec.Command(v.Interpreter(), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("finding the site-packages of %s: %w", v.Dir, err)
	}
	site := strings.TrimSpace(out.String())
	return renameio.WriteFile(filepath.Join(site, "ftc-entrypoints.pth"), []byte(dir+"\n"), 0o644)
}

// PythonRelease is the release of interpreter python ("3.11").
func PythonRelease(ctx context.Context, python string) (string, error) {
	info, err := interpreterInfo(ctx, python)
	if err != nil {
		return "", err
	}
	v := strings.SplitN(info.Version, ".", 3)
	if len(v) < 2 {
		return "", fmt.Errorf("%s says its version is %q", python, info.Version)
	}
	return v[0] + "." + v[1], nil
}

func interpreterInfo(ctx context.Context, python string) (*pythonInfo, error) {
	path, err := exec.LookPath(python)
	if err != nil {
		return nil, fmt.Errorf("Python interpreter %s: not found; give one with --python", python)
	}
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "-c", infoScript)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("asking %s its version: %v%s", python, err, indentTail(errOut.String()))
	}
	var info pythonInfo
	if err := json.Unmarshal(out.Bytes(), &info); err != nil {
		return nil, fmt.Errorf("asking %s its version: %v", python, err)
	}
	return &info, nil
}

// pipError is a failed command with its output.
type pipError struct {
	err error
	out string
}

func (e *pipError) Error() string { return e.err.Error() + e.tail() }

func (e *pipError) tail() string { return indentTail(e.out) }

func run(ctx context.Context, log io.Writer, name string, env []string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	w := io.Writer(&out)
	if log != nil {
		w = io.MultiWriter(&out, log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Run(); err != nil {
		return &pipError{err, out.String()}
	}
	return nil
}
