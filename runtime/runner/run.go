package runner

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/backend"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/exec"
	"github.com/ftc-dev/ftc/runtime/report"
)

// Reporter hears what a run does, in order; the CLI prints it. A run
// that stops early (an error) stops calling it.
type Reporter interface {
	// Warning is something resolving found worth saying.
	Warning(msg string)
	// Rescaled says what --gpus changed, before anything runs.
	Rescaled(lines []string)
	// Pulled says what came from the remote cache (err: nothing did,
	// and the run goes on without it).
	Pulled(ref string, stages int, moved string, err error)
	// Starting comes before the first event of the stages of p.
	Starting(p *plan.Plan, dryRun bool)
	// Event is one thing that happened (also written to the record).
	Event(e exec.Event)
	// Finished comes when the stages are done (res.Summary is nil when
	// the plan could not start) and the report is written.
	Finished(res *Result)
	// Pushed says what went to the remote cache after a run that ran
	// stages.
	Pushed(ref string, stages int, moved string, err error)
}

// Result is what a run did.
type Result struct {
	Plan    *plan.Plan
	Summary *exec.Summary
	// Elapsed is the stages' wall time.
	Elapsed time.Duration
	DryRun  bool
	// Record is the run's record directory ("" on a dry run); Report the
	// HTML report written there, or ReportErr why it was not.
	Record    string
	Report    string
	ReportErr error
}

