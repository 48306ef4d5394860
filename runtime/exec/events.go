package exec

import (
	"encoding/json"
	"os"
	"sync"
	"time"

	"github.com/ftc-dev/ftc/compiler/plan"
)

// Event is one thing that happened during a run. The event log is a JSON
// line per event; `ftc status` and the run report are built from it.
type Event struct {
	Time    time.Time      `json:"time"`
	Type    string         `json:"type"`
	Stage   string         `json:"stage,omitempty"`
	Kind    plan.Kind      `json:"kind,omitempty"`
	Key     string         `json:"key,omitempty"`
	Message string         `json:"message,omitempty"`
	Step    int            `json:"step,omitempty"`
	Metrics map[string]any `json:"metrics,omitempty"`
	Seconds float64        `json:"seconds,omitempty"`
	// Total is the optimizer steps the plan gives the stage (start only;
	// 0 when the plan does not know them): progress is step / Total, and
	// the plan is the one place that decides it. TotalApprox marks a
	// total estimated from the data's size.
	Total       int  `json:"total,omitempty"`
	TotalApprox bool `json:"totalApprox,omitempty"`
	// Stages lists the plan's stages in plan order (run-start only), so
	// that a listing of the run does not follow the order in which
	// concurrent stages happened to report.
	Stages []string `json:"stages,omitempty"`
	// Flags are the command-line flags that decided the plan's keys
	// (run-start only: --set, --gpus, --cpu), so that a record says how
	// its outputs are found again (ftc export takes the same).
	Flags []string `json:"flags,omitempty"`
}

// Event types.
const (
	EventRunStart   = "run-start"
	EventCached     = "cached"
	EventCorrupt    = "corrupt"
	EventWaiting    = "waiting"
	EventStart      = "start"
	EventResume     = "resume"
	EventMetric     = "metric"
	EventRetry      = "retry"
	EventCommitting = "committing"
	EventDone       = "done"
	EventFailed     = "failed"
	EventCancelled  = "cancelled"
	// EventPreempted: the stage got SIGTERM (a scheduler's warning),
	// saved a checkpoint and exited as resumable (ExitPreempted).
	EventPreempted = "preempted"
	EventSkipped   = "skipped"
	EventWouldRun  = "would-run"
	EventRunEnd    = "run-end"
	// EventEnvironment says what the local environment check found and
	// how outputs are keyed when it differed from the profile.
	EventEnvironment = "environment"
)

// EventLog appends events to a JSON-lines file and passes them on.
type EventLog struct {
	mu   sync.Mutex
	f    *os.File
	sink func(Event)
}

// NewEventLog writes to path (may be empty) and calls sink (may be nil)
// for each event.
func NewEventLog(path string, sink func(Event)) (*EventLog, error) {
	l := &EventLog{sink: sink}
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		l.f = f
	}
	return l, nil
}

// Emit records e.
func (l *EventLog) Emit(e Event) {
	if l == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		b, _ := json.Marshal(e)
		l.f.Write(append(b, '\n'))
	}
	if l.sink != nil {
		l.sink(e)
	}
}

// Close closes the file.
func (l *EventLog) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	return l.f.Close()
}

// ReadEvents reads an event log.
func ReadEvents(path string) ([]Event, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Event
	for _, line := range splitLines(b) {
		var e Event
		if json.Unmarshal(line, &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, c := range b {
		if c == '\n' {
			if i > start {
				out = append(out, b[start:i])
			}
			start = i + 1
		}
	}
	if start < len(b) {
		out = append(out, b[start:])
	}
	return out
}
