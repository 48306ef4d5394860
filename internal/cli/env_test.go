package cli_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/internal/needs"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ftc-dev/ftc/internal/buildkittest"
	"github.com/ftc-dev/ftc/internal/cli"
)

// lockEnv is a copy of the sft-trl-single example on a tiny profile of
// its own: one package ("tiny-hello", which requires "tiny-dep"), wheels
// made here in a local wheel directory, for this machine's python3
// release. Nothing reaches the network or a BuildKit daemon.
type lockEnv struct {
	t              *testing.T
	dir, recipe    string
	wheels, cache  string
	release        string // python3's "3.11"
	hello, dep     string // the wheel files
	set            string
	extra          []string // more flags for every command
	stdout, stderr string
}

func newLockEnv(t *testing.T, base string) *lockEnv {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		needs.Missing(t, "python3 on PATH")
	}
	out, err := exec.Command(py, "-c", "import sys; print('%d.%d' % sys.version_info[:2])").Output()
	if err != nil {
		t.Fatal(err)
	}
	// ftc lock reads the config.json of the recipe's Hub models: not
	// from the real Hub (a test that wants them starts a stand-in).
	t.Setenv("HF_HUB_OFFLINE", "1")
	e := &lockEnv{t: t, dir: t.TempDir(), wheels: t.TempDir(), cache: t.TempDir(), release: strings.TrimSpace(string(out))}
	copyTree(t, "../../examples/sft-trl-single", e.dir)
	e.recipe = filepath.Join(e.dir, "recipe.cue")
	e.hello = must(buildkittest.WheelRequires(e.wheels, "tiny-hello", "1.0", []string{"tiny-dep>=1"},
		map[string]string{"tiny_hello/__init__.py": "GREETING = 'installed from the lock'\n"}))
	e.dep = must(buildkittest.Wheel(e.wheels, "tiny-dep", "1.2", map[string]string{"tiny_dep/__init__.py": ""}))
	e.set = `environment={profile: "tiny", python: "` + e.release + `", cuda: "12.4", base: ` + base + `, packages: "tiny-hello": "1.0", optional: {}, features: []}`
	return e
}

// ftc runs the CLI in process with the environment override and the cache.
func (e *lockEnv) ftc(args ...string) int {
	e.t.Helper()
	var full []string
	full = append(full, args...)
	full = append(full, "--set", e.set, "--cache", e.cache)
	full = append(full, e.extra...)
	full = append(full, e.recipe)
	var stdout, stderr bytes.Buffer
	code := cli.Run(full, &stdout, &stderr)
	e.stdout, e.stderr = stdout.String(), stderr.String()
	return code
}

func (e *lockEnv) lockFile() string {
	return string(must(os.ReadFile(filepath.Join(e.dir, "ftc.lock"))))
}

