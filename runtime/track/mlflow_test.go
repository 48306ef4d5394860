package track

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/runtime/exec"
)

// fakeMLflow is a stand-in for an MLflow server's REST API, in memory,
// for what a real server cannot be made to do on cue (fail, refuse, hold
// a deleted experiment). internal/e2e's TestTrackingMLflow runs against a
// real server.
type fakeMLflow struct {
	mu       sync.Mutex
	calls    []string // "POST runs/log-batch", in order
	auth     []string // the Authorization header of each call
	bodies   []map[string]any
	failNext map[string]int // path → answers of 503 still to give
	refuse   bool           // answer 401 to everything
	deleted  bool           // the experiment exists but is deleted
	exists   bool
	tagged   bool // runs/search finds a run
}

func (f *fakeMLflow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, "/api/2.0/mlflow/")
	f.calls = append(f.calls, r.Method+" "+path)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.bodies = append(f.bodies, body)
	if f.refuse {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error_code": "UNAUTHENTICATED", "message": "bad token"}`)
		return
	}
	if f.failNext[path] > 0 {
		f.failNext[path]--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	switch path {
	case "experiments/get-by-name":
		if !f.exists {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such experiment"}`)
			return
		}
		stage := "active"
		if f.deleted {
			stage = "deleted"
		}
		fmt.Fprintf(w, `{"experiment": {"experiment_id": "7", "lifecycle_stage": %q}}`, stage)
	case "experiments/create":
		f.exists = true
		fmt.Fprint(w, `{"experiment_id": "7"}`)
	case "runs/create":
		fmt.Fprintf(w, `{"run": {"info": {"run_id": "run%d"}}}`, len(f.calls))
	case "runs/search":
		if f.tagged {
			fmt.Fprint(w, `{"runs": [{"info": {"run_id": "old"}}]}`)
		} else {
			fmt.Fprint(w, `{}`)
		}
	default:
		fmt.Fprint(w, `{}`)
	}
}

func (f *fakeMLflow) callList() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, ", ")
}

func newMLflow(t *testing.T, f *fakeMLflow) *MLflow {
	t.Helper()
	retryWait = time.Millisecond
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return &MLflow{URI: srv.URL, Experiment: "exp", Recipe: "r", Header: http.Header{"Authorization": {"Bearer tok"}}}
}

var t0 = time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC)

