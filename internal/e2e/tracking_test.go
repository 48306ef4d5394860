package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/internal/mlflowtest"
	"github.com/ftc-dev/ftc/internal/pyenvtest"
	rexec "github.com/ftc-dev/ftc/runtime/exec"
	"github.com/ftc-dev/ftc/runtime/track"
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
	want := recordedMetrics(t, e, transformersTag)
	if len(want) < 2 {
		t.Fatalf("the record has metrics of %d stages, want the pipeline's training stages", len(want))
	}
	got := readTensorBoardRuns(t, py, readers, tb)
	if len(got) != len(want) {
		t.Errorf("TensorBoard runs %v, want one per stage with metrics: %v", keysOf(got), keysOf(want))
	}
	sameMetrics(t, "TensorBoard", got, want)

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
	untracked := recordedMetrics(t, e, transformersTag)
	expect(t, e.run(nil, append(kl, on...)...), 0, 4, 0)
	got = readTensorBoardRuns(t, py, readers, tb)
	if len(untracked) != 1 || len(got) != len(want)+1 {
		t.Fatalf("after the untracked ppo run: record %v, TensorBoard runs %v", keysOf(untracked), keysOf(got))
	}
	sameMetrics(t, "TensorBoard", got, untracked)
}

// transformersTag is the tag transformers' TensorBoard and W&B callbacks
// give a logged name (eval_loss → eval/loss, loss → train/loss), written
// out here rather than taken from runtime/track, which the tests check.
func transformersTag(name string) string {
	if rest, ok := strings.CutPrefix(name, "eval_"); ok {
		return "eval/" + rest
	}
	return "train/" + name
}

