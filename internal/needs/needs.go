package needs

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// InCI reports whether the tests run under CI: CI is set to a true value
// ("true", "1"), as CI services and .ci/run do.
func InCI() bool {
	ok, _ := strconv.ParseBool(os.Getenv("CI"))
	return ok
}

// Missing ends the test for a missing requirement: a skip with the reason
// on a developer's machine, a failure under CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=true: the CI scripts provide every requirement, so this is a failure, not a skip)", reason)
		return
	}
	t.Skipf("needs %s", reason)
}

// Root ends the test unless it runs as root; why says what needs it.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root: %s", why)
	}
}

// Program returns the path of an installed program, or ends the test
// naming the program and how to install it.
func Program(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s on PATH (%s)", name, install)
	}
	return p
}
