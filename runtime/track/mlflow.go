package track

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ftc-dev/ftc/runtime/exec"
)

// MLflow sends each started stage's metrics to an MLflow tracking server
// through its REST API (api/2.0/mlflow): one MLflow run per stage start,
// named STAGE-KEY (the key's first 12 hex digits) and tagged ftc.stage,
// ftc.key and ftc.recipe, made with the stage's first metrics and ended
// FINISHED, FAILED or KILLED as the stage ends. Metrics keep the names ftc records (loss, eval_loss), as
// transformers' MLflow callback logs them, at the optimizer step.
//
// MLflow's file store is not written: MLflow 3 keeps it in maintenance
// mode and refuses it unless told otherwise; a server on a local
// database (mlflow server --backend-store-uri sqlite:///mlflow.db) is
// what MLflow asks for instead, and the REST API is the documented,
// stable way in.
type MLflow struct {
	// URI is the server's address (http:// or https://), Experiment the
	// experiment's name, Recipe the recipe's name (a tag).
	URI, Experiment, Recipe string
	// Header is sent with every request: the credentials, read from the
	// variables the recipe names when the run starts.
	Header http.Header
	// Cached gives the metrics.jsonl a cached stage's entry holds (nil
	// when it has none): a stage and key no MLflow run is tagged with yet
	// gets a run holding them.
	Cached func(key string) ([]byte, error)
	// Configs are the plan's stage configs, by stage: each run gets its
	// stage's settings as MLflow params (Params).
	Configs map[string]any
	// Client is the HTTP client (http.DefaultClient when nil); each
	// request is bounded by Timeout (10 s when 0).
	Client  *http.Client
	Timeout time.Duration

	mu         sync.Mutex
	experiment string
	started    starts
	runs       map[string]string // stage → open MLflow run
	err        error
}

// Open finds the experiment by name, creating it when the server has
// none: ftc run calls it before any stage starts, so an unreachable
// server or refused credentials stop the run before it spends anything.
func (m *MLflow) Open(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, deleted, err := m.find(ctx)
	var api *mlflowError
	if errors.As(err, &api) && api.Code == "RESOURCE_DOES_NOT_EXIST" {
		var made struct {
			ID string `json:"experiment_id"`
		}
		err = m.call(ctx, http.MethodPost, "experiments/create", map[string]any{"name": m.Experiment}, &made)
		id = made.ID
		if errors.As(err, &api) && api.Code == "RESOURCE_ALREADY_EXISTS" {
			id, deleted, err = m.find(ctx) // made by another run since
		}
	}
	if err != nil {
		return fmt.Errorf("mlflow: experiment %q on %s: %w", m.Experiment, m.URI, err)
	}
	if deleted {
		return fmt.Errorf("mlflow: experiment %q is deleted on %s; restore it (mlflow experiments restore --experiment-id %s) or name another in tracking.mlflow.experiment",
			m.Experiment, m.URI, id)
	}
	m.experiment = id
	return nil
}

// find looks the experiment up by name.
func (m *MLflow) find(ctx context.Context) (id string, deleted bool, err error) {
	var got struct {
		Experiment struct {
			ID             string `json:"experiment_id"`
			LifecycleStage string `json:"lifecycle_stage"`
		} `json:"experiment"`
	}
	err = m.call(ctx, http.MethodGet, "experiments/get-by-name?experiment_name="+url.QueryEscape(m.Experiment), nil, &got)
	return got.Experiment.ID, got.Experiment.LifecycleStage == "deleted", err
}

// Event takes one run event. It returns the first error sending met,
// once: later events are dropped, and the run goes on.
func (m *MLflow) Event(e exec.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil || m.experiment == "" {
		return nil
	}
	ctx := context.Background()
	switch e.Type {
	case exec.EventStart, exec.EventResume:
		m.started.note(e)
	case exec.EventMetric:
		// The run is made with the stage's first metrics: a stage that
		// records none (a prepare stage) leaves no empty run behind.
		run, ok := m.runs[e.Stage]
		if s, started := m.started[e.Stage]; !ok && started {
			if m.err = m.start(ctx, e.Stage, s.Key, s.Time); m.err == nil {
				run, ok = m.runs[e.Stage], true
			}
		}
		if ok && m.err == nil {
			m.err = m.log(ctx, run, []exec.Event{e})
		}
	case exec.EventDone:
		m.err = m.end(ctx, e.Stage, "FINISHED", e.Time)
	case exec.EventFailed:
		m.err = m.end(ctx, e.Stage, "FAILED", e.Time)
	case exec.EventCancelled, exec.EventPreempted:
		m.err = m.end(ctx, e.Stage, "KILLED", e.Time)
	case exec.EventCached:
		m.err = m.cached(ctx, e)
	}
	if m.err != nil {
		m.err = fmt.Errorf("mlflow: %w; no more metrics are sent to %s this run", m.err, m.URI)
		return m.err
	}
	return nil
}

