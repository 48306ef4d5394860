package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ftc-dev/ftc/runtime/remote"
)

// transferMeter shows the bytes a transfer (cache push or pull) has moved
// and its rate. On a terminal one status line is rewritten in place;
// elsewhere a plain line is printed at most once every `every`. The lines
// of the transfer itself (an entry pushed) go through line, above the
// status. summary is the closing figure: bytes, time, mean rate.
type transferMeter struct {
	mu    sync.Mutex
	w     io.Writer
	verb  string // "pushing", "pulling"
	tty   bool
	now   func() time.Time
	every time.Duration

	start     time.Time
	bytes     int64
	printedAt time.Time
	shown     bool // tty: the status line is on screen
}

func newTransferMeter(w io.Writer, verb string, tty bool, now func() time.Time) *transferMeter {
	if now == nil {
		now = time.Now
	}
	return &transferMeter{w: w, verb: verb, tty: tty, now: now, every: 5 * time.Second, start: now()}
}

// add counts n more bytes (remote.Cache.Bytes).
func (m *transferMeter) add(n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bytes += n
	now := m.now()
	if !m.due(now) {
		return
	}
	m.printedAt = now
	if m.tty {
		fmt.Fprintf(m.w, "\r\x1b[K%s", m.status(now))
		m.shown = true
		return
	}
	fmt.Fprintln(m.w, m.status(now))
}

// line prints one line of the transfer above the status line.
func (m *transferMeter) line(msg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clear()
	fmt.Fprintln(m.w, msg)
}

// finish clears the status line.
func (m *transferMeter) finish() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clear()
}

func (m *transferMeter) clear() {
	if m.shown {
		io.WriteString(m.w, "\r\x1b[K")
		m.shown = false // the next add redraws it at once
	}
}

// due says whether a status line is due: on a terminal at once when none
// is shown, then at a screen's pace; in a log once every `every` (a
// transfer that ends within the first needs no running line: its summary
// says it all).
func (m *transferMeter) due(now time.Time) bool {
	if m.tty {
		return !m.shown || now.Sub(m.printedAt) >= 100*time.Millisecond
	}
	last := m.printedAt
	if last.IsZero() {
		last = m.start
	}
	return now.Sub(last) >= m.every
}

// status is the running line: "pushing: 12.0 MiB, 4.0 MiB/s".
func (m *transferMeter) status(now time.Time) string {
	s := fmt.Sprintf("%s: %s", m.verb, humanBytes(m.bytes))
	if r, ok := rate(m.bytes, now.Sub(m.start)); ok {
		s += ", " + r
	}
	return s
}

// summary is the closing figure: "12.0 MiB in 3.0s, 4.0 MiB/s".
func (m *transferMeter) summary() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.now().Sub(m.start)
	s := fmt.Sprintf("%s in %s", humanBytes(m.bytes), shortDuration(d))
	if r, ok := rate(m.bytes, d); ok {
		s += ", " + r
	}
	return s
}

// rate is bytes per second; false when no time has passed or nothing
// moved (no division by zero, no "0 B/s" for a transfer with nothing to
// send).
func rate(bytes int64, d time.Duration) (string, bool) {
	if d <= 0 || bytes <= 0 {
		return "", false
	}
	return humanBytes(int64(float64(bytes)/d.Seconds())) + "/s", true
}

func shortDuration(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return humanDuration(d)
}

// meterCache attaches a transfer meter to a remote cache: its bytes, and,
// when lines is set, its per-entry lines.
func meterCache(c *remote.Cache, w io.Writer, verb string, lines bool) *transferMeter {
	tty, _, _ := progressMode("auto", w)
	m := newTransferMeter(w, verb, tty, nil)
	c.Bytes = m.add
	if lines {
		c.Progress = m.line
	}
	return m
}
