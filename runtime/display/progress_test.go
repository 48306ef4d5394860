package display

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/runtime/exec"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)} }
func metric(stage string, step int, m map[string]any) exec.Event {
	return exec.Event{Type: exec.EventMetric, Stage: stage, Step: step, Metrics: m}
}

func testProgress(tty bool, stages int) (*Progress, *bytes.Buffer, *fakeClock) {
	var buf bytes.Buffer
	clock := newFakeClock()
	p := NewProgress(&buf, stages)
	p.TTY, p.Now = tty, clock.now
	return p, &buf, clock
}

func TestProgressPlain(t *testing.T) {
	p, buf, clock := testProgress(false, 3)
	p.Event(exec.Event{Type: exec.EventCached, Stage: "sft.prepare", Key: "sha256:" + strings.Repeat("a", 64)})
	p.Event(exec.Event{Type: exec.EventStart, Stage: "sft", Message: "python -m ftc.entry", Total: 100})
	clock.add(30 * time.Second) // loading the model: not part of the rate
	p.Event(metric("sft", 1, map[string]any{"loss": 2.5}))
	for step := 2; step <= 100; step++ {
		clock.add(time.Second)
		m := map[string]any{"loss": 2.5 - float64(step)/100}
		if step > 2 {
			m["tokens_per_second"] = 5016.0
		}
		p.Event(metric("sft", step, m))
	}
	p.Event(exec.Event{Type: exec.EventDone, Stage: "sft", Key: "sha256:" + strings.Repeat("b", 64), Seconds: 129, Metrics: map[string]any{"loss": 1.5}})
	got := buf.String()
	want := `[1/3] sft.prepare              cached     aaaaaaaaaaaa
      sft                      running    python -m ftc.entry
      sft                      step 1/100   1%  loss 2.5
      sft                      step 10/100  10%  loss 2.4  5016 tok/s  eta 1m30s
      sft                      step 20/100  20%  loss 2.3  5016 tok/s  eta 1m20s
      sft                      step 30/100  30%  loss 2.2  5016 tok/s  eta 1m10s
      sft                      step 40/100  40%  loss 2.1  5016 tok/s  eta 1m00s
      sft                      step 50/100  50%  loss 2  5016 tok/s  eta 50s
      sft                      step 60/100  60%  loss 1.9  5016 tok/s  eta 40s
      sft                      step 70/100  70%  loss 1.8  5016 tok/s  eta 30s
      sft                      step 80/100  80%  loss 1.7  5016 tok/s  eta 20s
      sft                      step 90/100  90%  loss 1.6  5016 tok/s  eta 10s
      sft                      step 100/100 100%  loss 1.5  5016 tok/s
[2/3] sft                      done       bbbbbbbbbbbb in 129.0s loss=1.5
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(got, "\x1b") {
		t.Error("plain output has escape sequences")
	}
}

// A stage whose total the plan does not know (no division by zero), one
// whose metrics all come at once (no elapsed time: no ETA), and a
// stage with no metric for longer than the heartbeat.
func TestProgressPlainNoRate(t *testing.T) {
	p, buf, clock := testProgress(false, 2)
	p.Event(exec.Event{Type: exec.EventStart, Stage: "grpo", Message: "x"})
	p.Event(exec.Event{Type: exec.EventStart, Stage: "sft", Message: "x", Total: 50, TotalApprox: true})
	p.Event(metric("grpo", 0, map[string]any{"loss": 0.0}))
	p.Event(metric("sft", 5, nil))
	p.Event(metric("sft", 5, nil)) // same step, same instant
	clock.add(time.Second)
	p.Event(metric("grpo", 7, nil)) // within the heartbeat, no total: not printed
	clock.add(3 * time.Minute)
	p.Event(metric("grpo", 9, map[string]any{"loss": 0.25, "tokens_per_second": 812.4}))
	got := buf.String()
	want := `      grpo                     running    x
      sft                      running    x
      grpo                     step 0  loss 0
      sft                      step 5/≈50  10%
      grpo                     step 9  loss 0.25  812 tok/s
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// A stage past its estimated total shows 100% and no ETA.
func TestProgressPastTotal(t *testing.T) {
	s := &liveStage{name: "sft", total: 10, approx: true, step: 12, firstStep: 1, seen: true}
	s.firstAt = newFakeClock().t
	s.lastAt = s.firstAt.Add(time.Minute)
	if got := s.render(s.lastAt); got != "      sft                      step 12/≈10 100%" {
		t.Errorf("got %q", got)
	}
	if _, ok := (&liveStage{total: 10, step: 5, firstStep: 5}).eta(); ok {
		t.Error("an ETA without a step since the first metric")
	}
}

var escapes = regexp.MustCompile("\x1b\\[[0-9]*[A-Za-z]|\r")

// screen replays terminal output onto lines: cursor up (A), carriage
// return, erase to the end of the line (K) and of the screen (J).
func screen(out string) []string {
	var lines [][]rune
	cur, col := 0, 0
	for i := 0; i < len(out); {
		if loc := escapes.FindStringIndex(out[i:]); loc != nil && loc[0] == 0 {
			seq := out[i : i+loc[1]]
			for len(lines) <= cur {
				lines = append(lines, nil)
			}
			switch {
			case seq == "\r":
				col = 0
			case strings.HasSuffix(seq, "A"):
				n, _ := strconv.Atoi(seq[2 : len(seq)-1])
				cur -= n
			case strings.HasSuffix(seq, "K"):
				lines[cur] = lines[cur][:col]
			case strings.HasSuffix(seq, "J"):
				lines[cur] = lines[cur][:col]
				lines = lines[:cur+1]
			}
			i += loc[1]
			continue
		}
		if out[i] == '\n' {
			cur, col = cur+1, 0
			i++
			continue
		}
		j := strings.IndexAny(out[i:], "\n\x1b\r")
		if j < 0 {
			j = len(out) - i
		}
		for len(lines) <= cur {
			lines = append(lines, nil)
		}
		for _, r := range out[i : i+j] {
			if col < len(lines[cur]) {
				lines[cur][col] = r
			} else {
				lines[cur] = append(lines[cur], r)
			}
			col++
		}
		i += j
	}
	var res []string
	for _, l := range lines {
		res = append(res, string(l))
	}
	// The cursor's empty line below the last newline is not a line.
	for len(res) > 0 && res[len(res)-1] == "" {
		res = res[:len(res)-1]
	}
	return res
}

func TestProgressTTY(t *testing.T) {
	p, buf, clock := testProgress(true, 3)
	p.Event(exec.Event{Type: exec.EventStart, Stage: "a", Message: "run a", Total: 10})
	p.Event(exec.Event{Type: exec.EventStart, Stage: "b", Message: "run b", Total: 4})
	p.Event(metric("a", 1, map[string]any{"loss": 1.0}))
	p.Event(metric("b", 1, nil))
	clock.add(10 * time.Second)
	p.Event(metric("a", 6, map[string]any{"loss": 0.5, "tokens_per_second": 100.0}))
	p.Event(metric("b", 2, nil))
	want := []string{
		"      a                        running    run a",
		"      b                        running    run b",
		"      a                        step 6/10  60%  loss 0.5  100 tok/s  eta 8s",
		"      b                        step 2/4  50%  eta 20s",
	}
	if got := screen(buf.String()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A tick counts the ETA down between metrics.
	clock.add(3 * time.Second)
	p.Tick()
	want[2] = "      a                        step 6/10  60%  loss 0.5  100 tok/s  eta 5s"
	want[3] = "      b                        step 2/4  50%  eta 17s"
	if got := screen(buf.String()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after a tick got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A finished stage's line goes above the live block, which keeps the
	// stage still running.
	p.Event(exec.Event{Type: exec.EventDone, Stage: "b", Key: "sha256:" + strings.Repeat("c", 64), Seconds: 13})
	want = append(want[:2], "[1/3] b                        done       cccccccccccc in 13.0s ", want[2])
	if got := screen(buf.String()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after b finished got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	p.Event(exec.Event{Type: exec.EventFailed, Stage: "a", Message: "boom"})
	p.Event(exec.Event{Type: exec.EventCached, Stage: "c", Key: "sha256:" + strings.Repeat("d", 64)})
	p.Close()
	want = append(want[:3], "[2/3] a                        FAILED     boom", "[3/3] c                        cached     dddddddddddd")
	if got := screen(buf.String()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("at the end got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A narrow terminal: live lines are cut to its width, so the block is as
// tall as the renderer counts.
func TestProgressTTYWidth(t *testing.T) {
	p, buf, _ := testProgress(true, 1)
	p.Width = 30
	p.Event(exec.Event{Type: exec.EventStart, Stage: "a", Message: "m", Total: 10})
	p.Event(metric("a", 1, map[string]any{"loss": 1.0}))
	got := screen(buf.String())
	if len(got) != 2 || len([]rune(got[1])) != 29 {
		t.Fatalf("got %q", got)
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 59 * time.Second: "59s", 61 * time.Second: "1m01s", 2*time.Hour + 10*time.Minute + 5*time.Second: "2h10m"} {
		if got := HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestHumanRate(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 2.345: "2.35", 812.4: "812", 5016: "5016", 25310: "25.3k", 1.5e6: "1.5M"} {
		if got := HumanRate(v); got != want {
			t.Errorf("HumanRate(%v) = %q, want %q", v, got, want)
		}
	}
}

// In a log, a stage that prints nothing for the heartbeat (a model still
// loading, a step longer than the heartbeat) gets a line from the ticker;
// a stage that printed recently does not.
func TestProgressPlainHeartbeat(t *testing.T) {
	p, buf, clock := testProgress(false, 2)
	p.Event(exec.Event{Type: exec.EventStart, Stage: "sft", Message: "x", Total: 10})
	clock.add(time.Minute)
	p.Event(exec.Event{Type: exec.EventStart, Stage: "rm", Message: "y", Total: 10})
	p.Event(metric("rm", 1, nil))
	p.Tick()
	clock.add(time.Minute)
	p.Tick()
	clock.add(time.Second)
	p.Tick() // nothing new: sft printed a second ago, rm 61 s ago
	clock.add(time.Minute)
	p.Tick()
	want := `      sft                      running    x
      rm                       running    y
      rm                       step 1/10  10%
      sft                      running 2m00s, no metric yet
      rm                       step 1/10  10%
`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// On a terminal a stage without a metric yet shows how long it has run.
func TestProgressTTYNoMetricYet(t *testing.T) {
	p, buf, clock := testProgress(true, 1)
	p.Event(exec.Event{Type: exec.EventResume, Stage: "sft", Step: 4})
	p.Event(exec.Event{Type: exec.EventStart, Stage: "sft", Message: "x", Total: 10})
	clock.add(75 * time.Second)
	p.Tick()
	want := []string{
		"      sft                      resuming   from step 4",
		"      sft                      running    x",
		"      sft                      running 1m15s, no metric yet",
	}
	if got := screen(buf.String()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A retried stage starts over: its progress is the new attempt's, from
// the checkpoint it resumes, and its rate is not the failed attempt's.
func TestProgressRetry(t *testing.T) {
	p, buf, clock := testProgress(false, 1)
	p.Event(exec.Event{Type: exec.EventStart, Stage: "sft", Message: "x", Total: 10})
	p.Event(metric("sft", 1, nil))
	clock.add(10 * time.Second)
	p.Event(metric("sft", 6, nil))
	p.Event(exec.Event{Type: exec.EventRetry, Stage: "sft", Message: "attempt 2 of 2 after: boom"})
	p.Event(exec.Event{Type: exec.EventResume, Stage: "sft", Step: 4})
	p.Event(exec.Event{Type: exec.EventStart, Stage: "sft", Message: "x", Total: 10})
	clock.add(time.Minute) // loading again
	p.Event(metric("sft", 5, nil))
	clock.add(3 * time.Second)
	p.Event(metric("sft", 8, nil))
	want := `      sft                      running    x
      sft                      step 1/10  10%
      sft                      step 6/10  60%  eta 8s
      sft                      attempt 2 of 2 after: boom
      sft                      resuming   from step 4
      sft                      running    x
      sft                      step 5/10  50%
      sft                      step 8/10  80%  eta 2s
`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
