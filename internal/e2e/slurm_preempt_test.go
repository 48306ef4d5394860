package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/internal/slurmtest"
	"github.com/ftc-dev/ftc/runtime/backend"
	rexec "github.com/ftc-dev/ftc/runtime/exec"
)

// testSlurmPreemption: a training stage whose job reaches its time limit
// mid-stage. The batch script asks for SIGTERM 30 s before the one-minute
// limit (--signal); the test trainer saves a checkpoint at its next step and
// exits 75 leaving preempted.json; the script requeues the job; the next
// attempt, running the same stage file, resumes from that checkpoint (not
// from the last one on the save cadence); the job completes, and the output
// is an uninterrupted run's (the trajectory chains every step trained).
func testSlurmPreemption(t *testing.T, c *slurmtest.Cluster) {
	const steps, delay = 320, "250ms" // 80 s of steps: more than one attempt
	dir := t.TempDir()
	writeStageFile(t, dir, steps)
	b := slurmBackend(c, c.Partition)
	b.Settings.Time = "00:01:00"
	b.GraceSeconds = 30
	p := launch.Plan{Launcher: "python", Nodes: 1, ProcsPerNode: 1, Processes: 1, Argv: []string{trainerBin, "sft", "--config", launch.StageConfigFile}}
	b.Plans = map[string]launch.Plan{"sft": p}
	out := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- b.Run(ctx, backend.Job{
			Name: "sft", Dir: dir, Output: out, Argv: p.Argv,
			Env: []string{"FTC_STAGE_CONFIG=" + launch.StageConfigFile, "FTC_TEST_STEP_DELAY=" + delay},
		})
	}()
	var err error
	var pendingSince time.Time
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-time.After(500 * time.Millisecond):
		}
		// A requeued job waits two minutes before it may start again; let
		// it start sooner, once it has been pending a few seconds: started
		// at once, it raced the node's cleanup of the attempt the requeue
		// ended and failed (the two minutes are there for that).
		id := jobID(dir)
		if id == "" || !strings.Contains(out.String(), "requeueing job") {
			continue
		}
		if st, _ := c.Command("squeue", "--noheader", "--jobs="+id, "--format=%T").Output(); strings.TrimSpace(string(st)) != "PENDING" {
			pendingSince = time.Time{}
		} else if pendingSince.IsZero() {
			pendingSince = time.Now()
		} else if time.Since(pendingSince) > 5*time.Second {
			_ = c.Command("scontrol", "update", "JobId="+id, "StartTime=now").Run()
		}
	}
	log := out.String()
	t.Logf("preempted job's output:\n%s", log)
	if err != nil {
		t.Fatalf("preempted job: %v", err)
	}
	for _, want := range []string{"SIGTERM: saving a checkpoint", "preempted: checkpoint of step", "requeueing job", "attempt 2", "resumed from step", "COMPLETED"} {
		if !strings.Contains(log, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(log, "resumed from step 0") || strings.Contains(log, "TIMEOUT") {
		t.Errorf("the job timed out or resumed from nothing")
	}

	// The same stage, uninterrupted, here.
	whole := t.TempDir()
	writeStageFile(t, whole, steps)
	if err := (backend.Local{}).Run(context.Background(), backend.Job{Name: "sft", Dir: whole, Argv: p.Argv, Env: []string{"FTC_STAGE_CONFIG=" + launch.StageConfigFile}, Output: &syncBuffer{}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"trajectory.txt", "model.bin"} {
		a, _ := os.ReadFile(filepath.Join(dir, "output", f))
		w, _ := os.ReadFile(filepath.Join(whole, "output", f))
		if len(a) == 0 || string(a) != string(w) {
			t.Errorf("%s after preemption and requeue:\n%s\nuninterrupted:\n%s", f, a, w)
		}
	}
}

// writeStageFile writes the stage file of an sft stage of steps steps, a
// checkpoint every 100, as runtime/exec does.
func writeStageFile(t *testing.T, dir string, steps int) {
	t.Helper()
	for _, d := range []string{"output", "checkpoints"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sf := rexec.StageFile{
		APIVersion: rexec.StageFileVersion, Name: "sft", Kind: "sft", Key: "sha256:" + strings.Repeat("0", 64),
		Config: map[string]any{"training": map[string]any{"steps": steps}, "cadence": map[string]any{"saveEvery": 100}},
		Inputs: map[string]rexec.StageInput{}, Output: "output", Checkpoints: "checkpoints", Metrics: "metrics.jsonl",
		World: rexec.World{Processes: 1, Strategy: "single"}, GraceSeconds: 30,
	}
	b, err := json.Marshal(sf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, launch.StageConfigFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
