package resolve

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/google/renameio/v2"
)

// LockFile is the name of the lock next to a recipe.
const LockFile = "ftc.lock"

// Ref is a Hub reference that may need pinning.
type Ref struct {
	Kind     string // "model" or "dataset"
	Repo     string
	Revision string // as written: a branch, tag or commit
}

func (r Ref) String() string { return r.Kind + " " + r.Repo + "@" + r.Revision }

// Lock maps references to commits.
type Lock struct {
	Pins map[Ref]string
}

// ReadLock reads a lock file; a missing file is an empty lock.
func ReadLock(path string) (*Lock, error) {
	l := &Lock{Pins: map[Ref]string{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	} else if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 || (f[0] != "model" && f[0] != "dataset") {
			return nil, fmt.Errorf("%s:%d: want \"model|dataset REPO@REVISION COMMIT\"", path, n)
		}
		repo, rev, ok := strings.Cut(f[1], "@")
		if !ok || !isCommit(f[2]) {
			return nil, fmt.Errorf("%s:%d: want \"model|dataset REPO@REVISION COMMIT\"", path, n)
		}
		l.Pins[Ref{Kind: f[0], Repo: repo, Revision: rev}] = f[2]
	}
	return l, sc.Err()
}

// Bytes renders the lock deterministically: sorted lines, no dates.
func (l *Lock) Bytes() []byte {
	var lines []string
	for r, c := range l.Pins {
		lines = append(lines, fmt.Sprintf("%s %s@%s %s", r.Kind, r.Repo, r.Revision, c))
	}
	sort.Strings(lines)
	var b bytes.Buffer
	b.WriteString("# ftc.lock: Hub references of this recipe pinned to commits.\n")
	b.WriteString("# Written by `ftc run`; commit it so others run the same revisions.\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return b.Bytes()
}

// Write writes the lock atomically.
func (l *Lock) Write(path string) error {
	return renameio.WriteFile(path, l.Bytes(), 0o644)
}

func isCommit(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// IsCommit reports whether s is a full commit id.
func IsCommit(s string) bool { return isCommit(s) }
