package display

import (
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/ftc-dev/ftc/runtime/exec"
)

// Progress renders a run's events. Finished stages (cached, done, failed,
// …) get one permanent line each, in both modes. Running stages report
// step / total, loss, tokens/s and an ETA:
//
//   - on a terminal (tty) as a block of one line per running stage at the
//     bottom, redrawn in place on every metric and every tick;
//   - otherwise (CI, logs) as plain lines: the first metric of a stage,
//     then a line each time it passes another tenth of its steps (at most
//     one every minGap) and at least one every heartbeat (metric or not:
//     tick), so that a log of a long run stays short and still shows it is
//     alive.
//
// The total comes from the plan (exec.Event.Total on the start event);
// the rate, and so the ETA, from the steps seen since the first metric
// (model loading and compilation do not count against the rate).
type Progress struct {
	mu       sync.Mutex
	w        io.Writer
	total    int
	finished int
	// TTY redraws the running stages in place (a terminal); else plain
	// lines.
	TTY bool
	// Width is the terminal's width, for truncating live lines; 0: none.
	Width int
	// Now is the clock (time.Now; tests set their own).
	Now func() time.Time

	running []*liveStage // in the order they started
	drawn   int          // live lines on screen (tty)

	minGap    time.Duration
	heartbeat time.Duration
}

// liveStage is what the renderer knows of a running stage.
type liveStage struct {
	name         string
	total        int
	approx       bool
	step         int
	loss         float64
	hasLoss      bool
	tps          float64 // measured by the entrypoint (real tokens)
	hasTPS       bool
	firstStep    int // the first metric: the baseline of the rate
	firstAt      time.Time
	seen         bool
	lastAt       time.Time // when the latest metric came
	startedAt    time.Time
	printedAt    time.Time // plain: when the last line was printed
	printedTenth int
}

func NewProgress(w io.Writer, total int) *Progress {
	return &Progress{w: w, total: total, Now: time.Now, minGap: 2 * time.Second, heartbeat: 2 * time.Minute}
}

func (p *Progress) Event(e exec.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Type {
	case exec.EventCached, exec.EventDone, exec.EventFailed, exec.EventWouldRun, exec.EventCancelled, exec.EventSkipped, exec.EventPreempted:
		p.finished++
		p.remove(e.Stage)
	}
	n := fmt.Sprintf("[%d/%d]", p.finished, p.total)
	switch e.Type {
	case exec.EventCached:
		p.line("%s %-24s cached     %s", n, e.Stage, Short(e.Key))
	case exec.EventWouldRun:
		p.line("%s %-24s would run  %s", n, e.Stage, Short(e.Key))
	case exec.EventStart:
		s := p.stage(e.Stage)
		s.total, s.approx, s.startedAt = e.Total, e.TotalApprox, p.Now()
		p.line("      %-24s running    %s", e.Stage, e.Message)
	case exec.EventResume:
		p.stage(e.Stage).step = e.Step
		p.line("      %-24s resuming   from step %d", e.Stage, e.Step)
	case exec.EventRetry:
		// The next attempt starts afresh (or from its checkpoint, which
		// a resume event gives): no step or rate of the failed one.
		p.remove(e.Stage)
		p.line("      %-24s %s", e.Stage, e.Message)
	case exec.EventWaiting, exec.EventCorrupt:
		p.line("      %-24s %s", e.Stage, e.Message)
	case exec.EventMetric:
		p.metric(e)
	case exec.EventDone:
		p.line("%s %-24s done       %s in %.1fs %s", n, e.Stage, Short(e.Key), e.Seconds, FormatMetrics(e.Metrics))
	case exec.EventFailed:
		p.line("%s %-24s FAILED     %s", n, e.Stage, e.Message)
	case exec.EventCancelled:
		p.line("%s %-24s stopped    %s", n, e.Stage, e.Message)
	case exec.EventPreempted:
		p.line("%s %-24s preempted  %s", n, e.Stage, e.Message)
	case exec.EventSkipped:
		p.line("%s %-24s skipped    %s", n, e.Stage, e.Message)
	}
}

// stage returns the running stage name, adding it.
func (p *Progress) stage(name string) *liveStage {
	for _, s := range p.running {
		if s.name == name {
			return s
		}
	}
	s := &liveStage{name: name}
	p.running = append(p.running, s)
	return s
}

func (p *Progress) remove(name string) {
	for i, s := range p.running {
		if s.name == name {
			p.running = append(p.running[:i], p.running[i+1:]...)
			return
		}
	}
}

func (p *Progress) metric(e exec.Event) {
	s := p.stage(e.Stage)
	now := p.Now()
	if e.Step > 0 {
		s.step = e.Step
	}
	if v, ok := number(e.Metrics["loss"]); ok {
		s.loss, s.hasLoss = v, true
	}
	if v, ok := number(e.Metrics["tokens_per_second"]); ok {
		s.tps, s.hasTPS = v, true
	}
	if !s.seen {
		s.seen, s.firstStep, s.firstAt = true, s.step, now
	}
	s.lastAt = now
	if p.TTY {
		p.redraw()
		return
	}
	tenth := s.tenth()
	switch {
	case s.printedAt.IsZero(),
		tenth > s.printedTenth && now.Sub(s.printedAt) >= p.minGap,
		now.Sub(s.printedAt) >= p.heartbeat:
	default:
		return
	}
	s.printedAt, s.printedTenth = now, tenth
	fmt.Fprintln(p.w, s.render(now))
}

