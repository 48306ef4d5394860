package exec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"sync"
	"time"
)

// metricsTail follows a stage's metrics.jsonl while it runs.
type metricsTail struct {
	path   string
	emit   func(step int, m map[string]any)
	offset int64
	last   map[string]any
	mu     sync.Mutex
}

func newMetricsTail(path string, emit func(int, map[string]any)) *metricsTail {
	return &metricsTail{path: path, emit: emit}
}

// follow polls the file until the returned stop function is called, which
// reads what is left.
func (t *metricsTail) follow(every time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				t.read()
				return
			case <-tick.C:
				t.read()
			}
		}
	}()
	return func() { close(done); <-finished }
}

func (t *metricsTail) read() {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := os.Open(t.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(t.offset, io.SeekStart); err != nil {
		return
	}
	b, _ := io.ReadAll(f)
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		return // no complete line yet
	}
	t.offset += int64(end + 1)
	for _, line := range splitLines(b[:end+1]) {
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		step := 0
		if v, ok := m["step"].(float64); ok {
			step = int(v)
		}
		if t.last == nil {
			t.last = map[string]any{}
		}
		for k, v := range m {
			t.last[k] = v
		}
		t.emit(step, m)
	}
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
