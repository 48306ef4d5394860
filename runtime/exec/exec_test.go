package exec

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/key"
	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/backend"
	"github.com/ftc-dev/ftc/runtime/cas"
)

// fakeBackend runs stages in-process: each job calls the stage's func
// with the stage file the runner wrote, in the job's run directory. A
// stage without a func writes "<name> ran" to its output.
type fakeBackend struct {
	mu    sync.Mutex
	funcs map[string]func(dir string, sf StageFile) error
	calls []string
	jobs  map[string]backend.Job
}

func (*fakeBackend) Name() string { return "fake" }

func (b *fakeBackend) Run(ctx context.Context, job backend.Job) error {
	b.mu.Lock()
	b.calls = append(b.calls, job.Name)
	if b.jobs == nil {
		b.jobs = map[string]backend.Job{}
	}
	b.jobs[job.Name] = job
	f := b.funcs[job.Name]
	b.mu.Unlock()
	raw, err := os.ReadFile(filepath.Join(job.Dir, launch.StageConfigFile))
	if err != nil {
		return err
	}
	var sf StageFile
	if err := json.Unmarshal(raw, &sf); err != nil {
		return err
	}
	if f == nil {
		return os.WriteFile(filepath.Join(job.Dir, sf.Output, "result.txt"), []byte(job.Name+" ran\n"), 0o644)
	}
	return f(job.Dir, sf)
}

func (b *fakeBackend) ran() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

// twoStages is a prepare stage and a CPU training stage reading its
// output: neither needs a GPU, so the runner runs them without devices.
func twoStages(t *testing.T) *plan.Plan {
	t.Helper()
	k := func(s string) key.Key {
		k, err := key.Of("ftc.test", 1, s)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	return &plan.Plan{
		Recipe:   "fake",
		Hardware: plan.Hardware{Nodes: 1, GPUsPerNode: 1, Strategy: config.StrategySingle, Device: "cpu"},
		Stages: []*plan.Stage{
			{Name: "sft.prepare", Kind: plan.KindPrepare, Key: k("prep"), ResumeKey: k("prep-resume"),
				Launch: launch.Plan{Argv: []string{"python", "-m", launch.Entrypoint}, Nodes: 1, ProcsPerNode: 1, Processes: 1}},
			{Name: "sft", Kind: plan.KindSFT, Key: k("sft"), ResumeKey: k("sft-resume"), Device: "cpu",
				Inputs: []plan.Input{{Role: "train", Stage: "sft.prepare"}},
				Launch: launch.Plan{Argv: []string{"python", "-m", launch.Entrypoint}, Nodes: 1, ProcsPerNode: 1, Processes: 1}},
		},
	}
}

type fixture struct {
	store  *cas.Store
	runs   string
	be     *fakeBackend
	events []Event
	mu     sync.Mutex
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	s, err := cas.Open(filepath.Join(root, "cas"))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: s, runs: filepath.Join(root, "runs"), be: &fakeBackend{funcs: map[string]func(string, StageFile) error{}}}
}