// A stage's run is made with its first metrics, named STAGE-KEY12 and
// tagged, gets every number (not NaN, not text), and ends FINISHED; a
// stage without metrics makes no run. Every call carries the credentials.
func TestMLflowRunPerStageWithMetrics(t *testing.T) {
	f := &fakeMLflow{}
	m := newMLflow(t, f)
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	key := "sha256:0123456789abcdef"
	for _, e := range []exec.Event{
		{Type: exec.EventStart, Stage: "sft.prepare", Key: "sha256:feed", Time: t0},
		{Type: exec.EventDone, Stage: "sft.prepare", Time: t0},
		{Type: exec.EventStart, Stage: "sft", Key: key, Time: t0},
		{Type: exec.EventMetric, Stage: "sft", Step: 5, Time: t0.Add(time.Second), Metrics: map[string]any{"loss": 1.5, "step": 5.0, "note": "x", "grad_norm": math.NaN()}},
		{Type: exec.EventMetric, Stage: "sft", Step: 10, Time: t0.Add(2 * time.Second), Metrics: map[string]any{"eval_loss": 1.25}},
		{Type: exec.EventDone, Stage: "sft", Time: t0.Add(3 * time.Second)},
	} {
		if err := m.Event(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	want := "GET experiments/get-by-name, POST experiments/create, POST runs/create, POST runs/log-batch, POST runs/log-batch, POST runs/update"
	if got := f.callList(); got != want {
		t.Fatalf("calls:\n %s\nwant\n %s", got, want)
	}
	for i, a := range f.auth {
		if a != "Bearer tok" {
			t.Errorf("call %d (%s) had Authorization %q", i, f.calls[i], a)
		}
	}
	create := f.bodies[2]
	if create["run_name"] != "sft-0123456789ab" || create["experiment_id"] != "7" || create["start_time"] != float64(t0.UnixMilli()) {
		t.Errorf("runs/create %v", create)
	}
	if tags := fmt.Sprint(create["tags"]); !strings.Contains(tags, "ftc.key value:"+key) || !strings.Contains(tags, "ftc.stage value:sft") {
		t.Errorf("runs/create tags %s", tags)
	}
	logged := fmt.Sprint(f.bodies[3]["metrics"])
	if want := fmt.Sprint([]any{map[string]any{"key": "loss", "step": 5.0, "timestamp": float64(t0.Add(time.Second).UnixMilli()), "value": 1.5}}); logged != want {
		t.Errorf("first log-batch %s, want %s", logged, want)
	}
	if end := f.bodies[5]; end["status"] != "FINISHED" || end["end_time"] != float64(t0.Add(3*time.Second).UnixMilli()) {
		t.Errorf("runs/update %v", end)
	}
}

// A server answering 503 twice is tried again; one refusing the
// credentials stops Open with what to check; a deleted experiment is
// named with the way out.
func TestMLflowOpen(t *testing.T) {
	f := &fakeMLflow{exists: true, failNext: map[string]int{"experiments/get-by-name": 2}}
	if err := newMLflow(t, f).Open(context.Background()); err != nil {
		t.Fatalf("after two 503s: %v", err)
	}
	if got := f.callList(); got != "GET experiments/get-by-name, GET experiments/get-by-name, GET experiments/get-by-name" {
		t.Errorf("calls %s", got)
	}

	err := newMLflow(t, &fakeMLflow{refuse: true}).Open(context.Background())
	if err == nil || !strings.Contains(err.Error(), "refused the credentials (401 UNAUTHENTICATED: bad token)") || !strings.Contains(err.Error(), "tracking.mlflow.auth") {
		t.Errorf("refused: %v", err)
	}
	if strings.Contains(fmt.Sprint(err), "tok") && !strings.Contains(fmt.Sprint(err), "token") {
		t.Errorf("the error shows the credentials: %v", err)
	}

	err = newMLflow(t, &fakeMLflow{exists: true, deleted: true}).Open(context.Background())
	if err == nil || !strings.Contains(err.Error(), "mlflow experiments restore --experiment-id 7") {
		t.Errorf("deleted: %v", err)
	}
}

// A failure during the run is returned once; the events after it send
// nothing. A run left open when ftc stops is ended KILLED.
func TestMLflowFailsOnceAndEndsOpenRuns(t *testing.T) {
	f := &fakeMLflow{exists: true}
	m := newMLflow(t, f)
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.Event(exec.Event{Type: exec.EventStart, Stage: "a", Key: "sha256:aa", Time: t0})
	m.Event(exec.Event{Type: exec.EventMetric, Stage: "a", Step: 1, Time: t0, Metrics: map[string]any{"loss": 1.0}})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if last := f.bodies[len(f.bodies)-1]; last["status"] != "KILLED" {
		t.Errorf("the open run ended %v, want KILLED", last)
	}

	f = &fakeMLflow{exists: true, failNext: map[string]int{"runs/log-batch": attempts}}
	m = newMLflow(t, f)
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.Event(exec.Event{Type: exec.EventStart, Stage: "a", Key: "sha256:aa", Time: t0})
	err := m.Event(exec.Event{Type: exec.EventMetric, Stage: "a", Step: 1, Time: t0, Metrics: map[string]any{"loss": 1.0}})
	if err == nil || !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "no more metrics are sent") {
		t.Fatalf("after %d 503s: %v", attempts, err)
	}
	n := len(f.callList())
	if err := m.Event(exec.Event{Type: exec.EventMetric, Stage: "a", Step: 2, Time: t0, Metrics: map[string]any{"loss": 1.0}}); err != nil {
		t.Errorf("the second failure was returned again: %v", err)
	}
	m.Close()
	if len(f.callList()) != n {
		t.Errorf("calls after the failure: %s", f.callList())
	}
}

// A cached stage's recorded metrics become a finished run, in batches
// MLflow takes, unless a run is tagged with its key already.
func TestMLflowCached(t *testing.T) {
	var lines []string
	for step := 1; step <= 600; step++ {
		lines = append(lines, fmt.Sprintf(`{"step": %d, "loss": %d.5, "learning_rate": 0.001}`, step, step))
	}
	cached := func(string) ([]byte, error) { return []byte(strings.Join(lines, "\n")), nil }

	f := &fakeMLflow{exists: true}
	m := newMLflow(t, f)
	m.Cached = cached
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Event(exec.Event{Type: exec.EventCached, Stage: "sft", Key: "sha256:bb", Time: t0}); err != nil {
		t.Fatal(err)
	}
	want := "GET experiments/get-by-name, POST runs/search, POST runs/create, POST runs/log-batch, POST runs/log-batch, POST runs/update"
	if got := f.callList(); got != want {
		t.Fatalf("calls:\n %s\nwant\n %s", got, want)
	}
	if search := fmt.Sprint(f.bodies[1]["filter"]); search != "tags.`ftc.key` = 'sha256:bb'" {
		t.Errorf("search filter %s", search)
	}
	n := len(f.bodies[3]["metrics"].([]any)) + len(f.bodies[4]["metrics"].([]any))
	if len(f.bodies[3]["metrics"].([]any)) != batchLimit || n != 1200 {
		t.Errorf("batches of %d and %d metrics, want %d first and 1200 in all", len(f.bodies[3]["metrics"].([]any)), len(f.bodies[4]["metrics"].([]any)), batchLimit)
	}

	f = &fakeMLflow{exists: true, tagged: true}
	m = newMLflow(t, f)
	m.Cached = cached
	m.Open(context.Background())
	m.Event(exec.Event{Type: exec.EventCached, Stage: "sft", Key: "sha256:bb", Time: t0})
	if got := f.callList(); got != "GET experiments/get-by-name, POST runs/search" {
		t.Errorf("a key already tracked: calls %s", got)
	}
}

// A stage's config becomes its settings, flattened by path, in key
// order; MLflow gets them with the run, 100 a request, values cut to
// what MLflow keeps.
func TestParams(t *testing.T) {
	config := map[string]any{"method": "dpo", "dpo": map[string]any{"beta": 0.05, "loss": "sigmoid"},
		"data": map[string]any{"packing": false, "targets": []string{"q", "v"}, "none": nil}, "steps": 6}
	var got []string
	for _, p := range Params(config) {
		got = append(got, p.Key+"="+p.Value)
	}
	want := "data.packing=false data.targets=[\"q\",\"v\"] dpo.beta=0.05 dpo.loss=sigmoid method=dpo steps=6"
	if strings.Join(got, " ") != want {
		t.Errorf("Params: %s\nwant %s", strings.Join(got, " "), want)
	}

	many := map[string]any{"long": strings.Repeat("x", paramValueLimit+10)}
	for i := 0; i < 150; i++ {
		many[fmt.Sprintf("k%03d", i)] = i
	}
	f := &fakeMLflow{exists: true}
	m := newMLflow(t, f)
	m.Configs = map[string]any{"sft": many}
	m.Open(context.Background())
	m.Event(exec.Event{Type: exec.EventStart, Stage: "sft", Key: "sha256:aa", Time: t0})
	if err := m.Event(exec.Event{Type: exec.EventMetric, Stage: "sft", Step: 1, Time: t0, Metrics: map[string]any{"loss": 1.0}}); err != nil {
		t.Fatal(err)
	}
	if got := f.callList(); got != "GET experiments/get-by-name, POST runs/create, POST runs/log-batch, POST runs/log-batch, POST runs/log-batch" {
		t.Fatalf("calls %s", got)
	}
	first, second := f.bodies[2]["params"].([]any), f.bodies[3]["params"].([]any)
	if len(first) != paramLimit || len(second) != 51 {
		t.Errorf("params in batches of %d and %d, want %d and 51", len(first), len(second), paramLimit)
	}
	if v := second[50].(map[string]any)["value"].(string); len(v) != paramValueLimit {
		t.Errorf("a long value kept %d characters, want %d", len(v), paramValueLimit)
	}
}
