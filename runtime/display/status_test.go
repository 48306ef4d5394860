package display

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/ftc-dev/ftc/runtime/exec"
)

// TestStatusPlanOrder: stages that ran concurrently report in any order;
// ftc status lists them in the plan order the run-start event records.
func TestStatusPlanOrder(t *testing.T) {
	events := []exec.Event{
		{Type: exec.EventRunStart, Message: "sweep", Stages: []string{"a.prepare", "a", "b", "c"}},
		{Type: exec.EventCached, Stage: "a.prepare", Key: "sha256:11"},
		{Type: exec.EventStart, Stage: "c", Key: "sha256:33"},
		{Type: exec.EventStart, Stage: "a", Key: "sha256:aa"},
		{Type: exec.EventDone, Stage: "c", Seconds: 2},
		{Type: exec.EventStart, Stage: "b", Key: "sha256:bb"},
		{Type: exec.EventDone, Stage: "b", Seconds: 1},
		{Type: exec.EventDone, Stage: "a", Seconds: 3},
		{Type: exec.EventRunEnd, Message: "1 cached, 3 ran, 0 failed"},
	}
	var b bytes.Buffer
	Status(&b, "rec", events, nil)
	if !regexp.MustCompile(`(?s)\n  a\.prepare +cached.*\n  a +ran.*\n  b +ran.*\n  c +ran`).Match(b.Bytes()) {
		t.Errorf("stages not in plan order:\n%s", b.String())
	}
}

// TestStatusSaysWhereOutputsAre: a stage whose key has a cache entry
// shows its output tree; an export stage how to copy it out.
func TestStatusSaysWhereOutputsAre(t *testing.T) {
	events := []exec.Event{
		{Type: exec.EventRunStart, Message: "r", Stages: []string{"sft", "sft.export"}},
		{Type: exec.EventCached, Stage: "sft", Key: "sha256:aa"},
		{Type: exec.EventStart, Stage: "sft.export", Key: "sha256:bb"},
		{Type: exec.EventDone, Stage: "sft.export", Seconds: 1},
	}
	where := func(k string) string { return map[string]string{"sha256:aa": "sha256:t1", "sha256:bb": "sha256:t2"}[k] }
	var b bytes.Buffer
	Status(&b, "rec", events, where)
	for _, want := range []string{"output: cache tree sha256:t1", "output: cache tree sha256:t2", "copy it out: ftc export RECIPE sft DIR"} {
		if !bytes.Contains(b.Bytes(), []byte(want)) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
	if bytes.Count(b.Bytes(), []byte("copy it out")) != 1 {
		t.Errorf("only the export stage is copied out:\n%s", b.String())
	}
}

// TestStatusGivesTheRunsKeyFlags: the run's --set, --gpus and --cpu are
// in its record, and the export command status suggests carries them (an
// export without them plans other keys and finds nothing).
func TestStatusGivesTheRunsKeyFlags(t *testing.T) {
	events := []exec.Event{
		{Type: exec.EventRunStart, Message: "r", Stages: []string{"sft", "sft.export"}, Flags: []string{"--set", "stages.sft.training.steps=3", "--cpu"}},
		{Type: exec.EventStart, Stage: "sft.export", Key: "sha256:bb"},
		{Type: exec.EventDone, Stage: "sft.export", Seconds: 1},
	}
	var b bytes.Buffer
	Status(&b, "rec", events, func(string) string { return "sha256:t2" })
	if want := "copy it out: ftc export --set stages.sft.training.steps=3 --cpu RECIPE sft DIR"; !bytes.Contains(b.Bytes(), []byte(want)) {
		t.Errorf("status lacks %q:\n%s", want, b.String())
	}
}
