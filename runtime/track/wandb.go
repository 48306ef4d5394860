package track

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ftc-dev/ftc/internal/sysproc"
	"github.com/ftc-dev/ftc/runtime/exec"
)

// WandBRequirements is the closure of W&B's library, each package by
// version and hash (CPython 3.11–3.13, x86_64 Linux): the environment
// the tracker process runs in.
//
//go:embed wandb-requirements.txt
var WandBRequirements string

//go:embed wandb_tracker.py
var wandbTracker string

// WandB sends each started stage's metrics to Weights & Biases through
// W&B's own library, in a process of its own beside ftc run
// (wandb_tracker.py, fed one JSON line an event): W&B's run files are
// W&B's format, written by W&B's code. One W&B run per stage start, made
// with its first metrics: named STAGE-KEY (the key's first 12 hex
// digits), grouped by recipe, its config holding ftc.stage, ftc.key and
// ftc.recipe; metrics tagged train/NAME and eval/NAME at the optimizer
// step, as transformers' W&B callback tags them. Offline, the runs are
// folders under Dir/wandb for `wandb sync`.
type WandB struct {
	// Python is the interpreter of the environment holding
	// WandBRequirements.
	Python string
	// Dir is W&B's directory (WANDB_DIR); Project, Entity (optional) and
	// Mode ("offline", "online") W&B's settings; Recipe the recipe's name.
	Dir, Project, Entity, Mode, Recipe string
	// Env is added to the process's environment: the API key, read from
	// the variable the recipe names.
	Env []string
	// Cached gives the metrics.jsonl a cached stage's entry holds (nil
	// when it has none): a stage and key W&B has no run folder for yet
	// gets a run holding them.
	Cached func(key string) ([]byte, error)
	// Configs are the plan's stage configs, by stage: each run's W&B
	// config holds its stage's (nested, as the plan writes it).
	Configs map[string]any
	// Bound is how long the process gets to start, and to finish its
	// runs when ftc is done (2 minutes when 0).
	Bound time.Duration

	mu     sync.Mutex // the fields below, but errs and waitErr
	cmd    *osexec.Cmd
	stdin  *os.File
	ready  chan struct{}
	exited chan struct{}
	// errMu guards what the process's output goroutine sets, never held
	// while writing to the process: the process may be blocked writing
	// to us.
	errMu   sync.Mutex
	waitErr error
	errs    []string // the process's "error:" lines
	started starts
	runs    map[string]bool
	err     error
}

func (w *WandB) bound() time.Duration {
	if w.Bound == 0 {
		return 2 * time.Minute
	}
	return w.Bound
}

// Open starts the tracker process and waits until W&B's library is
// imported: a broken environment stops the run before any stage.
func (w *WandB) Open(ctx context.Context) error {
	if err := os.MkdirAll(w.Dir, 0o755); err != nil {
		return fmt.Errorf("wandb: %w", err)
	}
	env := append(os.Environ(), "WANDB_MODE="+w.Mode, "WANDB_DIR="+w.Dir, "WANDB_PROJECT="+w.Project,
		"WANDB_ENTITY="+w.Entity, "WANDB_SILENT=true", "PYTHONUNBUFFERED=1")
	w.cmd = osexec.Command(w.Python, "-c", wandbTracker)
	w.cmd.Env = append(env, w.Env...)
	w.cmd.Dir = w.Dir
	// A process group of its own (wandb starts wandb-core): a tracker
	// that hangs is killed whole, and with ftc.
	w.cmd.SysProcAttr = sysproc.Attr(true, syscall.SIGKILL)
	// A pipe of our own, not StdinPipe's: writes to it take a deadline,
	// so a tracker that stops reading cannot stall the run.
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	w.cmd.Stdin, w.stdin = pr, pw
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		pr.Close()
		pw.Close()
		return err
	}
	var stderr strings.Builder
	w.cmd.Stderr = &limited{w: &stderr, n: 4096}
	err = w.cmd.Start()
	pr.Close()
	if err != nil {
		pw.Close()
		w.stdin = nil
		return fmt.Errorf("wandb: starting the tracker: %w", err)
	}
	w.ready, w.exited = make(chan struct{}), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "ready":
				once.Do(func() { close(w.ready) })
			case strings.HasPrefix(line, "error: "):
				w.errMu.Lock()
				w.errs = append(w.errs, strings.TrimPrefix(line, "error: "))
				w.errMu.Unlock()
			}
		}
		err := w.cmd.Wait()
		if err != nil && stderr.Len() > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
		}
		w.errMu.Lock()
		w.waitErr = err
		w.errMu.Unlock()
		close(w.exited)
	}()
	select {
	case <-w.ready:
		return nil
	case <-w.exited:
		return fmt.Errorf("wandb: the tracker exited before it was ready: %s", w.problem())
	case <-time.After(w.bound()):
		w.kill()
		<-w.exited
		return fmt.Errorf("wandb: the tracker was not ready within %s", w.bound())
	case <-ctx.Done():
		w.kill()
		<-w.exited
		return ctx.Err()
	}
}

// problem is what the process said went wrong.
func (w *WandB) problem() string {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	var parts []string
	parts = append(parts, w.errs...)
	if w.waitErr != nil {
		parts = append(parts, w.waitErr.Error())
	}
	if len(parts) == 0 {
		return "no reason given"
	}
	return strings.Join(parts, "; ")
}

