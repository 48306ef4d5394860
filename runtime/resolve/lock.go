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

	"github.com/ftc-dev/ftc/compiler/ident"
	"github.com/google/renameio/v2"

	"github.com/ftc-dev/ftc/compiler/arch"
	"github.com/ftc-dev/ftc/compiler/config"
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

// Lock holds a recipe's pins: Hub references to commits (ftc run), and
// for images (ftc lock, ftc build) the base image's digest and the Python
// dependency closure with hashes.
type Lock struct {
	Pins map[Ref]string
	// Bases maps base image references written without a digest to the
	// digest they were pinned to.
	Bases map[string]string
	// Python is the resolved Python closure; nil when none was resolved.
	Python *PythonLock
	// Archs are the architecture facts read from Hub models' config.json
	// at a commit.
	Archs map[ModelAt]Arch
}

// ModelAt is a Hub model at a commit.
type ModelAt struct {
	Repo, Commit string
}

func (m ModelAt) String() string { return m.Repo + "@" + m.Commit }

// Arch is what a model's config.json says about its architecture.
type Arch struct {
	// ConfigSHA256 is the digest of the config.json read, "sha256:<hex>".
	ConfigSHA256 string
	Facts        arch.Facts
}

// ModelFacts are the lock's architecture facts keyed as the compiler
// looks them up: by repo and commit, and by each revision the lock pins
// to that commit.
func (l *Lock) ModelFacts() config.ModelFacts {
	out := config.ModelFacts{}
	for at, a := range l.Archs {
		out[config.HubRef{Kind: "model", Repo: at.Repo, Revision: at.Commit}] = config.ModelFact{At: at.String(), Facts: a.Facts}
	}
	for ref, c := range l.Pins {
		if a, ok := l.Archs[ModelAt{Repo: ref.Repo, Commit: c}]; ok && ref.Kind == "model" {
			out[config.HubRef{Kind: "model", Repo: ref.Repo, Revision: ref.Revision}] = config.ModelFact{At: ref.Repo + "@" + c, Facts: a.Facts}
		}
	}
	return out
}

// PythonLock is a resolved Python dependency closure.
type PythonLock struct {
	// Input identifies what was resolved (image.RequirementsDigest: the
	// requirements, the base by digest, the platform); a lock resolved for
	// another input is stale.
	Input string
	// Packages, sorted by name, each with the sha256 of its wheel(s).
	Packages []PythonPackage
}

// PythonPackage is one locked distribution.
type PythonPackage struct {
	Name    string
	Version string
	// Hashes are "sha256:<hex>": of its wheels, or of its sdist when
	// Sdist is set (the few distributions ftc builds from source,
	// compiler/image.SourceBuilt).
	Hashes []string
	Sdist  bool
}

