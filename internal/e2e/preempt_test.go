package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPreemptedStageResumes: a training stage that gets SIGTERM (here the
// test trainer sends it to itself after step 4) saves a checkpoint at its
// next step boundary (step 5, off the save cadence of 2) and exits 75; the
// run records it as preempted, not failed, keeps its checkpoints, and the
// next run resumes from that checkpoint to the outputs of a run that was
// never interrupted.
func TestPreemptedStageResumes(t *testing.T) {
	e := newEnv(t)
	r := e.run([]string{"FTC_TEST_TERM_AT=4", "FTC_TEST_STEP_DELAY=200ms"})
	if r.code == 0 || !regexp.MustCompile(`rm\s+preempted\s+preempted \(SIGTERM\): saved checkpoint checkpoints/step-5 \(step 5\)`).MatchString(r.out) {
		t.Fatalf("want rm preempted at step 5:\n%s", r.out)
	}
	if strings.Contains(r.out, "FAILED") || !strings.Contains(r.out, "0 failed") {
		t.Fatalf("a preempted stage is not a failure:\n%s", r.out)
	}
	marks, _ := filepath.Glob(filepath.Join(e.cache, "runs", "*", "preempted.json"))
	cks, _ := filepath.Glob(filepath.Join(e.cache, "runs", "*", "checkpoints", "step-5", "ftc-checkpoint.json"))
	if len(marks) != 1 || len(cks) != 1 {
		t.Fatalf("want the marker and a complete checkpoint of step 5, got %v %v", marks, cks)
	}

	r = e.run(nil)
	if !regexp.MustCompile(`rm\s+resuming\s+from step 5`).MatchString(r.out) {
		t.Fatalf("want rm to resume from step 5:\n%s", r.out)
	}
	expect(t, r, 0, 2, 2)
	if _, err := os.Stat(marks[0]); !os.IsNotExist(err) {
		t.Errorf("the marker of the preempted attempt is still there: %v", err)
	}

	whole := newEnv(t)
	expect(t, whole.run(nil), 0, 0, 4)
	for _, f := range []string{"trajectory.txt", "model.bin"} {
		if a, b := outputFile(t, e, "rm", f), outputFile(t, whole, "rm", f); a != b {
			t.Errorf("rm's %s after preemption and resume:\n%s\nuninterrupted:\n%s", f, a, b)
		}
	}
}
