package display

import (
	"bytes"
	"testing"
	"time"
)

func TestTransferMeterPlain(t *testing.T) {
	var buf bytes.Buffer
	clock := newFakeClock()
	m := NewTransferMeter(&buf, "pushing", false, clock.now)
	// Nothing has moved and no time has passed: no rate, no division by
	// zero.
	if got := m.Summary(); got != "0 B in 0.0s" {
		t.Errorf("empty summary %q", got)
	}
	for i := 0; i < 12; i++ { // 1 MiB a second for 12 s
		clock.add(time.Second)
		m.Add(1 << 20)
	}
	m.Line("pushed sft (sha256-0123456789ab): 3 blobs, 12582912 bytes")
	m.Finish()
	want := `pushing: 5.0 MiB, 1.0 MiB/s
pushing: 10.0 MiB, 1.0 MiB/s
pushed sft (sha256-0123456789ab): 3 blobs, 12582912 bytes
`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if got := m.Summary(); got != "12.0 MiB in 12.0s, 1.0 MiB/s" {
		t.Errorf("summary %q", got)
	}
}

// A transfer shorter than the interval prints no running line at all.
func TestTransferMeterPlainShort(t *testing.T) {
	var buf bytes.Buffer
	clock := newFakeClock()
	m := NewTransferMeter(&buf, "pulling", false, clock.now)
	clock.add(500 * time.Millisecond)
	m.Add(2048)
	m.Finish()
	if buf.Len() != 0 {
		t.Errorf("printed %q", buf.String())
	}
	if got := m.Summary(); got != "2.0 KiB in 0.5s, 4.0 KiB/s" {
		t.Errorf("summary %q", got)
	}
}

func TestTransferMeterTTY(t *testing.T) {
	var buf bytes.Buffer
	clock := newFakeClock()
	m := NewTransferMeter(&buf, "pulling", true, clock.now)
	m.Add(1024) // drawn at once; no time has passed: no rate
	clock.add(50 * time.Millisecond)
	m.Add(1024) // too soon to redraw
	clock.add(50 * time.Millisecond)
	m.Add(1024)
	m.Line("pulled sft (sha256-0123456789ab)")
	clock.add(time.Millisecond)
	m.Add(1024) // redrawn below the line at once
	m.Finish()
	want := "\r\x1b[Kpulling: 1.0 KiB" +
		"\r\x1b[Kpulling: 3.0 KiB, 30.0 KiB/s" +
		"\r\x1b[Kpulled sft (sha256-0123456789ab)\n" +
		"\r\x1b[Kpulling: 4.0 KiB, 39.6 KiB/s" +
		"\r\x1b[K"
	if got := buf.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := screen(buf.String()); len(got) != 1 || got[0] != "pulled sft (sha256-0123456789ab)" {
		t.Errorf("on screen at the end: %q", got)
	}
}