// Run resolves, plans and runs o.Recipe: every stage whose key is cached
// (verified) is skipped, the rest run through the backend, and their
// outputs are committed to the cache. Errors in how it was called are
// UsageErrors; an error from o.Prepare is returned as it is.
func Run(ctx context.Context, o Options) (*Result, error) {
	rep := o.Reporter
	if rep == nil {
		rep = nopReporter{}
	}
	r := o.Recipe
	rs, err := ResolveAndPlan(ctx, r, ResolveOptions{Lock: o.Lock, Hub: o.Hub, Hasher: o.Hasher, Image: o.Image})
	if err != nil {
		return nil, err
	}
	p, res := rs.Plan, rs.Resolve
	for _, w := range res.Warnings {
		rep.Warning(w)
	}
	if o.Until != "" {
		p = UpTo(p, o.Until)
	}
	if err := o.checkStageNames(p); err != nil {
		return nil, UsageError{err}
	}
	be, err := o.backend()
	if err != nil {
		return nil, UsageError{err}
	}
	if err := o.CheckTopology(r.Hardware, HasTraining(p)); err != nil {
		return nil, UsageError{err}
	}
	if sb, ok := be.(backend.Slurm); ok {
		// The jobs take their partition, time, container and layout from
		// the recipe and the plan.
		sb.Settings = r.Hardware.SlurmSettings()
		sb.Plans = map[string]launch.Plan{}
		for _, s := range p.Stages {
			sb.Plans[s.Name] = s.Launch
		}
		be = sb
	}
	// Where the stages would run is checked before anything is pulled,
	// recorded or run, and by a dry run too: a missing sbatch or kubectl,
	// an unreachable cluster or a missing image surface here, not when
	// the first stage is submitted.
	if err := o.checkWhereItRuns(ctx, be); err != nil {
		return nil, fmt.Errorf("--backend %s: %w", o.Backend, err)
	}
	// The trackers are ready before anything runs, or is written to the
	// cache: missing credentials or an unreachable server stop the run
	// here. A dry run sends nothing.
	var trackers []tracker
	if !o.DryRun {
		if trackers, err = openTrackers(ctx, o); err != nil {
			return nil, err
		}
		defer func() {
			// What a tracker could not finish (W&B's runs, MLflow's run
			// ends) is said; the run's outcome stands.
			if err := closeTrackers(trackers); err != nil {
				rep.Warning(err.Error())
			}
		}()
	}
	// What --gpus changed is said before anything runs.
	if p.Rescaled != nil {
		rep.Rescaled(p.Rescaled.Lines())
	}
	cluster := o.Cluster()
	var gpus []int
	if !cluster && !r.CPU {
		if gpus, err = GPUList(o.GPUs, o.GPUsSet, r.Hardware); err != nil {
			return nil, UsageError{err}
		}
	}

	// This machine is made ready before anything is pulled, recorded or
	// run.
	python := o.Python
	prep := &Prepared{Plan: p}
	if o.Prepare != nil {
		if prep, err = o.Prepare(ctx, p, gpus); err != nil {
			return nil, err
		}
		p = prep.Plan
		if prep.Python != "" {
			python = prep.Python
		}
	}
	if o.Hasher != nil {
		o.Hasher.Flush()
	}
	if err := rs.WriteLock(); err != nil {
		return nil, err
	}
	store, err := cas.Open(o.Dirs.Store)
	if err != nil {
		return nil, err
	}

	if o.Remote != "" && o.Transfer != nil && !o.DryRun {
		n, moved, err := o.Transfer(ctx, store, o.Remote, PlanKeys(p), false)
		rep.Pulled(o.Remote, n, moved, err)
	}

	// Where the stage image's Python keeps its bytecode (pycache.go),
	// made before the run is recorded.
	pyc, err := o.pycacheEnv(r)
	if err != nil {
		return nil, err
	}

	// A dry run records nothing: ftc status goes on showing the last
	// real run.
	out := &Result{Plan: p, DryRun: o.DryRun}
	var eventsFile string
	if !o.DryRun {
		if out.Record, err = NewRecord(o.Dirs.Records, p.Recipe); err != nil {
			return nil, err
		}
		eventsFile = filepath.Join(out.Record, "events.jsonl")
	}
	rep.Starting(p, o.DryRun)
	sink := rep.Event
	configure(trackers, p, store)
	if len(trackers) > 0 {
		// Experiment tracking follows the recorded events: no key, no
		// stage input and no library in the image depends on it.
		sink = func(e exec.Event) {
			rep.Event(e)
			for _, t := range trackers {
				if err := t.Event(e); err != nil {
					rep.Warning(err.Error())
				}
			}
		}
	}
	events, err := exec.NewEventLog(eventsFile, sink)
	if err != nil {
		rep.Finished(out)
		return nil, err
	}
	defer events.Close()
	if prep.Record != nil {
		prep.Record(events, out.Record, p)
	}

	opts := exec.Options{
		Store: store, RunsDir: o.Dirs.Runs, Backend: be, RecipeDir: r.Dir, Files: res.Files, Sets: res.Sets, Models: res.Models,
		GPUs: gpus, KeyFlags: o.KeyFlags, Cluster: cluster, Force: set(o.Force), Restart: set(o.Restart), Retries: o.Retries,
		DryRun: o.DryRun, Events: events, Env: secretEnv(r), LocalEnv: prep.LocalEnv, ImageEnv: pyc,
		PrepareOnCluster: o.PrepareOn == "cluster",
	}
	switch {
	case len(o.Entrypoint) > 0:
		opts.Entrypoint = o.Entrypoint
	case python != "python":
		opts.Python = python
	}
	start := time.Now()
	sum, runErr := exec.Run(ctx, p, opts)
	out.Summary, out.Elapsed = sum, time.Since(start)
	if sum != nil && !o.DryRun {
		out.Report, out.ReportErr = report.Write(out.Record, report.Input{Plan: p, Summary: sum, Store: store, RecipeFile: o.File, Record: out.Record})
	}
	rep.Finished(out)
	if sum == nil || runErr != nil {
		return out, runErr
	}
	if _, ran, _ := sum.Counts(); o.Remote != "" && o.Transfer != nil && !o.DryRun && ran > 0 {
		n, moved, err := o.Transfer(ctx, store, o.Remote, PlanKeys(p), true)
		rep.Pushed(o.Remote, n, moved, err)
	}
	return out, nil
}

// cachedMetrics gives the metrics.jsonl of a cache entry's logs tree,
// verified as the store reads it (nil when the entry has none).
func cachedMetrics(store *cas.Store) func(key string) ([]byte, error) {
	return func(key string) ([]byte, error) {
		a, err := store.GetAction(key)
		if errors.Is(err, cas.ErrNotFound) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		logs := a.Outputs["logs"]
		if logs == "" {
			return nil, nil
		}
		t, err := store.ReadTree(logs)
		if err != nil {
			return nil, err
		}
		for _, e := range t.Entries {
			if e.Path == "metrics.jsonl" {
				return store.ReadBlob(e.Digest)
			}
		}
		return nil, nil
	}
}

type nopReporter struct{}

func (nopReporter) Warning(string)                    {}
func (nopReporter) Rescaled([]string)                 {}
func (nopReporter) Pulled(string, int, string, error) {}
func (nopReporter) Starting(*plan.Plan, bool)         {}
func (nopReporter) Event(exec.Event)                  {}
func (nopReporter) Finished(*Result)                  {}
func (nopReporter) Pushed(string, int, string, error) {}