// tenth is how many tenths of its steps the stage has done (0 when the
// total is unknown).
func (s *liveStage) tenth() int {
	if s.total <= 0 {
		return 0
	}
	return min(10, s.step*10/s.total)
}

// eta is the time left at the rate seen since the first metric; false
// when there is no rate yet (one sample, no step since, no total) or the
// stage is past its total.
func (s *liveStage) eta() (time.Duration, bool) {
	done := s.step - s.firstStep
	elapsed := s.lastAt.Sub(s.firstAt)
	if s.total <= 0 || done <= 0 || elapsed <= 0 || s.step >= s.total {
		return 0, false
	}
	left := float64(s.total-s.step) * elapsed.Seconds() / float64(done)
	if math.IsInf(left, 0) || math.IsNaN(left) || left > 1e9 {
		return 0, false
	}
	return time.Duration(left * float64(time.Second)), true
}

// render is the stage's progress line at now.
func (s *liveStage) render(now time.Time) string {
	var b strings.Builder
	if !s.seen {
		fmt.Fprintf(&b, "      %-24s running %s, no metric yet", s.name, HumanDuration(now.Sub(s.startedAt)))
		return b.String()
	}
	fmt.Fprintf(&b, "      %-24s step %d", s.name, s.step)
	if s.total > 0 {
		about := ""
		if s.approx {
			about = "≈"
		}
		fmt.Fprintf(&b, "/%s%d %3d%%", about, s.total, min(100, s.step*100/s.total))
	}
	if s.hasLoss {
		fmt.Fprintf(&b, "  loss %.4g", s.loss)
	}
	if s.hasTPS {
		fmt.Fprintf(&b, "  %s tok/s", HumanRate(s.tps))
	}
	if eta, ok := s.eta(); ok {
		// Counted from the latest metric: on a terminal the ETA runs down
		// between metrics.
		left := eta - now.Sub(s.lastAt)
		if left < 0 {
			left = 0
		}
		fmt.Fprintf(&b, "  eta %s", HumanDuration(left))
	}
	return b.String()
}

// line prints a permanent line; on a terminal above the live block.
func (p *Progress) line(format string, args ...any) {
	if p.TTY {
		p.clear()
	}
	fmt.Fprintf(p.w, format+"\n", args...)
	if p.TTY {
		p.draw()
	}
}

// Ticking calls Tick until the returned stop is called, which then
// clears what is left of the live block (Close): on a terminal the ETA
// runs down between metrics (every 500 ms); in a log a stage that prints
// nothing for long has a heartbeat (checked every second).
func (p *Progress) Ticking() (stop func()) {
	stopTicks := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		every := time.Second
		if p.TTY {
			every = 500 * time.Millisecond
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stopTicks:
				return
			case <-t.C:
				p.Tick()
			}
		}
	}()
	return func() { close(stopTicks); <-ticked; p.Close() }
}

// Tick redraws the live block (tty): the ETA runs down between metrics.
// In plain mode it prints the heartbeat of a stage that has printed
// nothing for that long (a model still loading, a step longer than the
// heartbeat), so a log shows the run is alive.
func (p *Progress) Tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.TTY {
		p.redraw()
		return
	}
	now := p.Now()
	for _, s := range p.running {
		last := s.printedAt
		if last.IsZero() {
			last = s.startedAt
		}
		if last.IsZero() || now.Sub(last) < p.heartbeat {
			continue
		}
		s.printedAt = now
		fmt.Fprintln(p.w, s.render(now))
	}
}

// Close clears what is left of the live block.
func (p *Progress) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.TTY {
		p.clear()
	}
}

func (p *Progress) redraw() {
	p.clear()
	p.draw()
}

// clear moves the cursor to the first line of the live block and erases
// it and everything below.
func (p *Progress) clear() {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA\r\x1b[J", p.drawn)
		p.drawn = 0
	}
}

// draw prints one line per running stage: its progress, or how long it
// has run without a metric (loading a model, preparing data).
func (p *Progress) draw() {
	now := p.Now()
	var b strings.Builder
	for _, s := range p.running {
		if !s.seen && s.startedAt.IsZero() {
			continue // resuming: its start comes next
		}
		l := s.render(now)
		if p.Width > 0 {
			// A wrapped line would make the block taller than drawn counts.
			l = truncateRunes(l, p.Width-1)
		}
		b.WriteString(l + "\n")
		p.drawn++
	}
	io.WriteString(p.w, b.String())
}

func truncateRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

func number(v any) (float64, bool) {
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// humanRate writes a rate with k/M suffixes: 812, 5016 → 5.02k.
func HumanRate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case v >= 10:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// humanDuration writes 45s, 3m05s, 2h10m.
func HumanDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, (s%3600)/60)
}
