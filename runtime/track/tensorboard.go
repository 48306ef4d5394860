package track

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ftc-dev/ftc/runtime/exec"
)

// TensorBoard writes each started stage's metrics as TensorBoard scalars
// to an event file under Dir/STAGE-KEY (the key's first 12 hex digits).
// Each run of ftc adds a file of its own; TensorBoard reads a folder's
// files as one run, in step order.
type TensorBoard struct {
	Dir string
	// Cached, when set, gives the metrics.jsonl a cached stage's entry
	// holds (nil when it has none): a stage and key TensorBoard has no
	// folder for yet gets its metrics from there, so turning tracking on
	// after a run shows what that run measured, and only once.
	Cached func(key string) ([]byte, error)

	mu    sync.Mutex
	keys  map[string]string // stage → key, from its start event
	files map[string]*os.File
	err   error
}

// Event takes one run event. It returns the first error writing met, once:
// later events are dropped, and the run goes on.
func (tb *TensorBoard) Event(e exec.Event) error {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.err != nil {
		return nil
	}
	switch e.Type {
	case exec.EventStart:
		if e.Key != "" {
			if tb.keys == nil {
				tb.keys = map[string]string{}
			}
			tb.keys[e.Stage] = e.Key
		}
	case exec.EventMetric:
		tb.err = tb.write(e)
	case exec.EventCached:
		tb.err = tb.cached(e)
	}
	if tb.err != nil {
		tb.err = fmt.Errorf("tensorboard: %w; no more metrics are written there this run", tb.err)
		return tb.err
	}
	return nil
}

// cached writes a cached stage's recorded metrics where TensorBoard has
// no folder for its stage and key yet.
func (tb *TensorBoard) cached(e exec.Event) error {
	if tb.Cached == nil || e.Key == "" {
		return nil
	}
	if _, err := os.Stat(tb.folder(e.Stage, e.Key)); err == nil {
		return nil // tracked when it ran, or by an earlier cached run
	}
	events, err := cachedEvents(tb.Cached, e)
	if err != nil || len(events) == 0 {
		return err
	}
	if tb.keys == nil {
		tb.keys = map[string]string{}
	}
	tb.keys[e.Stage] = e.Key
	for _, ev := range events {
		if err := tb.write(ev); err != nil {
			return err
		}
	}
	return nil
}

func (tb *TensorBoard) folder(stage, key string) string {
	return filepath.Join(tb.Dir, stage+"-"+shortKey(key))
}

func (tb *TensorBoard) write(e exec.Event) error {
	k, ok := tb.keys[e.Stage]
	if !ok {
		return nil // a server's metrics, or a stage not started by this run
	}
	f := tb.files[e.Stage]
	if f == nil {
		dir := tb.folder(e.Stage, k)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		host, _ := os.Hostname()
		name := fmt.Sprintf("events.out.tfevents.%d.%s.%d.ftc", time.Now().Unix(), sanitize(host), os.Getpid())
		var err error
		if f, err = os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return err
		}
		if tb.files == nil {
			tb.files = map[string]*os.File{}
		}
		tb.files[e.Stage] = f
		// Every event file starts with its version.
		if _, err := f.Write(record(eventProto(wallTime(e.Time), 0, "brain.Event:2", nil))); err != nil {
			return err
		}
	}
	vals := scalars(e.Metrics)
	if len(vals) == 0 {
		return nil
	}
	_, err := f.Write(record(eventProto(wallTime(e.Time), int64(e.Step), "", vals)))
	return err
}

// Close closes the event files.
func (tb *TensorBoard) Close() error {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var first error
	for _, f := range tb.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	tb.files = nil
	return first
}

type scalar struct {
	tag   string
	value float32
}

// scalars are a metric record's numbers, tagged as transformers'
// TensorBoard callback tags them (train/loss, eval/loss), in tag order.
// Flags and text are left out.
func scalars(m map[string]any) []scalar {
	var out []scalar
	for name, v := range m {
		if name == "step" {
			continue // the x axis
		}
		if x, ok := number(v); ok {
			out = append(out, scalar{Tag(name), float32(x)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].tag < out[j].tag })
	return out
}

// Tag is the TensorBoard tag of metric name: eval/NAME for eval_NAME,
// train/NAME for the rest.
func Tag(name string) string {
	if rest, ok := strings.CutPrefix(name, "eval_"); ok {
		return "eval/" + rest
	}
	return "train/" + name
}

func shortKey(k string) string {
	k = strings.TrimPrefix(k, "sha256:")
	if len(k) > 12 {
		k = k[:12]
	}
	return k
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == filepath.Separator || r < ' ' {
			return '_'
		}
		return r
	}, s)
}

func wallTime(t time.Time) float64 {
	if t.IsZero() {
		t = time.Now()
	}
	return float64(t.UnixNano()) / 1e9
}

// eventProto encodes a tensorflow.Event (tensorboard/compat/proto/
// event.proto): wall_time (1, double), step (2, int64), file_version (3,
// string) or summary (5, Summary); a Summary's values (1) each a tag (1,
// string) and simple_value (2, float).
func eventProto(wall float64, step int64, fileVersion string, vals []scalar) []byte {
	var b []byte
	b = append(b, 0x09)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(wall))
	if step != 0 {
		b = append(b, 0x10)
		b = binary.AppendUvarint(b, uint64(step))
	}
	if fileVersion != "" {
		b = appendBytes(b, 0x1a, []byte(fileVersion))
	}
	if len(vals) > 0 {
		var summary []byte
		for _, v := range vals {
			var val []byte
			val = appendBytes(val, 0x0a, []byte(v.tag))
			val = append(val, 0x15)
			val = binary.LittleEndian.AppendUint32(val, math.Float32bits(v.value))
			summary = appendBytes(summary, 0x0a, val)
		}
		b = appendBytes(b, 0x2a, summary)
	}
	return b
}

func appendBytes(b []byte, key byte, v []byte) []byte {
	b = append(b, key)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record frames data as a TFRecord: its length (uint64), the length's
// masked CRC-32C, the data, the data's masked CRC-32C, little-endian.
func record(data []byte) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	b = binary.LittleEndian.AppendUint32(b, maskedCRC(b))
	b = append(b, data...)
	return binary.LittleEndian.AppendUint32(b, maskedCRC(data))
}

func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}