// Lock file lines, one pin each:
//
//	model REPO@REVISION COMMIT
//	dataset REPO@REVISION COMMIT
//	base IMAGE sha256:DIGEST
//	python-input sha256:DIGEST
//	python NAME==VERSION sha256:HASH [sha256:HASH...]
//	arch REPO@COMMIT sha256:CONFIG model_type=TYPE layers=N ... params=N
//	python-sdist NAME==VERSION sha256:HASH
const lineFormats = `"model|dataset REPO@REVISION COMMIT", "base IMAGE sha256:DIGEST", "python-input sha256:DIGEST", "python NAME==VERSION sha256:HASH...", "python-sdist NAME==VERSION sha256:HASH" or "arch REPO@COMMIT sha256:CONFIG NAME=VALUE..."`

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
		switch f[0] {
		case "base":
			if len(f) != 3 || !ident.IsDigest(f[2]) {
				return nil, fmt.Errorf("%s:%d: want \"base IMAGE sha256:DIGEST\"", path, n)
			}
			if l.Bases == nil {
				l.Bases = map[string]string{}
			}
			l.Bases[f[1]] = f[2]
			continue
		case "python-input":
			if len(f) != 2 || !ident.IsDigest(f[1]) {
				return nil, fmt.Errorf("%s:%d: want \"python-input sha256:DIGEST\"", path, n)
			}
			if l.Python == nil {
				l.Python = &PythonLock{}
			}
			l.Python.Input = f[1]
			continue
		case "arch":
			var at ModelAt
			var ok bool
			if len(f) >= 3 {
				at.Repo, at.Commit, ok = strings.Cut(f[1], "@")
			}
			if !ok || !ident.IsCommit(at.Commit) || !ident.IsDigest(f[2]) {
				return nil, fmt.Errorf("%s:%d: want \"arch REPO@COMMIT sha256:CONFIG NAME=VALUE...\"", path, n)
			}
			facts, err := arch.Parse(f[3:])
			if err != nil {
				return nil, fmt.Errorf("%s:%d: arch %s: %w", path, n, f[1], err)
			}
			if l.Archs == nil {
				l.Archs = map[ModelAt]Arch{}
			}
			l.Archs[at] = Arch{ConfigSHA256: f[2], Facts: facts}
			continue
		case "python", "python-sdist":
			var name, version string
			ok := len(f) >= 3 && (f[0] == "python" || len(f) == 3)
			if ok {
				name, version, ok = strings.Cut(f[1], "==")
			}
			if !ok || name == "" || version == "" {
				return nil, fmt.Errorf("%s:%d: want \"python NAME==VERSION sha256:HASH...\" or \"python-sdist NAME==VERSION sha256:HASH\"", path, n)
			}
			for _, h := range f[2:] {
				if !ident.IsDigest(h) {
					return nil, fmt.Errorf("%s:%d: %q is not sha256:<64 hex digits>", path, n, h)
				}
			}
			if l.Python == nil {
				l.Python = &PythonLock{}
			}
			l.Python.Packages = append(l.Python.Packages, PythonPackage{Name: name, Version: version, Hashes: f[2:], Sdist: f[0] == "python-sdist"})
			continue
		}
		if len(f) != 3 || (f[0] != "model" && f[0] != "dataset") {
			return nil, fmt.Errorf("%s:%d: want %s", path, n, lineFormats)
		}
		repo, rev, ok := strings.Cut(f[1], "@")
		if !ok || !ident.IsCommit(f[2]) {
			return nil, fmt.Errorf("%s:%d: want %s", path, n, lineFormats)
		}
		l.Pins[Ref{Kind: f[0], Repo: repo, Revision: rev}] = f[2]
	}
	if l.Python != nil {
		if l.Python.Input == "" {
			return nil, fmt.Errorf("%s: python lines without a python-input line", path)
		}
		sort.Slice(l.Python.Packages, func(i, j int) bool { return l.Python.Packages[i].Name < l.Python.Packages[j].Name })
	}
	return l, sc.Err()
}

// Bytes renders the lock deterministically: sorted lines, no dates.
func (l *Lock) Bytes() []byte {
	var lines []string
	for r, c := range l.Pins {
		lines = append(lines, fmt.Sprintf("%s %s@%s %s", r.Kind, r.Repo, r.Revision, c))
	}
	for img, d := range l.Bases {
		lines = append(lines, fmt.Sprintf("base %s %s", img, d))
	}
	for at, a := range l.Archs {
		lines = append(lines, fmt.Sprintf("arch %s %s %s", at, a.ConfigSHA256, a.Facts))
	}
	if l.Python != nil {
		lines = append(lines, "python-input "+l.Python.Input)
		for _, p := range l.Python.Packages {
			kind := "python"
			if p.Sdist {
				kind = "python-sdist"
			}
			lines = append(lines, fmt.Sprintf("%s %s==%s %s", kind, p.Name, p.Version, strings.Join(p.Hashes, " ")))
		}
	}
	sort.Strings(lines)
	var b bytes.Buffer
	b.WriteString("# ftc.lock: this recipe's pins (Hub references to commits; base image digest and Python hashes for images).\n")
	b.WriteString("# Written by `ftc run` and `ftc lock`; commit it so others run and build the same.\n")
	if len(l.Archs) > 0 {
		b.WriteString("# arch lines: the facts of a model's config.json at a commit, which vet and plan read.\n")
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return b.Bytes()
}

// Write writes the lock atomically.
func (l *Lock) Write(path string) error {
	return renameio.WriteFile(path, l.Bytes(), 0o644)
}