// Close ends the runs still open (a run ftc stopped) as KILLED.
func (m *MLflow) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	stages := make([]string, 0, len(m.runs))
	for s := range m.runs {
		stages = append(stages, s)
	}
	sort.Strings(stages)
	var first error
	for _, s := range stages {
		if m.err != nil {
			break
		}
		if err := m.end(context.Background(), s, "KILLED", time.Now()); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// RunName is the MLflow run name of a stage and key: STAGE-KEY12, as
// TensorBoard's folder.
func RunName(stage, key string) string { return stage + "-" + shortKey(key) }

func (m *MLflow) start(ctx context.Context, stage, key string, at time.Time) error {
	var made struct {
		Run struct {
			Info struct {
				ID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	tags := []map[string]string{{"key": "ftc.stage", "value": stage}, {"key": "ftc.key", "value": key}}
	if m.Recipe != "" {
		tags = append(tags, map[string]string{"key": "ftc.recipe", "value": m.Recipe})
	}
	err := m.call(ctx, http.MethodPost, "runs/create", map[string]any{
		"experiment_id": m.experiment, "run_name": RunName(stage, key), "start_time": millis(at), "tags": tags,
	}, &made)
	if err != nil {
		return err
	}
	if m.runs == nil {
		m.runs = map[string]string{}
	}
	m.runs[stage] = made.Run.Info.ID
	return m.params(ctx, made.Run.Info.ID, Params(m.Configs[stage]))
}

// paramLimit is the most params MLflow takes in one runs/log-batch, and
// paramValueLimit the longest value it keeps.
const (
	paramLimit      = 100
	paramValueLimit = 6000
)

// params files a run's settings, in batches MLflow takes.
func (m *MLflow) params(ctx context.Context, run string, ps []Param) error {
	for len(ps) > 0 {
		n := min(len(ps), paramLimit)
		batch := make([]map[string]string, 0, n)
		for _, p := range ps[:n] {
			v := p.Value
			if len(v) > paramValueLimit {
				v = v[:paramValueLimit]
			}
			batch = append(batch, map[string]string{"key": p.Key, "value": v})
		}
		if err := m.call(ctx, http.MethodPost, "runs/log-batch", map[string]any{"run_id": run, "params": batch}, nil); err != nil {
			return err
		}
		ps = ps[n:]
	}
	return nil
}

func (m *MLflow) end(ctx context.Context, stage, status string, at time.Time) error {
	delete(m.started, stage)
	run, ok := m.runs[stage]
	if !ok {
		return nil
	}
	delete(m.runs, stage)
	return m.call(ctx, http.MethodPost, "runs/update", map[string]any{"run_id": run, "status": status, "end_time": millis(at)}, nil)
}

// batchLimit is the most metrics MLflow takes in one runs/log-batch.
const batchLimit = 1000

type mlflowMetric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int     `json:"step"`
}

// log sends events' numbers, in batches MLflow takes. Values JSON cannot
// carry (NaN, ±Inf) are left out, as flags and text are.
func (m *MLflow) log(ctx context.Context, run string, events []exec.Event) error {
	var batch []mlflowMetric
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := m.call(ctx, http.MethodPost, "runs/log-batch", map[string]any{"run_id": run, "metrics": batch}, nil)
		batch = batch[:0]
		return err
	}
	for _, e := range events {
		names := make([]string, 0, len(e.Metrics))
		for name := range e.Metrics {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			x, ok := number(e.Metrics[name])
			if !ok || name == "step" || math.IsNaN(x) || math.IsInf(x, 0) {
				continue
			}
			batch = append(batch, mlflowMetric{Key: name, Value: x, Timestamp: millis(e.Time), Step: e.Step})
			if len(batch) == batchLimit {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// cached sends a cached stage's recorded metrics as a finished run, when
// no run in the experiment is tagged with its key yet.
func (m *MLflow) cached(ctx context.Context, e exec.Event) error {
	if m.Cached == nil || e.Key == "" {
		return nil
	}
	var found struct {
		Runs []json.RawMessage `json:"runs"`
	}
	err := m.call(ctx, http.MethodPost, "runs/search", map[string]any{
		"experiment_ids": []string{m.experiment}, "filter": fmt.Sprintf("tags.`ftc.key` = '%s'", e.Key),
		"max_results": 1, "run_view_type": "ALL",
	}, &found)
	if err != nil || len(found.Runs) > 0 {
		return err // tracked when it ran, or by an earlier cached run
	}
	events, err := cachedEvents(m.Cached, e)
	if err != nil || len(events) == 0 {
		return err
	}
	if err := m.start(ctx, e.Stage, e.Key, events[0].Time); err != nil {
		return err
	}
	if err := m.log(ctx, m.runs[e.Stage], events); err != nil {
		return err
	}
	return m.end(ctx, e.Stage, "FINISHED", events[len(events)-1].Time)
}

// cachedEvents are the metric records of a cached stage's entry
// (cached(e.Key), nil when it has none) as events of e's stage, in step
// order, at e's time when a record has none.
func cachedEvents(cached func(key string) ([]byte, error), e exec.Event) ([]exec.Event, error) {
	b, err := cached(e.Key)
	if err != nil || len(b) == 0 {
		return nil, err
	}
	var out []exec.Event
	for _, line := range strings.Split(string(b), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		step, ok := rec["step"].(float64)
		if !ok {
			continue
		}
		at := e.Time
		if s, ok := rec["time"].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				at = t
			}
		}
		out = append(out, exec.Event{Type: exec.EventMetric, Stage: e.Stage, Time: at, Step: int(step), Metrics: rec})
	}
	// A tracker takes steps in order (W&B drops one below the last).
	sort.SliceStable(out, func(i, j int) bool { return out[i].Step < out[j].Step })
	return out, nil
}

// mlflowError is an error the server answered with.
type mlflowError struct {
	Status  int
	Code    string `json:"error_code"`
	Message string `json:"message"`
}

func (e *mlflowError) Error() string {
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return fmt.Sprintf("the server refused the credentials (%d %s%s); check the variables tracking.mlflow.auth names", e.Status, e.Code, colon(e.Message))
	case e.Code != "":
		return fmt.Sprintf("%s%s", e.Code, colon(e.Message))
	}
	return fmt.Sprintf("HTTP %d%s", e.Status, colon(e.Message))
}

func colon(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// attempts bounds the tries of one request: a server restarting or
// briefly overloaded (429, 5xx, no connection) gets two more, retryWait
// and twice that later.
const attempts = 3

var retryWait = time.Second

// call sends one request to api/2.0/mlflow/PATH and decodes the answer
// into out (when not nil).
func (m *MLflow) call(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	endpoint := strings.TrimSuffix(m.URI, "/") + "/api/2.0/mlflow/" + path
	client := m.Client
	if client == nil {
		client = http.DefaultClient
	}
	timeout := m.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	var last error
	for try := 0; try < attempts; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(try) * retryWait):
			}
		}
		retry, err := m.once(ctx, client, timeout, method, endpoint, payload, out)
		if err == nil || !retry {
			return err
		}
		last = err
	}
	return last
}

func (m *MLflow) once(ctx context.Context, client *http.Client, timeout time.Duration, method, endpoint string, payload []byte, out any) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, body)
	if err != nil {
		return false, err
	}
	for k, v := range m.Header {
		req.Header[k] = v
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return true, err
	}
	if resp.StatusCode != http.StatusOK {
		e := &mlflowError{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || (e.Code == "" && e.Message == "") {
			e.Message = strings.TrimSpace(string(b))
			if len(e.Message) > 200 {
				e.Message = e.Message[:200] + "…"
			}
		}
		return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, e
	}
	if out == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return false, fmt.Errorf("%s answered %q, not MLflow's JSON: %w", endpoint, truncate(b), err)
	}
	return false, nil
}

func truncate(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "…"
	}
	return string(b)
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UnixMilli()
}

// number is v as a float64, when it is a number.
func number(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	}
	return 0, false
}
