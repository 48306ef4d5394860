package exec

import (
	"testing"
)

func TestReplayFoldsEventsInPlanOrder(t *testing.T) {
	rec := Replay([]Event{
		{Type: EventEnvironment, Message: "profile p, as pinned"},
		{Type: EventRunStart, Message: "r", Stages: []string{"a", "b", "c"}, Flags: []string{"--cpu"}},
		{Type: EventStart, Stage: "c", Key: "sha256:cc"},
		{Type: EventCached, Stage: "a", Key: "sha256:aa"},
		{Type: EventMetric, Stage: "c", Metrics: map[string]any{"loss": 2.0, "step": 1.0}},
		{Type: EventMetric, Stage: "c", Metrics: map[string]any{"loss": 1.0}},
		{Type: EventFailed, Stage: "c", Message: "exit status 1"},
		{Type: EventSkipped, Stage: "late", Message: "input c did not complete"},
	})
	if !rec.HasStart || rec.Recipe != "r" || rec.End != "" || rec.Environment != "profile p, as pinned" || len(rec.Flags) != 1 {
		t.Fatalf("record: %+v", rec)
	}
	want := []struct{ name, state string }{{"a", "cached"}, {"b", "pending"}, {"c", "failed"}, {"late", "skipped"}}
	if len(rec.Stages) != len(want) {
		t.Fatalf("stages: %d", len(rec.Stages))
	}
	for i, w := range want {
		if s := rec.Stages[i]; s.Name != w.name || s.State != w.state {
			t.Errorf("stage %d: %s %s, want %s %s", i, s.Name, s.State, w.name, w.state)
		}
	}
	c := rec.Stages[2]
	if c.Key != "sha256:cc" || c.Metrics["loss"] != 1.0 || c.Metrics["step"] != 1.0 || c.Message != "exit status 1" {
		t.Errorf("c: %+v", c)
	}
	if Replay(nil).HasStart {
		t.Error("an empty log has a start")
	}
}
