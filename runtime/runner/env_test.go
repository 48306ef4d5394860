package runner

import (
	"context"
	"errors"

	"testing"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/runtime/envcheck"

	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/exec"
)

// TestLocalCheck: the image answers for docker and podman; the cluster
// backends, a stand-in entrypoint and a dry run say why nothing is
// checked; a local run checks.
func TestLocalCheck(t *testing.T) {
	for _, c := range []struct {
		o     Options
		check bool
		skip  string
	}{
		{Options{Backend: "docker"}, false, ""},
		{Options{Backend: "podman", DryRun: true}, false, ""},
		{Options{Backend: "slurm"}, true, "training runs in the image (--backend slurm)"},
		{Options{Backend: "local", Entrypoint: []string{"./fake"}}, true, "--entrypoint replaces the interpreter"},
		{Options{Backend: "local", DryRun: true}, true, "dry run (ftc env check makes the check alone)"},
		{Options{Backend: "local"}, true, ""},
	} {
		check, skip := c.o.LocalCheck()
		if check != c.check || skip != c.skip {
			t.Errorf("%+v: got (%v, %q), want (%v, %q)", c.o, check, skip, c.check, c.skip)
		}
	}
}

// TestRecordEnvironment: a check that did not run says why in one event;
// no check and no reason, nothing.
func TestRecordEnvironment(t *testing.T) {
	var got []exec.Event
	events, err := exec.NewEventLog("", func(e exec.Event) { got = append(got, e) })
	if err != nil {
		t.Fatal(err)
	}
	p := &plan.Plan{}
	RecordEnvironment(events, "", nil, "", p, "allow-env-mismatch")
	if len(got) != 0 {
		t.Fatalf("nothing to say, yet %v", got)
	}
	RecordEnvironment(events, "", nil, "dry run", p, "allow-env-mismatch")
	if len(got) != 1 || got[0].Type != exec.EventEnvironment || got[0].Message != "not checked: dry run" {
		t.Fatalf("got %+v", got)
	}
}

// TestCheckHereRefusesDevices: more GPUs than CUDA_VISIBLE_DEVICES
// lists is how ftc env check was called (a UsageError), found before any
// interpreter is probed.
func TestCheckHereRefusesDevices(t *testing.T) {
	t.Setenv("CUDA_VISIBLE_DEVICES", "0")
	r := &config.Recipe{Hardware: config.Hardware{Nodes: 1, GPUsPerNode: 1}}
	_, err := CheckHere(context.Background(), r, &plan.Plan{}, 2, true, envcheck.PrepareOptions{Python: "/nonexistent/python"})
	var ue UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want a UsageError", err)
	}
	if _, err := CheckHere(context.Background(), r, &plan.Plan{}, 2, false, envcheck.PrepareOptions{Skip: "test"}); err != nil {
		t.Errorf("the recipe's one GPU: %v", err)
	}
}

// TestExportCommand: the run and the export carry the same key flags,
// quoted for a shell; the stage only when it was named.
func TestExportCommand(t *testing.T) {
	got := ExportCommand("r.cue", "", "out dir", []string{"--set", "a=1 2", "--cpu"})
	want := "ftc run --set 'a=1 2' --cpu r.cue && ftc export --set 'a=1 2' --cpu r.cue 'out dir'"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := ExportCommand("r.cue", "sft", "d", nil); got != "ftc run r.cue && ftc export r.cue sft d" {
		t.Errorf("got %s", got)
	}
}