// Event takes one run event. It returns the first problem the tracker met,
// once: later events are dropped, and the run goes on.
func (w *WandB) Event(e exec.Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil || w.stdin == nil {
		return nil
	}
	switch e.Type {
	case exec.EventStart, exec.EventResume:
		w.started.note(e)
	case exec.EventMetric:
		if s, ok := w.started[e.Stage]; ok && !w.runs[e.Stage] {
			w.err = w.start(e.Stage, s.Key, runID(e.Stage, s.Key, s.Time))
		}
		if w.err == nil && w.runs[e.Stage] {
			w.err = w.log(e)
		}
	case exec.EventDone:
		w.err = w.end(e.Stage, 0)
	case exec.EventFailed, exec.EventCancelled, exec.EventPreempted:
		w.err = w.end(e.Stage, 1)
	case exec.EventCached:
		w.err = w.cached(e)
	}
	if w.err == nil && w.problems() {
		w.err = errors.New(w.problem())
	}
	if w.err != nil {
		w.err = fmt.Errorf("wandb: %w; no more metrics are sent to W&B this run", w.err)
		return w.err
	}
	return nil
}

// runID is a W&B run id of its own for each start of a stage and key
// (W&B resumes a run given an id it has): STAGE-KEY12-START, the start
// time in base 36.
func runID(stage, key string, at time.Time) string {
	if at.IsZero() {
		at = time.Now()
	}
	return idPrefix(stage, key) + strconv.FormatInt(at.UnixMilli(), 36)
}

// idPrefix begins the W&B run ids of a stage and key: RunName, with the
// dot of a derived stage's name (W&B ids take none) an underscore.
func idPrefix(stage, key string) string {
	return strings.ReplaceAll(RunName(stage, key), ".", "_") + "-"
}

func (w *WandB) send(msg map[string]any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	w.stdin.SetWriteDeadline(time.Now().Add(w.bound()))
	if _, err := w.stdin.Write(append(b, '\n')); errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("the tracker took nothing for %s", w.bound())
	} else if err != nil {
		return fmt.Errorf("the tracker stopped: %s", w.problem())
	}
	return nil
}

func (w *WandB) start(stage, key, id string) error {
	if w.runs == nil {
		w.runs = map[string]bool{}
	}
	w.runs[stage] = true
	msg := map[string]any{"op": "start", "stage": stage, "key": key, "id": id, "name": RunName(stage, key), "recipe": w.Recipe}
	if c, ok := w.Configs[stage]; ok {
		msg["config"] = c
	}
	return w.send(msg)
}

func (w *WandB) log(e exec.Event) error {
	m := map[string]float64{}
	for name, v := range e.Metrics {
		if x, ok := number(v); ok && name != "step" && !math.IsNaN(x) && !math.IsInf(x, 0) {
			m[Tag(name)] = x
		}
	}
	if len(m) == 0 {
		return nil
	}
	return w.send(map[string]any{"op": "log", "stage": e.Stage, "step": e.Step, "metrics": m})
}

func (w *WandB) end(stage string, exit int) error {
	delete(w.started, stage)
	if !w.runs[stage] {
		return nil
	}
	delete(w.runs, stage)
	return w.send(map[string]any{"op": "end", "stage": stage, "exit": exit})
}

// cached sends a cached stage's recorded metrics as a finished run when
// W&B's directory has no run of its stage and key yet.
func (w *WandB) cached(e exec.Event) error {
	if w.Cached == nil || e.Key == "" {
		return nil
	}
	if m, _ := filepath.Glob(filepath.Join(w.Dir, "wandb", "*-"+idPrefix(e.Stage, e.Key)+"*")); len(m) > 0 {
		return nil // tracked when it ran, or by an earlier cached run
	}
	events, err := cachedEvents(w.Cached, e)
	if err != nil || len(events) == 0 {
		return err
	}
	if err := w.start(e.Stage, e.Key, runID(e.Stage, e.Key, e.Time)); err != nil {
		return err
	}
	for _, ev := range events {
		if err := w.log(ev); err != nil {
			return err
		}
	}
	return w.end(e.Stage, 0)
}

// Close ends the runs still open (a run ftc stopped) as failed, lets the
// tracker finish writing, bounded, and says what it could not do.
func (w *WandB) Close() error {
	w.mu.Lock()
	if w.stdin == nil {
		w.mu.Unlock()
		return nil
	}
	stages := make([]string, 0, len(w.runs))
	for s := range w.runs {
		stages = append(stages, s)
	}
	sort.Strings(stages)
	for _, s := range stages {
		if w.err == nil {
			w.err = w.end(s, 1)
		}
	}
	w.stdin.Close()
	w.stdin = nil
	w.mu.Unlock()
	select {
	case <-w.exited:
	case <-time.After(w.bound()):
		w.kill()
		<-w.exited
		return fmt.Errorf("wandb: the tracker did not finish its runs within %s", w.bound())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errMu.Lock()
	failed := w.waitErr != nil
	w.errMu.Unlock()
	if w.err == nil && (w.problems() || failed) {
		return fmt.Errorf("wandb: %s", w.problem())
	}
	return nil
}

// problems says whether the process reported a problem.
func (w *WandB) problems() bool {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return len(w.errs) > 0
}

// kill kills the tracker's process group.
func (w *WandB) kill() {
	if p := w.cmd.Process; p != nil {
		_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	}
}

// limited keeps the first n bytes written to it.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
