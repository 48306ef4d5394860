package e2e

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/internal/pyenvtest"
	rexec "github.com/ftc-dev/ftc/runtime/exec"
)

// readTensorBoard is TensorBoard's own reader (EventAccumulator) over each
// stage folder under dir: folder → tag → step → value.
const readTensorBoard = `
import json, os, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
out = {}
for name in sorted(os.listdir(sys.argv[1])):
    acc = EventAccumulator(os.path.join(sys.argv[1], name), size_guidance={"scalars": 0})
    acc.Reload()
    out[name] = {tag: {str(s.step): s.value for s in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}
print(json.dumps(out))
`

// TestTrackingTensorBoard: with tracking.tensorboard on, the run's metrics
// read back by TensorBoard's own reader equal ftc's record of them (the
// run's metric events), one folder per stage and key. Tracking enters no
// key: the run without it finds every stage cached. A cached stage whose
// stage and key TensorBoard already has sends nothing; one it lacks (run
// while tracking was off) sends the metrics its cache entry holds, equal
// to the record of the run that made it.
func TestTrackingTensorBoard(t *testing.T) {
	py := pyenvtest.Python(t, "current-2026")
	readers := pyenvtest.Readers(t)
	e := newEnv(t)
	on := []string{"--set", `tracking.tensorboard.dir="tb"`}
	tb := filepath.Join(filepath.Dir(e.recipe), "tb")
	files := func() []string {
		m, _ := filepath.Glob(filepath.Join(tb, "*", "events.out.tfevents.*"))
		return m
	}

	expect(t, e.run(nil, on...), 0, 0, 4)
	want := recordedMetrics(t, e)
	if len(want) < 2 {
		t.Fatalf("the record has metrics of %d stages, want the pipeline's training stages", len(want))
	}
	got := readTensorBoardRuns(t, py, readers, tb)
	if len(got) != len(want) {
		t.Errorf("TensorBoard runs %v, want one per stage with metrics: %v", keysOf(got), keysOf(want))
	}
	sameMetrics(t, got, want)

	before := files()
	expect(t, e.run(nil), 0, 4, 0)
	expect(t, e.run(nil, on...), 0, 4, 0)
	if after := files(); len(after) != len(before) {
		t.Errorf("a fully cached run wrote event files for stages TensorBoard has: %v, before %v", after, before)
	}

	// ppo with another klCoef, run while tracking is off, then found in
	// the cache with tracking on: its new folder holds what that run
	// recorded.
	kl := []string{"--set", "stages.ppo.ppo.klCoef=0.1"}
	expect(t, e.run(nil, kl...), 0, 3, 1)
	untracked := recordedMetrics(t, e)
	expect(t, e.run(nil, append(kl, on...)...), 0, 4, 0)
	got = readTensorBoardRuns(t, py, readers, tb)
	if len(untracked) != 1 || len(got) != len(want)+1 {
		t.Fatalf("after the untracked ppo run: record %v, TensorBoard runs %v", keysOf(untracked), keysOf(got))
	}
	sameMetrics(t, got, untracked)
}

// recordedMetrics is ftc's own record of the latest run: per started
// stage (as its TensorBoard folder, STAGE-KEY12) each metric's value at
// each step, under the tag transformers' TensorBoard callback would give.
func recordedMetrics(t *testing.T, e *env) map[string]map[string]map[string]float64 {
	t.Helper()
	events, err := rexec.ReadEvents(filepath.Join(e.cache, "records", latestID(e), "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]map[string]float64{} // folder → tag → step → value
	folder := map[string]string{}
	for _, ev := range events {
		switch ev.Type {
		case rexec.EventStart:
			if ev.Key != "" {
				folder[ev.Stage] = ev.Stage + "-" + strings.TrimPrefix(ev.Key, "sha256:")[:12]
			}
		case rexec.EventMetric:
			f, ok := folder[ev.Stage]
			if !ok {
				continue
			}
			for name, v := range ev.Metrics {
				x, ok := v.(float64)
				if !ok || name == "step" {
					continue
				}
				tag := "train/" + name
				if rest, ok := strings.CutPrefix(name, "eval_"); ok {
					tag = "eval/" + rest
				}
				if want[f] == nil {
					want[f] = map[string]map[string]float64{}
				}
				if want[f][tag] == nil {
					want[f][tag] = map[string]float64{}
				}
				want[f][tag][jsonInt(ev.Step)] = x
			}
		}
	}
	return want
}

// readTensorBoardRuns reads dir with TensorBoard's own reader.
func readTensorBoardRuns(t *testing.T, py, readers, dir string) map[string]map[string]map[string]float64 {
	t.Helper()
	cmd := exec.Command(py, "-c", readTensorBoard, dir)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+readers)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("TensorBoard's reader: %v\n%s", err, stderrOf(err))
	}
	var got map[string]map[string]map[string]float64
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return got
}

// sameMetrics checks that TensorBoard holds exactly want's points for each
// folder of want (float32, as TensorBoard stores scalars).
func sameMetrics(t *testing.T, got, want map[string]map[string]map[string]float64) {
	t.Helper()
	for f, tags := range want {
		if len(got[f]) != len(tags) {
			t.Errorf("%s: TensorBoard has tags %v, ftc recorded %v", f, keysOf(got[f]), keysOf(tags))
		}
		for tag, steps := range tags {
			for step, x := range steps {
				y, ok := got[f][tag][step]
				if !ok || math.Abs(y-x) > 1e-6*math.Max(1, math.Abs(x)) {
					t.Errorf("%s %s step %s: TensorBoard has %v (%v), ftc recorded %v", f, tag, step, y, ok, x)
				}
			}
			if len(got[f][tag]) != len(steps) {
				t.Errorf("%s %s: TensorBoard has %d steps, ftc recorded %d", f, tag, len(got[f][tag]), len(steps))
			}
		}
	}
}

func jsonInt(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
