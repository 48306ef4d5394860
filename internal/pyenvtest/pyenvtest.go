// Package pyenvtest gives tests the interpreter of a stock profile's
// locked test environment (scripts/pyvenv.sh): the one way ftc's tests get
// a Python with torch and the training libraries. Tests that run torch
// themselves (the Slurm DDP jobs, the environment probe) use it rather
// than a distribution's packages.
package pyenvtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/internal/needs"
)

// Python builds the profile's environment once (downloading the wheels
// its wheelhouse lacks) and returns its interpreter's path. Without
// python3.11 or network for a cold wheelhouse it ends the test through
// needs: a skip on a developer's machine, a failure under CI.
func Python(t testing.TB, profile string) string {
	t.Helper()
	return pyvenv(t, fmt.Sprintf("the %s test environment (bash scripts/pyvenv.sh ensure %s)", profile, profile), "python", profile)
}

// pyvenv runs scripts/pyvenv.sh with args and returns what it prints; a
// failure ends the test through needs, naming what was wanted.
func pyvenv(t testing.TB, what string, args ...string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "pyvenv.sh")
	out, err := exec.Command("bash", append([]string{script}, args...)...).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		needs.Missing(t, "%s: %s", what, msg)
	}
	return strings.TrimSpace(string(out))
}

// Wheelhouse is the directory of wheels scripts/pyvenv.sh downloads from
// PyPI (hash-checked) and installs the profiles' environments from: after
// Python(t, profile), it holds every wheel of that profile's closure. Tests
// hand it to ftc as a local index standing in for PyPI (--wheels).
func Wheelhouse() string {
	cache := os.Getenv("FTC_PYVENVS")
	if cache == "" {
		cache = "/var/cache/ftc-pyenvs"
	}
	return filepath.Join(cache, "wheels")
}

// Readers builds once, and returns, the folder of the experiment trackers'
// own readers (stdlib/python/envs/readers.txt: TensorBoard's event file
// reader), to put on PYTHONPATH beside a profile's interpreter (Python).
func Readers(t testing.TB) string {
	t.Helper()
	return pyvenv(t, "the trackers' readers (bash scripts/pyvenv.sh readers)", "readers")
}

// Server builds once, and returns the interpreter of, the environment of
// a service the tests start themselves (stdlib/python/envs/NAME.txt:
// mlflow-server).
func Server(t testing.TB, name string) string {
	t.Helper()
	return pyvenv(t, fmt.Sprintf("the %s environment (bash scripts/pyvenv.sh server %s)", name, name), "server", name)
}
