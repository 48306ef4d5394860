package track

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/runtime/exec"
)

// fakeTracker writes a stand-in for the tracker's interpreter: a shell
// script that ignores the program it is given and appends each line it
// reads to lines, after saying ready (or body, when given). The real
// tracker, on W&B's library, is tested in internal/e2e
// (TestTrackingWandB).
func fakeTracker(t *testing.T, body string) (python, lines string) {
	t.Helper()
	dir := t.TempDir()
	lines = filepath.Join(dir, "lines")
	if body == "" {
		body = `echo ready; while IFS= read -r l; do printf '%s\n' "$l" >>"$LINES"; done`
	}
	python = filepath.Join(dir, "python")
	if err := os.WriteFile(python, []byte("#!/bin/sh\nLINES="+lines+"\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return python, lines
}

func sent(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, _ := os.ReadFile(path)
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// What the tracker is told: a run with a stage's first metrics (none for
// a stage without), tagged numbers only, ended with the stage's outcome;
// a cached stage W&B has no folder for, as a run of its recorded
// metrics; a run ftc left open, ended as failed.
func TestWandBSends(t *testing.T) {
	py, lines := fakeTracker(t, "")
	dir := t.TempDir()
	// A run folder of sft.prepare's key: W&B has that one.
	os.MkdirAll(filepath.Join(dir, "wandb", "offline-run-20261201_070000-old_prepare-feedfeedfeed-x"), 0o755)
	w := &WandB{Python: py, Dir: dir, Project: "p", Mode: "offline", Recipe: "r",
		Cached: func(key string) ([]byte, error) {
			return []byte(`{"step": 2, "loss": 0.5}` + "\n" + `{"step": 1, "loss": 1.0}`), nil
		}}
	if err := w.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, e := range []exec.Event{
		{Type: exec.EventCached, Stage: "old.prepare", Key: "sha256:feedfeedfeedfeed", Time: t0},
		{Type: exec.EventCached, Stage: "rm", Key: "sha256:beefbeefbeefbeef", Time: t0},
		{Type: exec.EventStart, Stage: "sft.prepare", Key: "sha256:aaaa", Time: t0},
		{Type: exec.EventDone, Stage: "sft.prepare", Time: t0},
		{Type: exec.EventStart, Stage: "sft", Key: "sha256:0123456789abcdef", Time: t0},
		{Type: exec.EventMetric, Stage: "sft", Step: 1, Metrics: map[string]any{"loss": 2.0, "eval_loss": 3.0, "step": 1.0, "grad_norm": math.Inf(1), "note": "x"}},
		{Type: exec.EventDone, Stage: "sft", Time: t0},
		{Type: exec.EventStart, Stage: "ppo", Key: "sha256:cccccccccccccccc", Time: t0},
		{Type: exec.EventMetric, Stage: "ppo", Step: 1, Metrics: map[string]any{"loss": 1.0}},
	} {
		if err := w.Event(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range sent(t, lines) {
		b, _ := json.Marshal(m)
		got = append(got, string(b))
	}
	id := func(name string) string { return name + "-" + "mx4ckf40" } // t0 in ms, base 36
	if runID("sft", "sha256:0123456789abcdef", t0) != id("sft-0123456789ab") {
		t.Fatalf("runID %s", runID("sft", "sha256:0123456789abcdef", t0))
	}
	want := []string{
		`{"id":"` + id("rm-beefbeefbeef") + `","key":"sha256:beefbeefbeefbeef","name":"rm-beefbeefbeef","op":"start","recipe":"r","stage":"rm"}`,
		`{"metrics":{"train/loss":1},"op":"log","stage":"rm","step":1}`,
		`{"metrics":{"train/loss":0.5},"op":"log","stage":"rm","step":2}`,
		`{"exit":0,"op":"end","stage":"rm"}`,
		`{"id":"` + id("sft-0123456789ab") + `","key":"sha256:0123456789abcdef","name":"sft-0123456789ab","op":"start","recipe":"r","stage":"sft"}`,
		`{"metrics":{"eval/loss":3,"train/loss":2},"op":"log","stage":"sft","step":1}`,
		`{"exit":0,"op":"end","stage":"sft"}`,
		`{"id":"` + id("ppo-cccccccccccc") + `","key":"sha256:cccccccccccccccc","name":"ppo-cccccccccccc","op":"start","recipe":"r","stage":"ppo"}`,
		`{"metrics":{"train/loss":1},"op":"log","stage":"ppo","step":1}`,
		`{"exit":1,"op":"end","stage":"ppo"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("sent:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A tracker that dies before it is ready stops Open with what it said; a
// problem it reports during the run is returned once, and Close says it
// again only when Event has not.
func TestWandBProblems(t *testing.T) {
	py, _ := fakeTracker(t, `echo "error: importing wandb: No module named 'wandb'"; exit 1`)
	w := &WandB{Python: py, Dir: t.TempDir(), Project: "p", Mode: "offline"}
	err := w.Open(context.Background())
	if err == nil || !strings.Contains(err.Error(), "No module named 'wandb'") {
		t.Errorf("Open: %v", err)
	}

	py, _ = fakeTracker(t, `echo ready; read l; echo "error: UsageError: bad project"; while read l; do :; done`)
	w = &WandB{Python: py, Dir: t.TempDir(), Project: "p", Mode: "offline"}
	if err := w.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Event(exec.Event{Type: exec.EventStart, Stage: "a", Key: "sha256:aa", Time: t0})
	var first error
	deadline := time.Now().Add(10 * time.Second)
	for i := 1; first == nil && time.Now().Before(deadline); i++ {
		first = w.Event(exec.Event{Type: exec.EventMetric, Stage: "a", Step: i, Metrics: map[string]any{"loss": 1.0}})
		time.Sleep(20 * time.Millisecond)
	}
	if first == nil || !strings.Contains(first.Error(), "UsageError: bad project") || !strings.Contains(first.Error(), "no more metrics are sent") {
		t.Fatalf("the tracker's problem: %v", first)
	}
	if err := w.Event(exec.Event{Type: exec.EventMetric, Stage: "a", Step: 99, Metrics: map[string]any{"loss": 1.0}}); err != nil {
		t.Errorf("returned twice: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close said it again: %v", err)
	}

	// A tracker that stops reading: the writes time out, once; Close
	// kills it (and its children) within the bound.
	py, _ = fakeTracker(t, `echo ready; sleep 60`)
	w = &WandB{Python: py, Dir: t.TempDir(), Project: "p", Mode: "offline", Bound: 300 * time.Millisecond}
	if err := w.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Event(exec.Event{Type: exec.EventStart, Stage: "a", Key: "sha256:aa", Time: t0})
	big := map[string]any{}
	for i := 0; i < 200; i++ {
		big[fmt.Sprintf("metric_with_a_long_name_%03d", i)] = float64(i)
	}
	var stalled error
	for i := 1; stalled == nil && i < 1000; i++ {
		stalled = w.Event(exec.Event{Type: exec.EventMetric, Stage: "a", Step: i, Metrics: big})
	}
	if stalled == nil || !strings.Contains(stalled.Error(), "took nothing for 300ms") {
		t.Errorf("a tracker that stopped reading: %v", stalled)
	}
	start := time.Now()
	if err := w.Close(); err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("Close of a hung tracker: %v after %s", err, time.Since(start))
	}

	w = &WandB{Python: filepath.Join(t.TempDir(), "missing"), Dir: t.TempDir(), Project: "p", Mode: "offline"}
	if err := w.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "starting the tracker") {
		t.Errorf("no interpreter: %v", err)
	}
}
