package resolve

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/renameio/v2"

	"github.com/ftc-dev/ftc/runtime/fileid"
)

// Hasher hashes files, remembering results by file identity.
type Hasher struct {
	// MemoDir holds one small file per hashed path; empty disables the
	// memo.
	MemoDir string
	// Progress, when set, is told how many bytes of a file were hashed.
	Progress func(path string, done, total int64)
	// Defer holds new memos in memory until Flush: a run that is refused
	// before anything starts (ftc run's environment check) writes nothing
	// to the cache.
	Defer bool

	mu      sync.Mutex
	pending map[string][]byte // memo file → content
}

// Flush writes the memos held back by Defer.
func (h *Hasher) Flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for file, b := range h.pending {
		if os.MkdirAll(h.MemoDir, 0o755) == nil {
			_ = renameio.WriteFile(file, b, 0o644)
		}
	}
	h.pending = nil
}

// memo is what the memo file of a hashed path holds: the file's identity
// when it was hashed, and the hash.
type memo struct {
	Path string `json:"path"`
	fileid.ID
	SHA256 string `json:"sha256"`
}

func identify(path string) (memo, error) {
	id, err := fileid.Stat(path)
	return memo{Path: path, ID: id}, err
}

func (h *Hasher) memoFile(abs string) string {
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(h.MemoDir, hex.EncodeToString(sum[:16])+".json")
}

// SHA256 returns the hex sha256 of the file at path. A memo is used when
// the file's identity has not changed since it was hashed; ctime changes
// on any write, so a modified file is always re-read.
func (h *Hasher) SHA256(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	id, err := identify(abs)
	if err != nil {
		return "", err
	}
	if h.MemoDir != "" {
		h.mu.Lock()
		b, held := h.pending[h.memoFile(abs)]
		h.mu.Unlock()
		var err error
		if !held {
			b, err = os.ReadFile(h.memoFile(abs))
		}
		if err == nil {
			var m memo
			if json.Unmarshal(b, &m) == nil && m.SHA256 != "" {
				sum := m.SHA256
				m.SHA256 = ""
				if m == id {
					return sum, nil
				}
			}
		}
	}
	sum, err := h.hash(abs, id.Size)
	if err != nil {
		return "", err
	}
	// Only remember the result if the file did not change while read.
	if after, err := identify(abs); err == nil && after == id && h.MemoDir != "" {
		id.SHA256 = sum
		b, _ := json.Marshal(id)
		if h.Defer {
			h.mu.Lock()
			if h.pending == nil {
				h.pending = map[string][]byte{}
			}
			h.pending[h.memoFile(abs)] = b
			h.mu.Unlock()
		} else if os.MkdirAll(h.MemoDir, 0o755) == nil {
			_ = renameio.WriteFile(h.memoFile(abs), b, 0o644)
		}
	}
	return sum, nil
}

// hashBuffer is large enough that the syscall cost vanishes next to the
// hashing itself.
const hashBuffer = 4 << 20

// hash reads on one goroutine and hashes on another, so copying from the
// page cache overlaps with SHA-256 (which is what bounds the speed: one
// core's SHA-NI throughput).
func (h *Hasher) hash(path string, size int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	full := make(chan []byte, 3)
	free := make(chan []byte, 3)
	for i := 0; i < 3; i++ {
		free <- make([]byte, hashBuffer)
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(full)
		for buf := range free {
			n, err := io.ReadFull(f, buf)
			if n > 0 {
				full <- buf[:n]
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				readErr <- nil
				return
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	d := sha256.New()
	var done int64
	for buf := range full {
		d.Write(buf)
		done += int64(len(buf))
		if h.Progress != nil {
			h.Progress(path, done, size)
		}
		free <- buf[:cap(buf)]
	}
	close(free)
	if err := <-readErr; err != nil {
		return "", err
	}
	return hex.EncodeToString(d.Sum(nil)), nil
}