// recordedMetrics is ftc's own record of the latest run: per started
// stage (as its TensorBoard folder and MLflow run name, STAGE-KEY12) each
// metric's value at each step, under the name the tracker gives it
// (transformersTag for TensorBoard and W&B; MLflow keeps ftc's names).
func recordedMetrics(t *testing.T, e *env, name func(string) string) map[string]map[string]map[string]float64 {
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
			for metric, v := range ev.Metrics {
				x, ok := v.(float64)
				if !ok || metric == "step" {
					continue
				}
				tag := name(metric)
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

// sameMetrics checks that the tracker holds exactly want's points for
// each run of want (within float32, as TensorBoard stores scalars).
func sameMetrics(t *testing.T, tracker string, got, want map[string]map[string]map[string]float64) {
	t.Helper()
	for f, tags := range want {
		if len(got[f]) != len(tags) {
			t.Errorf("%s: %s has tags %v, ftc recorded %v", f, tracker, keysOf(got[f]), keysOf(tags))
		}
		for tag, steps := range tags {
			for step, x := range steps {
				y, ok := got[f][tag][step]
				if !ok || math.Abs(y-x) > 1e-6*math.Max(1, math.Abs(x)) {
					t.Errorf("%s %s step %s: %s has %v (%v), ftc recorded %v", f, tag, step, tracker, y, ok, x)
				}
			}
			if len(got[f][tag]) != len(steps) {
				t.Errorf("%s %s: %s has %d steps, ftc recorded %d", f, tag, tracker, len(got[f][tag]), len(steps))
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

// readMLflow is MLflow's own client over an experiment: run name → the
// runs of that name, each with its status, ftc tags and metric history
// (metric → step → value).
const readMLflow = `
import json, sys
from mlflow.tracking import MlflowClient
client = MlflowClient(tracking_uri=sys.argv[1])
exp = client.get_experiment_by_name(sys.argv[2])
out = {}
for r in client.search_runs([exp.experiment_id], max_results=1000):
    history = {k: {str(m.step): m.value for m in client.get_metric_history(r.info.run_id, k)} for k in r.data.metrics}
    out.setdefault(r.info.run_name, []).append({"status": r.info.status,
        "tags": {k: v for k, v in r.data.tags.items() if k.startswith("ftc.")}, "params": r.data.params, "metrics": history})
print(json.dumps(out))
`

type mlflowRun struct {
	Status  string                        `json:"status"`
	Tags    map[string]string             `json:"tags"`
	Params  map[string]string             `json:"params"`
	Metrics map[string]map[string]float64 `json:"metrics"`
}

func readMLflowRuns(t *testing.T, srv *mlflowtest.Server, experiment string) map[string][]mlflowRun {
	t.Helper()
	cmd := exec.Command(srv.Python, "-c", readMLflow, srv.URI, experiment)
	cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("MLflow's client: %v\n%s", err, stderrOf(err))
	}
	var got map[string][]mlflowRun
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return got
}

// metricsOf is each run name's metrics, failing when a name has more than
// one run or a run did not finish.
func metricsOf(t *testing.T, configs map[string]map[string]string, runs map[string][]mlflowRun) map[string]map[string]map[string]float64 {
	t.Helper()
	out := map[string]map[string]map[string]float64{}
	for name, rs := range runs {
		if len(rs) != 1 {
			t.Errorf("MLflow has %d runs named %s, want 1", len(rs), name)
		}
		r := rs[0]
		if r.Status != "FINISHED" || !strings.HasPrefix(name, r.Tags["ftc.stage"]+"-") || r.Tags["ftc.key"] == "" || r.Tags["ftc.recipe"] == "" {
			t.Errorf("MLflow run %s: status %s, tags %v; want FINISHED, tagged with its stage, key and recipe", name, r.Status, r.Tags)
		}
		// The stage's settings, from the plan.
		if want := configs[name]; len(want) == 0 || !sameParams(r.Params, want) {
			t.Errorf("MLflow run %s: params %v, want the plan's stage config %v", name, r.Params, want)
		}
		out[name] = r.Metrics
	}
	return out
}

// TestTrackingMLflow: with tracking.mlflow on a real MLflow server (a
// SQLite database behind mlflow server, started by PID), each started
// stage is an MLflow run, FINISHED, whose metrics read back by MLflow's
// own client equal ftc's record of them. A credential variable the recipe
// names and the environment lacks stops the run before any stage; its
// value, once set, reaches no record, log or cache entry. Tracking enters
// no key; a cached stage already in the experiment sends nothing, one it
// lacks (run while tracking was off) becomes a run holding what its cache
// entry recorded.
func TestTrackingMLflow(t *testing.T) {
	srv := mlflowtest.Start(t)
	e := newEnv(t)
	const secret = "ftc-e2e-token-5f1d2c"
	on := []string{"--set", fmt.Sprintf("tracking.mlflow.uri=%q", srv.URI), "--set", `tracking.mlflow.experiment="e2e"`,
		"--set", `tracking.mlflow.auth.token="FTC_E2E_MLFLOW_TOKEN"`}
	same := func(name string) string { return name }

	r := e.run(nil, on...)
	if r.code == 0 || !strings.Contains(r.out, "FTC_E2E_MLFLOW_TOKEN (tracking.mlflow.auth.token)") {
		t.Fatalf("a run whose tracking names an unset variable: exit %d, want a failure naming it:\n%s", r.code, r.out)
	}
	if _, err := os.Stat(filepath.Join(e.cache, "records")); err == nil {
		if ids, _ := os.ReadDir(filepath.Join(e.cache, "records")); len(ids) > 0 {
			t.Errorf("the run stopped for tracking's credentials left a record: it started")
		}
	}

	withToken := []string{"FTC_E2E_MLFLOW_TOKEN=" + secret}
	expect(t, e.run(withToken, on...), 0, 0, 4)
	want := recordedMetrics(t, e, same)
	if len(want) < 2 {
		t.Fatalf("the record has metrics of %d stages, want the pipeline's training stages", len(want))
	}
	runs := readMLflowRuns(t, srv, "e2e")
	got := metricsOf(t, planConfigs(t, e), runs)
	if len(got) != len(want) {
		t.Errorf("MLflow runs %v, want one per stage with metrics: %v", keysOf(got), keysOf(want))
	}
	sameMetrics(t, "MLflow", got, want)

	expect(t, e.run(nil), 0, 4, 0)
	expect(t, e.run(withToken, on...), 0, 4, 0)
	if after := readMLflowRuns(t, srv, "e2e"); len(after) != len(runs) {
		t.Errorf("a fully cached run made MLflow runs for stages the experiment has: %v, before %v", keysOf(after), keysOf(runs))
	}

	kl := []string{"--set", "stages.ppo.ppo.klCoef=0.1"}
	expect(t, e.run(nil, kl...), 0, 3, 1)
	untracked := recordedMetrics(t, e, same)
	expect(t, e.run(withToken, append(kl, on...)...), 0, 4, 0)
	got = metricsOf(t, planConfigs(t, e, kl), readMLflowRuns(t, srv, "e2e"))
	if len(untracked) != 1 || len(got) != len(want)+1 {
		t.Fatalf("after the untracked ppo run: record %v, MLflow runs %v", keysOf(untracked), keysOf(got))
	}
	sameMetrics(t, "MLflow", got, untracked)

	// The token was read by name only.
	_ = filepath.WalkDir(filepath.Dir(e.cache), func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the MLflow token's value", path)
			}
		}
		return nil
	})
}

// readWandB reads every W&B run file under DIR/wandb (not the latest-run
// link) with W&B's own protobuf definitions (wandb_internal_pb2), after
// checking the framing wandb-core writes (a LevelDB-style log: a 7-byte
// header, 32 KiB blocks of records, each with a CRC-32 seeded by its
// type), written out here rather than shared with any writer. It gives
// run name → the runs of that name, each with its config (ftc's keys),
// exit code, and metric → step → value.
// planConfigs is each stage's config in the plan of e's recipe (ftc plan
// --json), by run name (STAGE-KEY12), flattened as trackers file it
// (track.Params). Later args' plans add theirs.
func planConfigs(t *testing.T, e *env, args ...[]string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, a := range append([][]string{nil}, args...) {
		r := e.ftc(nil, append([]string{"plan", "--json", e.recipe}, a...)...)
		var p struct {
			Stages []struct {
				Name   string `json:"name"`
				Key    string `json:"key"`
				Config any    `json:"config"`
			} `json:"stages"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.out), &p) != nil {
			t.Fatalf("ftc plan --json: exit %d\n%s", r.code, r.out)
		}
		for _, s := range p.Stages {
			name := track.RunName(s.Name, s.Key)
			out[name] = map[string]string{}
			for _, kv := range track.Params(s.Config) {
				out[name][kv.Key] = kv.Value
			}
		}
	}
	return out
}

// sameParams says whether got holds exactly want.
func sameParams(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

const readWandB = `
import glob, json, os, struct, sys, zlib
from wandb.proto import wandb_internal_pb2 as pb

def records(path):
    b = open(path, "rb").read()
    ident, magic, version = struct.unpack("<4sHB", b[:7])
    assert ident == b":W&B" and magic == 0xBEE1, (path, ident, magic)
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(b):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        crc, n, typ = struct.unpack("<IHB", b[pos:pos + 7])
        if typ == 0 and n == 0:
            break
        data = b[pos + 7:pos + 7 + n]
        assert crc == zlib.crc32(data, zlib.crc32(bytes([typ]))) & 0xFFFFFFFF, (path, pos)
        pos += 7 + n
        if typ == 1:
            yield data
        elif typ == 2:
            pending = data
        elif typ == 3:
            pending += data
        elif typ == 4:
            yield pending + data

out = {}
for d in sorted(glob.glob(os.path.join(sys.argv[1], "wandb", "*-run-*"))):
    if os.path.islink(d):
        continue
    run = {"config": {}, "exit": None, "metrics": {}}
    name = None
    for path in glob.glob(os.path.join(d, "run-*.wandb")):
        for data in records(path):
            r = pb.Record()
            r.ParseFromString(data)
            kind = r.WhichOneof("record_type")
            if kind == "run":
                name = r.run.display_name
                run["config"].update({i.key: json.loads(i.value_json) for i in r.run.config.update if i.key != "_wandb"})
            elif kind == "history":
                # W&B nests keys with a slash (train/loss: nested_key).
                items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
                for k, v in items.items():
                    if not k.startswith("_"):
                        run["metrics"].setdefault(k, {})[str(r.history.step.num)] = v
            elif kind == "exit":
                run["exit"] = r.exit.exit_code
    out.setdefault(name, []).append(run)
print(json.dumps(out))
`

type wandbRun struct {
	Config  map[string]any                `json:"config"`
	Exit    *int                          `json:"exit"`
	Metrics map[string]map[string]float64 `json:"metrics"`
}

func readWandBRuns(t *testing.T, configs map[string]map[string]string, python, dir string) map[string]map[string]map[string]float64 {
	t.Helper()
	out, err := exec.Command(python, "-c", readWandB, dir).Output()
	if err != nil {
		t.Fatalf("reading W&B's run files: %v\n%s", err, stderrOf(err))
	}
	var runs map[string][]wandbRun
	if err := json.Unmarshal(out, &runs); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := map[string]map[string]map[string]float64{}
	for name, rs := range runs {
		if len(rs) != 1 {
			t.Errorf("W&B has %d runs named %s, want 1", len(rs), name)
		}
		r := rs[0]
		stage, _ := r.Config["ftc.stage"].(string)
		key, _ := r.Config["ftc.key"].(string)
		recipe, _ := r.Config["ftc.recipe"].(string)
		if r.Exit == nil || *r.Exit != 0 || !strings.HasPrefix(name, stage+"-") || key == "" || recipe == "" {
			t.Errorf("W&B run %s: exit %v, config %v; want exit 0 and ftc's stage, key and recipe", name, r.Exit, r.Config)
		}
		// The rest of its config is the stage's, from the plan.
		settings := map[string]any{}
		for k, v := range r.Config {
			if !strings.HasPrefix(k, "ftc.") {
				settings[k] = v
			}
		}
		flat := map[string]string{}
		for _, kv := range track.Params(settings) {
			flat[kv.Key] = kv.Value
		}
		if want := configs[name]; len(want) == 0 || !sameParams(flat, want) {
			t.Errorf("W&B run %s: config %v, want the plan's stage config %v", name, flat, want)
		}
		got[name] = r.Metrics
	}
	return got
}

// wandbWheels downloads the wheels `ftc env wandb-requirements` lists
// into a folder, with the interpreter ftc run will make W&B's environment
// from (the first CPython 3.11–3.13 of python3.11, python3.12,
// python3.13, python3), as the command's help tells a user without PyPI
// on the machine that runs ftc.
func wandbWheels(t *testing.T, e *env) string {
	t.Helper()
	r := e.ftc(nil, "env", "wandb-requirements")
	if r.code != 0 || !strings.Contains(r.out, "wandb==") {
		t.Fatalf("ftc env wandb-requirements: exit %d\n%s", r.code, r.out)
	}
	reqs := filepath.Join(t.TempDir(), "wandb.txt")
	if err := os.WriteFile(reqs, []byte(r.out), 0o644); err != nil {
		t.Fatal(err)
	}
	py := ""
	for _, c := range []string{"python3.11", "python3.12", "python3.13", "python3"} {
		out, err := exec.Command(c, "-c", `import sys; print("%d.%d" % sys.version_info[:2])`).Output()
		if v := strings.TrimSpace(string(out)); err == nil && (v == "3.11" || v == "3.12" || v == "3.13") {
			py = c
			break
		}
	}
	if py == "" {
		t.Fatal("no CPython 3.11–3.13 to run W&B's library")
	}
	dir := filepath.Join(t.TempDir(), "wheels")
	cmd := exec.Command(py, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--require-hashes", "-r", reqs, "-d", dir)
	cmd.Env = append(os.Environ(), "PIP_CONFIG_FILE=/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip download of W&B's wheels: %v\n%s", err, out)
	}
	return dir
}

// TestTrackingWandB: with tracking.wandb (offline), ftc run makes W&B's
// environment (wandb and its closure, by hash, in the cache's envs/; here
// from a folder of wheels, --wheels, as on a machine without PyPI) and
// runs W&B's library beside it; each started stage is a W&B
// run whose metrics, read back from W&B's own run files, equal ftc's
// record of them. Tracking enters no key; a cached stage W&B has a run of
// sends nothing, one it lacks (run while tracking was off) becomes a run
// holding what its cache entry recorded. An API key variable the recipe
// names and the environment lacks stops the run before any stage.
func TestTrackingWandB(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Dir(e.recipe)
	wheels := wandbWheels(t, e)
	on := []string{"--set", `tracking.wandb.project="e2e"`, "--wheels", wheels}

	// A folder without the wheels: the run stops before any stage, saying
	// what to give it.
	r := e.run(nil, "--set", `tracking.wandb.project="e2e"`, "--wheels", t.TempDir())
	if r.code != 1 || !strings.Contains(r.out, "making W&B's environment") || !strings.Contains(r.out, "ftc env wandb-requirements lists the wheels it needs") ||
		strings.Contains(r.out, "stage(s)") {
		t.Fatalf("a run given no W&B wheels: exit %d, want 1 before any stage, with the hint:\n%s", r.code, r.out)
	}

	r = e.run(nil, append(on, "--set", `tracking.wandb.auth.apiKey="FTC_E2E_WANDB_KEY"`)...)
	if r.code == 0 || !strings.Contains(r.out, "FTC_E2E_WANDB_KEY (tracking.wandb.auth.apiKey)") {
		t.Fatalf("a run whose tracking names an unset variable: exit %d, want a failure naming it:\n%s", r.code, r.out)
	}

	expect(t, e.run(nil, on...), 0, 0, 4)
	pythons, _ := filepath.Glob(filepath.Join(e.cache, "envs", "*", "bin", "python"))
	if len(pythons) != 1 {
		t.Fatalf("W&B's environment: %v, want one in the cache's envs/", pythons)
	}
	want := recordedMetrics(t, e, transformersTag)
	if len(want) < 2 {
		t.Fatalf("the record has metrics of %d stages, want the pipeline's training stages", len(want))
	}
	got := readWandBRuns(t, planConfigs(t, e), pythons[0], dir)
	if len(got) != len(want) {
		t.Errorf("W&B runs %v, want one per stage with metrics: %v", keysOf(got), keysOf(want))
	}
	sameMetrics(t, "W&B", got, want)

	expect(t, e.run(nil), 0, 4, 0)
	expect(t, e.run(nil, on...), 0, 4, 0)
	if again := readWandBRuns(t, planConfigs(t, e), pythons[0], dir); len(again) != len(got) {
		t.Errorf("a fully cached run made W&B runs for stages W&B has: %v, before %v", keysOf(again), keysOf(got))
	}

	kl := []string{"--set", "stages.ppo.ppo.klCoef=0.1"}
	expect(t, e.run(nil, kl...), 0, 3, 1)
	untracked := recordedMetrics(t, e, transformersTag)
	expect(t, e.run(nil, append(kl, on...)...), 0, 4, 0)
	got = readWandBRuns(t, planConfigs(t, e, kl), pythons[0], dir)
	if len(untracked) != 1 || len(got) != len(want)+1 {
		t.Fatalf("after the untracked ppo run: record %v, W&B runs %v", keysOf(untracked), keysOf(got))
	}
	sameMetrics(t, "W&B", got, untracked)
}
