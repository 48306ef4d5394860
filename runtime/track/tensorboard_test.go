package track

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/runtime/exec"
)

// readRecords reads TFRecords, checking both CRCs with the masking
// TensorFlow's record writer uses (crc32c, rotated right 15, plus
// 0xa282ead8), written out here again rather than shared with the writer.
func readRecords(t *testing.T, b []byte) [][]byte {
	t.Helper()
	mask := func(b []byte) uint32 {
		c := crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
		return ((c >> 15) | (c << 17)) + 0xa282ead8
	}
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("truncated header: %d bytes", len(b))
		}
		n := binary.LittleEndian.Uint64(b)
		if got := binary.LittleEndian.Uint32(b[8:]); got != mask(b[:8]) {
			t.Fatalf("length CRC %x, want %x", got, mask(b[:8]))
		}
		data := b[12 : 12+n]
		if got := binary.LittleEndian.Uint32(b[12+n:]); got != mask(data) {
			t.Fatalf("data CRC %x, want %x", got, mask(data))
		}
		out = append(out, data)
		b = b[16+n:]
	}
	return out
}

// field is one protobuf field: its number and wire type, its varint, fixed
// or length-delimited value.
type field struct {
	num, wire int
	varint    uint64
	fixed     []byte
	bytes     []byte
}

func fields(t *testing.T, b []byte) []field {
	t.Helper()
	var out []field
	for len(b) > 0 {
		k, n := binary.Uvarint(b)
		b = b[n:]
		f := field{num: int(k >> 3), wire: int(k & 7)}
		switch f.wire {
		case 0:
			f.varint, n = binary.Uvarint(b)
			b = b[n:]
		case 1:
			f.fixed, b = b[:8], b[8:]
		case 5:
			f.fixed, b = b[:4], b[4:]
		case 2:
			l, n := binary.Uvarint(b)
			f.bytes, b = b[n:n+int(l)], b[n+int(l):]
		default:
			t.Fatalf("wire type %d", f.wire)
		}
		out = append(out, f)
	}
	return out
}

func TestTensorBoardWritesEachStartedStagesMetrics(t *testing.T) {
	dir := t.TempDir()
	tb := &TensorBoard{Dir: dir}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	key := "sha256:" + strings.Repeat("ab", 32)
	for _, e := range []exec.Event{
		{Type: exec.EventMetric, Stage: "sft", Step: 1, Metrics: map[string]any{"loss": 9.0}}, // before its start: dropped
		{Type: exec.EventStart, Stage: "sft", Key: key},
		{Type: exec.EventMetric, Stage: "sft", Step: 10, Time: at, Metrics: map[string]any{"step": 10.0, "loss": 1.5, "eval_loss": 2.25, "final": true}},
		{Type: exec.EventMetric, Stage: "sft", Step: 20, Time: at.Add(time.Second), Metrics: map[string]any{"step": 20.0, "loss": 1.25}},
	} {
		if err := tb.Event(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "sft-abababababab", "events.out.tfevents.*"))
	if len(files) != 1 {
		t.Fatalf("event files %v, want one under sft-abababababab", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	recs := readRecords(t, b)
	if len(recs) != 3 {
		t.Fatalf("%d records, want the version and two scalar events", len(recs))
	}
	if f := fields(t, recs[0]); len(f) != 2 || f[1].num != 3 || string(f[1].bytes) != "brain.Event:2" {
		t.Errorf("first record %+v, want wall_time and file_version brain.Event:2", f)
	}
	type point struct {
		step int
		wall float64
		tags map[string]float32
	}
	var got []point
	for _, r := range recs[1:] {
		p := point{tags: map[string]float32{}}
		for _, f := range fields(t, r) {
			switch f.num {
			case 1:
				p.wall = math.Float64frombits(binary.LittleEndian.Uint64(f.fixed))
			case 2:
				p.step = int(f.varint)
			case 5:
				for _, v := range fields(t, f.bytes) {
					var tag string
					var x float32
					for _, vf := range fields(t, v.bytes) {
						if vf.num == 1 {
							tag = string(vf.bytes)
						} else if vf.num == 2 {
							x = math.Float32frombits(binary.LittleEndian.Uint32(vf.fixed))
						}
					}
					p.tags[tag] = x
				}
			}
		}
		got = append(got, p)
	}
	if p := got[0]; p.step != 10 || p.wall != float64(at.Unix()) || len(p.tags) != 2 || p.tags["train/loss"] != 1.5 || p.tags["eval/loss"] != 2.25 {
		t.Errorf("first scalars %+v: want step 10 at %v with train/loss 1.5 and eval/loss 2.25 (no step, no flag)", p, at.Unix())
	}
	if p := got[1]; p.step != 20 || len(p.tags) != 1 || p.tags["train/loss"] != 1.25 {
		t.Errorf("second scalars %+v", p)
	}
}

// A folder that cannot be made is reported once, and the run's later
// metrics are dropped quietly.
func TestTensorBoardReportsAWriteErrorOnce(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	tb := &TensorBoard{Dir: file}
	tb.Event(exec.Event{Type: exec.EventStart, Stage: "sft", Key: "sha256:00"})
	m := exec.Event{Type: exec.EventMetric, Stage: "sft", Step: 1, Metrics: map[string]any{"loss": 1.0}}
	if err := tb.Event(m); err == nil || !strings.HasPrefix(err.Error(), "tensorboard: ") {
		t.Fatalf("first write: %v, want a tensorboard error", err)
	}
	if err := tb.Event(m); err != nil {
		t.Fatalf("second write: %v, want nothing more", err)
	}
}

// A cached stage TensorBoard has no folder for gets its entry's metrics;
// one it has (tracked when it ran) is not asked for them again.
func TestTensorBoardCachedStages(t *testing.T) {
	dir := t.TempDir()
	asked := 0
	tb := &TensorBoard{Dir: dir, Cached: func(key string) ([]byte, error) {
		asked++
		return []byte(`{"step": 1, "loss": 2.5}` + "\n" + `{"loss": 9}` + "\n" + `{"step": 2, "loss": 2.0}` + "\n"), nil
	}}
	os.MkdirAll(filepath.Join(dir, "rm-111111111111"), 0o755)
	for _, e := range []exec.Event{
		{Type: exec.EventCached, Stage: "rm", Key: "sha256:" + strings.Repeat("1", 64)},
		{Type: exec.EventCached, Stage: "sft", Key: "sha256:" + strings.Repeat("2", 64)},
	} {
		if err := tb.Event(e); err != nil {
			t.Fatal(err)
		}
	}
	tb.Close()
	if asked != 1 {
		t.Errorf("asked the cache %d times, want once (sft only)", asked)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "sft-222222222222", "events.out.tfevents.*"))
	if len(files) != 1 {
		t.Fatalf("event files %v", files)
	}
	b, _ := os.ReadFile(files[0])
	if n := len(readRecords(t, b)); n != 3 {
		t.Errorf("%d records, want the version and the two lines with a step", n)
	}
}
