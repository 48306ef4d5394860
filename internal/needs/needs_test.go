package needs

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how the test ended instead of
// ending it.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Skipf(f string, args ...any)  { r.skipped = sprintf(f, args...) }
func (r *recorder) Fatalf(f string, args ...any) { r.failed = sprintf(f, args...) }

func TestMissingSkipsOnADevelopersMachineAndFailsInCI(t *testing.T) {
	for _, c := range []struct {
		ci       string
		wantFail bool
	}{{"", false}, {"false", false}, {"true", true}, {"1", true}} {
		t.Setenv("CI", c.ci)
		r := &recorder{TB: t}
		Missing(r, "root: %s", "mknod")
		if c.wantFail {
			if r.failed == "" || r.skipped != "" || !strings.Contains(r.failed, "root: mknod") {
				t.Errorf("CI=%q: want a failure naming the requirement, got skip %q fail %q", c.ci, r.skipped, r.failed)
			}
		} else if r.skipped != "needs root: mknod" || r.failed != "" {
			t.Errorf("CI=%q: want skip %q, got skip %q fail %q", c.ci, "needs root: mknod", r.skipped, r.failed)
		}
	}
}

func TestProgramFindsWhatIsInstalledAndNamesWhatIsNot(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	if p := Program(r, "sh", "apt-get install dash"); p == "" || r.skipped != "" {
		t.Fatalf("sh: got %q, skip %q", p, r.skipped)
	}
	Program(r, "ftc-no-such-program", "apt-get install nothing")
	if !strings.Contains(r.skipped, "ftc-no-such-program on PATH (apt-get install nothing)") {
		t.Errorf("skip reason %q", r.skipped)
	}
}

func sprintf(f string, args ...any) string { return fmt.Sprintf(f, args...) }
