package exec

import (
	"sort"
	"time"
)

// RunRecord is a run as its event log tells it (ftc status): what each
// stage of the plan came to, in plan order.
type RunRecord struct {
	// Recipe and Started come from the run-start event, when there is
	// one (HasStart); Flags are the flags that decided the keys.
	HasStart bool
	Recipe   string
	Started  time.Time
	Flags    []string
	// Environment is what the local environment check said ("": none).
	Environment string
	// End is the run-end event's counts; "" when the run did not finish
	// (interrupted, or still running).
	End    string
	Stages []*StageRecord
}

// StageRecord is what became of one stage, as last reported.
type StageRecord struct {
	Name string
	// State is one of pending, cached, would run, running, ran, failed,
	// stopped, preempted or skipped.
	State   string
	Key     string
	Seconds float64 // the wall time of a stage that ran
	// Metrics are the last value of each metric reported.
	Metrics map[string]any
	// Message says why a stage failed, was preempted or skipped.
	Message string
}

// Replay folds a run's events into its record. Stages are in the plan
// order the run-start event lists, not in the order concurrent stages
// reported; a stage the run-start event does not list comes after, in
// the order it first appears.
func Replay(events []Event) *RunRecord {
	rec := &RunRecord{}
	byName := map[string]*StageRecord{}
	order := map[string]int{}
	get := func(name string) *StageRecord {
		if byName[name] == nil {
			byName[name] = &StageRecord{Name: name, State: "pending"}
			order[name] = len(order)
		}
		return byName[name]
	}
	for _, e := range events {
		switch e.Type {
		case EventRunStart:
			rec.Flags = e.Flags
			for _, n := range e.Stages {
				get(n)
			}
			rec.HasStart, rec.Recipe, rec.Started = true, e.Message, e.Time
		case EventCached:
			s := get(e.Stage)
			s.State, s.Key = "cached", e.Key
		case EventWouldRun:
			s := get(e.Stage)
			s.State, s.Key = "would run", e.Key
		case EventStart:
			s := get(e.Stage)
			s.State, s.Key = "running", e.Key
		case EventMetric:
			s := get(e.Stage)
			if s.Metrics == nil {
				s.Metrics = map[string]any{}
			}
			for k, v := range e.Metrics {
				s.Metrics[k] = v
			}
		case EventDone:
			s := get(e.Stage)
			s.State, s.Seconds = "ran", e.Seconds
		case EventFailed:
			s := get(e.Stage)
			s.State, s.Message = "failed", e.Message
		case EventCancelled:
			get(e.Stage).State = "stopped"
		case EventPreempted:
			s := get(e.Stage)
			s.State, s.Message = "preempted", e.Message
		case EventSkipped:
			s := get(e.Stage)
			s.State, s.Message = "skipped", e.Message
		case EventRunEnd:
			rec.End = e.Message
		case EventEnvironment:
			rec.Environment = e.Message // written before run-start
		}
	}
	for _, s := range byName {
		rec.Stages = append(rec.Stages, s)
	}
	sort.Slice(rec.Stages, func(i, j int) bool { return order[rec.Stages[i].Name] < order[rec.Stages[j].Name] })
	return rec
}
