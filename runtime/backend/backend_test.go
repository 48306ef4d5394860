package backend

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLocalRunsInDirWithGPUs(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := Local{}.Run(context.Background(), Job{Dir: dir, Argv: []string{"sh", "-c", "pwd; echo $CUDA_VISIBLE_DEVICES $FOO"}, GPUs: []int{2, 3}, Env: []string{"FOO=bar"}, Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, dir) || !strings.Contains(got, "2,3 bar") {
		t.Fatalf("output %q", got)
	}
}

// TestLocalLooksUpTheProgramInTheJobsPath: a PATH among the job's
// variables decides which program runs, not ftc's own PATH.
func TestLocalLooksUpTheProgramInTheJobsPath(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "ftc-test-launcher"), []byte("#!/bin/sh\necho from-job-path \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := Local{}.Run(context.Background(), Job{Dir: t.TempDir(), Argv: []string{"ftc-test-launcher", "x"}, Env: []string{"PATH=" + bin + ":" + os.Getenv("PATH")}, Output: &out})
	if err != nil || out.String() != "from-job-path x\n" {
		t.Fatalf("%v: %q", err, out.String())
	}
	// Without it, ftc's PATH as before.
	out.Reset()
	if err := (Local{}).Run(context.Background(), Job{Dir: t.TempDir(), Argv: []string{"sh", "-c", "echo ok"}, Output: &out}); err != nil || out.String() != "ok\n" {
		t.Fatalf("%v: %q", err, out.String())
	}
}

func TestLocalReportsExitStatus(t *testing.T) {
	err := Local{}.Run(context.Background(), Job{Dir: t.TempDir(), Argv: []string{"sh", "-c", "exit 7"}, Output: &bytes.Buffer{}})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 7 {
		t.Fatalf("got %v", err)
	}
}

func TestLocalCancelStopsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "child-survived")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	start := time.Now()
	// The child ignores nothing; it would write the marker after 2s.
	err := Local{Grace: time.Second}.Run(ctx, Job{Dir: dir, Argv: []string{"sh", "-c", "(sleep 2; touch " + marker + ") & wait"}, Output: &bytes.Buffer{}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if time.Since(start) > 1500*time.Millisecond {
		t.Fatal("cancel took too long")
	}
	time.Sleep(2500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a child of the job outlived the cancellation")
	}
}

func TestContainerCommand(t *testing.T) {
	img := "registry.local/ftc/env@sha256:" + strings.Repeat("a", 64)
	c := Container{Engine: "podman", Image: img, Mounts: []string{"/cache:/cache"}}
	argv, err := c.Command(Job{Dir: "/runs/x", Argv: []string{"python", "-m", "ftc.entry", "sft"}, GPUs: []int{0, 1}, Env: []string{"FTC_STAGE_CONFIG=/ftc/run/stage.json", "HF_TOKEN"}})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(argv, " ")
	for _, want := range []string{"podman run --rm", "-v /runs/x:/ftc/run", "-v /cache:/cache", "--device nvidia.com/gpu=0 --device nvidia.com/gpu=1", "-e HF_TOKEN ", img + " python -m ftc.entry sft"} {
		if !strings.Contains(got, want) {
			t.Errorf("command lacks %q:\n%s", want, got)
		}
	}
	if _, err := (Container{Engine: "docker", Image: "ftc/env:latest"}).Command(Job{}); err == nil {
		t.Error("an image by tag was accepted")
	}
}