func sha256Of(t *testing.T, path string) string {
	t.Helper()
	h, _, err := v1.SHA256(bytes.NewReader(must(os.ReadFile(path))))
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

const pinnedBase = `{image: "127.0.0.1:1/base:1", digest: "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}`

// TestLockNeedsNoDaemon: ftc lock resolves the closure on this machine,
// for the profile's Python, with every wheel's sha256, while the BuildKit
// address it is given does not exist.
func TestLockNeedsNoDaemon(t *testing.T) {
	e := newLockEnv(t, pinnedBase)
	e.extra = []string{"--buildkit", "unix:///nonexistent/buildkitd.sock"}
	if code := e.ftc("lock", "--wheels", e.wheels); code != 0 {
		t.Fatalf("ftc lock: exit %d\n%s\n%s", code, e.stdout, e.stderr)
	}
	lock := e.lockFile()
	for _, want := range []string{
		"\npython tiny-hello==1.0 " + sha256Of(t, e.hello) + "\n",
		"\npython tiny-dep==1.2 " + sha256Of(t, e.dep) + "\n",
		"\npython-input sha256:",
	} {
		if !strings.Contains(lock, want) {
			t.Fatalf("ftc.lock lacks %q:\n%s", want, lock)
		}
	}
	target := "cp" + strings.ReplaceAll(e.release, ".", "") + " manylinux_2_35_x86_64"
	if !strings.Contains(e.stdout, "2 Python package(s) (resolved now for "+target+")") {
		t.Errorf("ftc lock output:\n%s", e.stdout)
	}
	// Current: kept, not resolved again.
	if code := e.ftc("lock", "--wheels", e.wheels); code != 0 || strings.Contains(e.stdout, "resolved now") {
		t.Fatalf("second ftc lock: exit %d\n%s\n%s", code, e.stdout, e.stderr)
	}
	// A base change does not make a closure resolved without the base stale.
	e.set = strings.Replace(e.set, "127.0.0.1:1/base:1", "127.0.0.1:1/other:2", 1)
	if code := e.ftc("lock", "--wheels", e.wheels); code != 0 || strings.Contains(e.stdout, "resolved now") {
		t.Fatalf("ftc lock after a base change: exit %d\n%s\n%s", code, e.stdout, e.stderr)
	}
	// --in-base asks for BuildKit, which is not there.
	if code := e.ftc("lock", "--update", "--in-base", "--wheels", e.wheels); code != 1 || !strings.Contains(e.stderr, "nonexistent") {
		t.Fatalf("ftc lock --in-base without a daemon: exit %d\n%s", code, e.stderr)
	}
}

// TestLockWithoutRegistry: the base's registry cannot be reached, so the
// base is not pinned; the Python closure is locked all the same, and the
// error says both.
func TestLockWithoutRegistry(t *testing.T) {
	e := newLockEnv(t, `{image: "127.0.0.1:1/base:1"}`)
	if code := e.ftc("lock", "--wheels", e.wheels); code != 1 {
		t.Fatalf("ftc lock: exit %d, want 1\n%s\n%s", code, e.stdout, e.stderr)
	}
	if !strings.Contains(e.stderr, "pinning base image 127.0.0.1:1/base:1") || !strings.Contains(e.stderr, "the Python closure is locked: ftc env create can use it") {
		t.Fatalf("stderr:\n%s", e.stderr)
	}
	if lock := e.lockFile(); !strings.Contains(lock, "python tiny-hello==1.0 ") || strings.Contains(lock, "\nbase ") {
		t.Fatalf("ftc.lock:\n%s", lock)
	}
}

// TestEnvCreate makes the environment from the lock, hash-checked, in the
// cache; it holds exactly the closure and imports ftc; it is kept, and
// ftc env check uses it. Refused: no lock, a stale lock, another Python,
// a wheel whose hash is not the lock's (leaving nothing behind).
func TestEnvCreate(t *testing.T) {
	e := newLockEnv(t, pinnedBase)
	if code := e.ftc("env", "create", "--wheels", e.wheels); code != 1 || !strings.Contains(e.stderr, "has no Python closure for profile tiny: run ftc lock --set") {
		t.Fatalf("env create without a lock: exit %d\n%s\n%s", code, e.stdout, e.stderr)
	}
	if code := e.ftc("lock", "--wheels", e.wheels); code != 0 {
		t.Fatalf("ftc lock: exit %d\n%s", code, e.stderr)
	}

	if code := e.ftc("env", "create", "--wheels", e.wheels); code != 0 {
		t.Fatalf("env create: exit %d\n%s\n%s", code, e.stdout, e.stderr)
	}
	m := regexp.MustCompile(`environment (\S+) \(made now\): profile tiny, Python ` + regexp.QuoteMeta(e.release) + `\.\d+, 2 package\(s\) from ftc.lock, hash-checked`).FindStringSubmatch(e.stdout)
	if m == nil || !strings.HasPrefix(m[1], filepath.Join(e.cache, "envs")+"/") {
		t.Fatalf("env create output:\n%s", e.stdout)
	}
	venv := m[1]
	if !hasTableRow(e.stdout, "tiny-hello", "1.0", "1.0") || !strings.Contains(e.stdout, "ftc run and ftc env check use it when --python is not given") {
		t.Fatalf("env create output:\n%s", e.stdout)
	}
	python := filepath.Join(venv, "bin", "python")
	out, err := exec.Command(python, "-c", "import tiny_hello, tiny_dep, ftc; print(tiny_hello.GREETING)").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "installed from the lock" {
		t.Fatalf("the environment's python: %v\n%s", err, out)
	}
	// Exactly the closure (besides the installer venv brings).
	out, err = exec.Command(python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check").Output()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Fields(string(out)) {
		if !strings.HasPrefix(l, "pip==") && !strings.HasPrefix(l, "setuptools==") {
			got = append(got, l)
		}
	}
	if strings.Join(got, " ") != "tiny-dep==1.2 tiny-hello==1.0" && strings.Join(got, " ") != "tiny_dep==1.2 tiny_hello==1.0" {
		t.Fatalf("installed: %v", got)
	}

	// Kept: a second create installs nothing.
	if code := e.ftc("env", "create", "--wheels", e.wheels); code != 0 || !strings.Contains(e.stdout, "environment "+venv+" (already made)") {
		t.Fatalf("second env create: exit %d\n%s\n%s", code, e.stdout, e.stderr)
	}
	// ftc env check, without --python, checks that environment.
	e.ftc("env", "check")
	if !strings.Contains(e.stdout, "environment: "+python+" (Python "+e.release) || !hasTableRow(e.stdout, "tiny-hello", "1.0", "1.0") {
		t.Fatalf("env check did not check the environment made from the lock:\n%s\n%s", e.stdout, e.stderr)
	}

	// So does ftc run, before any stage starts (here it stops there: the
	// recipe trains on a GPU the tiny environment has no torch for).
	if code := e.ftc("run", "--offline"); code != 1 || !strings.Contains(e.stdout, "environment: "+venv+" (ftc env create, from ftc.lock)") ||
		!strings.Contains(e.stderr, "environment: "+python+" (Python "+e.release) {
		t.Fatalf("ftc run did not use the environment made from the lock: exit %d\n%s\n%s", code, e.stdout, e.stderr)
	}

	// Another Python release than the lock's.
	fake := filepath.Join(t.TempDir(), "python")
	os.WriteFile(fake, []byte("#!/bin/sh\necho '{\"version\": \"3.99.1\", \"platform\": \"linux\", \"machine\": \"x86_64\", \"venv\": true}'\n"), 0o755)
	if code := e.ftc("env", "create", "--python", fake, "--dir", filepath.Join(t.TempDir(), "v")); code != 1 ||
		!strings.Contains(e.stderr, fake+" is Python 3.99.1; the lock's closure is for Python "+e.release+" (profile tiny)") {
		t.Fatalf("env create with another Python: exit %d\n%s", code, e.stderr)
	}

	// A directory that is not an environment ftc made is never replaced.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644)
	if code := e.ftc("env", "create", "--wheels", e.wheels, "--dir", other); code != 1 || !strings.Contains(e.stderr, "is not an environment ftc made") {
		t.Fatalf("env create into a foreign directory: exit %d\n%s", code, e.stderr)
	}
	if _, err := os.Stat(filepath.Join(other, "notes.txt")); err != nil {
		t.Fatal("the foreign directory was touched")
	}

	// A wheel whose hash is not the lock's: refused, nothing left.
	lockPath := filepath.Join(e.dir, "ftc.lock")
	sum := sha256Of(t, e.hello)
	os.WriteFile(lockPath, []byte(strings.Replace(e.lockFile(), sum, "sha256:"+strings.Repeat("0", 64), 1)), 0o644)
	dir := filepath.Join(t.TempDir(), "v")
	if code := e.ftc("env", "create", "--wheels", e.wheels, "--dir", dir); code != 1 ||
		!strings.Contains(e.stderr, "a wheel's (or sdist's) sha256 is not the one ftc.lock pins") {
		t.Fatalf("env create with a wrong hash: exit %d\n%s\n%s", code, e.stdout, e.stderr)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("a refused environment was left behind")
	}

	// The profile moved on since the lock: stale.
	e.set = strings.Replace(e.set, `"tiny-hello": "1.0"`, `"tiny-hello": "1.1"`, 1)
	if code := e.ftc("env", "create", "--wheels", e.wheels); code != 1 || !strings.Contains(e.stderr, "was resolved for other requirements or another Python than profile tiny's") {
		t.Fatalf("env create with a stale lock: exit %d\n%s", code, e.stderr)
	}
}

// hasTableRow reports whether a table line has exactly these columns.
func hasTableRow(out string, cols ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.Join(regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1), "|") == strings.Join(cols, "|") {
			return true
		}
	}
	return false
}
