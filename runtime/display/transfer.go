package display

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// TransferMeter shows the bytes a transfer (cache push or pull) has moved
// and its rate. On a terminal one status line is rewritten in place;
// elsewhere a plain line is printed at most once every `every`. The lines
// of the transfer itself (an entry pushed) go through Line, above the
// status. Summary is the closing figure: bytes, time, mean rate.
type TransferMeter struct {
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

func NewTransferMeter(w io.Writer, verb string, tty bool, now func() time.Time) *TransferMeter {
	if now == nil {
		now = time.Now
	}
	return &TransferMeter{w: w, verb: verb, tty: tty, now: now, every: 5 * time.Second, start: now()}
}

// Add counts n more bytes (remote.Cache.Bytes).
func (m *TransferMeter) Add(n int64) {
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

// Line prints one line of the transfer above the status line.
func (m *TransferMeter) Line(msg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clear()
	fmt.Fprintln(m.w, msg)
}

// Finish clears the status line.
func (m *TransferMeter) Finish() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clear()
}

func (m *TransferMeter) clear() {
	if m.shown {
		io.WriteString(m.w, "\r\x1b[K")
		m.shown = false // the next add redraws it at once
	}
}

// due says whether a status line is due: on a terminal at once when none
// is shown, then at a screen's pace; in a log once every `every` (a
// transfer that ends within the first needs no running line: its Summary
// says it all).
func (m *TransferMeter) due(now time.Time) bool {
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
func (m *TransferMeter) status(now time.Time) string {
	s := fmt.Sprintf("%s: %s", m.verb, HumanBytes(m.bytes))
	if r, ok := rate(m.bytes, now.Sub(m.start)); ok {
		s += ", " + r
	}
	return s
}

// Summary is the closing figure: "12.0 MiB in 3.0s, 4.0 MiB/s".
func (m *TransferMeter) Summary() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.now().Sub(m.start)
	s := fmt.Sprintf("%s in %s", HumanBytes(m.bytes), shortDuration(d))
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
	return HumanBytes(int64(float64(bytes)/d.Seconds())) + "/s", true
}

func shortDuration(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return HumanDuration(d)
}