func (f *fixture) run(t *testing.T, p *plan.Plan, mod func(*Options)) (*Summary, error) {
	t.Helper()
	f.mu.Lock()
	f.events = nil
	f.mu.Unlock()
	log, err := NewEventLog("", func(e Event) { f.mu.Lock(); f.events = append(f.events, e); f.mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Store: f.store, RunsDir: f.runs, Backend: f.be, Events: log}
	if mod != nil {
		mod(&opts)
	}
	return Run(context.Background(), p, opts)
}

// eventTypes are the types of the events a stage emitted, in order.
func (f *fixture) eventTypes(stage string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.events {
		if e.Stage == stage {
			out = append(out, e.Type)
		}
	}
	return out
}

func status(sum *Summary, name string) *StageResult {
	for _, r := range sum.Stages {
		if r.Name == name {
			return r
		}
	}
	return nil
}

func TestRunCommitsOutputsAndPassesThemOn(t *testing.T) {
	f := newFixture(t)
	p := twoStages(t)
	f.be.funcs["sft"] = func(dir string, sf StageFile) error {
		// The upstream output reaches the stage as its input.
		in, ok := sf.Inputs["train"]
		if !ok || in.Kind != "stage-output" {
			return errors.New("no train input in stage.json")
		}
		b, err := os.ReadFile(filepath.Join(dir, in.Path, "result.txt"))
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, sf.Output, "model.txt"), append([]byte("trained on "), b...), 0o644)
	}
	sum, err := f.run(t, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c, ran, failed := sum.Counts(); c != 0 || ran != 2 || failed != 0 {
		t.Fatalf("counts: %d cached, %d ran, %d failed", c, ran, failed)
	}
	a, err := f.store.GetAction(string(p.Stages[1].Key))
	if err != nil {
		t.Fatalf("no cache entry for sft: %v", err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := f.store.Materialize(a.Outputs["output"], out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "model.txt")); string(b) != "trained on sft.prepare ran\n" {
		t.Fatalf("committed output: %q", b)
	}
	// The run directory is gone once the outputs are committed.
	if _, err := os.Stat(filepath.Join(f.runs, p.Stages[1].ResumeKey.Hex())); !os.IsNotExist(err) {
		t.Errorf("run directory left after commit: %v", err)
	}
	if got := strings.Join(f.eventTypes("sft"), " "); got != "start committing done" {
		t.Errorf("sft events: %s", got)
	}
}

func TestCachedStageIsSkipped(t *testing.T) {
	f := newFixture(t)
	p := twoStages(t)
	if _, err := f.run(t, p, nil); err != nil {
		t.Fatal(err)
	}
	f.be.calls = nil
	sum, err := f.run(t, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.be.ran(); len(got) != 0 {
		t.Fatalf("cached stages ran again: %v", got)
	}
	for _, s := range p.Stages {
		if r := status(sum, s.Name); r.Status != StatusCached || r.Outputs["output"] == "" {
			t.Errorf("%s: %s, outputs %v", s.Name, r.Status, r.Outputs)
		}
	}
	if got := strings.Join(f.eventTypes("sft"), " "); got != "cached" {
		t.Errorf("sft events: %s", got)
	}
	// --force reruns the named stage only.
	if _, err := f.run(t, p, func(o *Options) { o.Force = map[string]bool{"sft": true} }); err != nil {
		t.Fatal(err)
	}
	if got := f.be.ran(); len(got) != 1 || got[0] != "sft" {
		t.Fatalf("--force sft ran %v", got)
	}
}

func TestDryRunRunsNothing(t *testing.T) {
	f := newFixture(t)
	p := twoStages(t)
	sum, err := f.run(t, p, func(o *Options) { o.DryRun = true; o.Backend = nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Stages {
		if r := status(sum, s.Name); r.Status != StatusWouldRun {
			t.Errorf("%s: %s", s.Name, r.Status)
		}
	}
	if acts, _ := f.store.Actions(); len(acts) != 0 {
		t.Errorf("a dry run committed %d entries", len(acts))
	}
}

func TestFailedStageCommitsNothing(t *testing.T) {
	f := newFixture(t)
	p := twoStages(t)
	f.be.funcs["sft.prepare"] = func(dir string, sf StageFile) error {
		// An output written before the failure must not be committed.
		os.WriteFile(filepath.Join(dir, sf.Output, "half.txt"), []byte("half"), 0o644)
		return &backend.ExitError{Code: 3}
	}
	sum, err := f.run(t, p, nil)
	if err == nil || !strings.Contains(err.Error(), "stage sft.prepare: exit status 3") {
		t.Fatalf("error: %v", err)
	}
	var ee *backend.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Errorf("the backend's exit error is not wrapped: %v", err)
	}
	if r := status(sum, "sft.prepare"); r.Status != StatusFailed {
		t.Errorf("sft.prepare: %s", r.Status)
	}
	if r := status(sum, "sft"); r.Status != StatusSkipped {
		t.Errorf("sft after a failed input: %s", r.Status)
	}
	if got := f.be.ran(); len(got) != 1 {
		t.Errorf("ran %v; the stage reading a failed one must not run", got)
	}
	for _, s := range p.Stages {
		if _, err := f.store.GetAction(string(s.Key)); !errors.Is(err, cas.ErrNotFound) {
			t.Errorf("%s: cache entry after a failed run: %v", s.Name, err)
		}
	}
	if got := strings.Join(f.eventTypes("sft.prepare"), " "); got != "start failed" {
		t.Errorf("sft.prepare events: %s", got)
	}
	// The run directory stays (its logs say why), with the stage's log.
	if _, err := os.Stat(filepath.Join(f.runs, p.Stages[0].ResumeKey.Hex(), "logs", "stage.log")); err != nil {
		t.Errorf("no stage log after the failure: %v", err)
	}
	// Retries restart a failed stage: the second attempt succeeds.
	attempts := 0
	f.be.funcs["sft.prepare"] = func(dir string, sf StageFile) error {
		if attempts++; attempts == 1 {
			return &backend.ExitError{Code: 1}
		}
		return os.WriteFile(filepath.Join(dir, sf.Output, "result.txt"), []byte("ok"), 0o644)
	}
	if _, err := f.run(t, p, func(o *Options) { o.Retries = 1 }); err != nil {
		t.Fatalf("with --retries 1: %v", err)
	}
	if attempts != 2 {
		t.Errorf("attempts: %d", attempts)
	}
}

// writeCheckpoint makes a checkpoint as the entrypoints do: the manifest
// written last, complete.
func writeCheckpoint(dir, name string, m CheckpointManifest) error {
	d := filepath.Join(dir, "checkpoints", name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	b, _ := json.Marshal(m)
	return os.WriteFile(filepath.Join(d, CheckpointManifestFile), b, 0o644)
}

func TestResumedStageGetsItsNewestCompleteCheckpoint(t *testing.T) {
	f := newFixture(t)
	p := twoStages(t)
	// The first attempt writes two complete checkpoints and an incomplete
	// newer one, then dies.
	f.be.funcs["sft"] = func(dir string, sf StageFile) error {
		if sf.ResumeFrom != "" {
			return errors.New("the first attempt was told to resume from " + sf.ResumeFrom)
		}
		for _, c := range []struct {
			name string
			m    CheckpointManifest
		}{
			{"step-2", CheckpointManifest{Step: 2, WorldSize: 1, Strategy: config.StrategySingle, Complete: true}},
			{"step-4", CheckpointManifest{Step: 4, WorldSize: 1, Strategy: config.StrategySingle, Complete: true}},
			{"step-6", CheckpointManifest{Step: 6, WorldSize: 1, Strategy: config.StrategySingle}},
		} {
			if err := writeCheckpoint(dir, c.name, c.m); err != nil {
				return err
			}
		}
		return &backend.ExitError{Signal: "killed"}
	}
	if _, err := f.run(t, p, nil); err == nil {
		t.Fatal("the dying stage succeeded")
	}
	var got StageFile
	f.be.funcs["sft"] = func(dir string, sf StageFile) error {
		got = sf
		if _, err := os.Stat(filepath.Join(dir, sf.ResumeFrom, CheckpointManifestFile)); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, sf.Output, "model.txt"), []byte("resumed"), 0o644)
	}
	f.be.calls = nil
	sum, err := f.run(t, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("checkpoints", "step-4"); got.ResumeFrom != want {
		t.Errorf("resumeFrom %q, want %q", got.ResumeFrom, want)
	}
	if r := status(sum, "sft"); r.ResumedFrom != 4 || r.Status != StatusRan {
		t.Errorf("sft: %s, resumed from %d", r.Status, r.ResumedFrom)
	}
	if got := f.be.ran(); len(got) != 1 || got[0] != "sft" {
		t.Errorf("ran %v: the prepare stage was cached", got)
	}
	if got := strings.Join(f.eventTypes("sft"), " "); got != "resume start committing done" {
		t.Errorf("sft events: %s", got)
	}
}

func TestResumeRefusedWhenShardsDoNotFit(t *testing.T) {
	f := newFixture(t)
	p := twoStages(t)
	p.Hardware.Strategy = config.StrategyZeRO3
	dir := filepath.Join(f.runs, p.Stages[1].ResumeKey.Hex())
	if err := writeCheckpoint(dir, "step-2", CheckpointManifest{Step: 2, WorldSize: 4, Strategy: config.StrategyZeRO3, Complete: true}); err != nil {
		t.Fatal(err)
	}
	sum, err := f.run(t, p, func(o *Options) { o.Retries = 2 })
	var re *ResumeError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "sharded over 4 processes, this run has 1") {
		t.Fatalf("error: %v", err)
	}
	if got := f.be.ran(); len(got) != 1 || got[0] != "sft.prepare" {
		t.Errorf("ran %v: a stage that cannot resume must not start (nor be retried)", got)
	}
	if r := status(sum, "sft"); r.Status != StatusFailed {
		t.Errorf("sft: %s", r.Status)
	}
	// --restart discards the checkpoints and starts over.
	if _, err := f.run(t, p, func(o *Options) { o.Restart = map[string]bool{"sft": true} }); err != nil {
		t.Fatalf("with --restart: %v", err)
	}
}

func TestInterruptedStageIsCancelledNotFailed(t *testing.T) {
	f := newFixture(t)
	p := twoStages(t)
	ctx, cancel := context.WithCancel(context.Background())
	f.be.funcs["sft"] = func(dir string, sf StageFile) error {
		if err := writeCheckpoint(dir, "step-1", CheckpointManifest{Step: 1, WorldSize: 1, Strategy: config.StrategySingle, Complete: true}); err != nil {
			return err
		}
		cancel() // Ctrl-C while the stage trains
		return &backend.ExitError{Signal: "terminated"}
	}
	log, _ := NewEventLog("", nil)
	sum, err := Run(ctx, p, Options{Store: f.store, RunsDir: f.runs, Backend: f.be, Events: log})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("error: %v", err)
	}
	if r := status(sum, "sft"); r.Status != StatusCancelled {
		t.Errorf("sft: %s", r.Status)
	}
	if _, err := f.store.GetAction(string(p.Stages[1].Key)); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("an interrupted stage was committed: %v", err)
	}
	if _, _, err := newestCheckpointIn(f.runs, p.Stages[1]); err != nil {
		t.Errorf("the interrupted stage's checkpoint is gone: %v", err)
	}
}

func newestCheckpointIn(runs string, s *plan.Stage) (string, *CheckpointManifest, error) {
	ck, m, err := newestCheckpoint(filepath.Join(runs, s.ResumeKey.Hex(), "checkpoints"))
	if err == nil && m == nil {
		err = os.ErrNotExist
	}
	return ck, m, err
}
