package resolve

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/recipefs"
)

// Options control resolution.
type Options struct {
	// Lock is the lock read from next to the recipe (may be empty).
	Lock *Lock
	// Hub resolves references the lock lacks; nil means offline.
	Hub *Hub
	// Hasher checks local files.
	Hasher *Hasher
}

// Result says what resolution did.
type Result struct {
	// Pins are the commits used for every unpinned reference.
	Pins map[Ref]string
	// LockChanged is true when new pins were resolved and the lock
	// should be written.
	LockChanged bool
	// Files are the checked local files: path relative to the recipe →
	// absolute path.
	Files map[string]string
	// Sets are the checked datasets whose path names several files (a
	// directory or a glob): that path → each file's path relative to the
	// recipe → its absolute path.
	Sets map[string]map[string]string
}

// Resolve checks the recipe's local files against their digests and pins
// its Hub references, then rewrites r's revisions to the commits, so the
// plan built from r is keyed by content. It reports every problem.
func Resolve(ctx context.Context, r *config.Recipe, opts Options) (*Result, error) {
	res := &Result{Pins: map[Ref]string{}, Files: map[string]string{}, Sets: map[string]map[string]string{}}
	var problems []string

	// Data files are found as vet found them: inside the recipe's
	// directory or, through a symlink, in a declared data root. Files are
	// resolved again here, not trusted from vet: the tree may have changed.
	dir := recipefs.New(r.Dir).Data(r.DataRoots)
	for _, name := range r.SortedDatasetNames() {
		d := r.Datasets[name]
		if d.File == nil {
			continue
		}
		if files, set, err := config.DataFiles(dir, d.File.Path, d.File.Encoding); set {
			if err != nil {
				problems = append(problems, fmt.Sprintf("dataset %s: %v", name, err))
				continue
			}
			abs := map[string]string{}
			sum, err := config.PathDigest(dir, d.File.Path, d.File.Encoding, func(rel string) (string, error) {
				a, err := dir.Resolve(rel)
				if err != nil {
					return "", err
				}
				abs[rel] = a
				return opts.Hasher.SHA256(a)
			})
			if err != nil {
				problems = append(problems, fmt.Sprintf("dataset %s: %v", name, err))
				continue
			}
			if sum != d.File.SHA256 || len(abs) != len(files) {
				problems = append(problems, fmt.Sprintf("dataset %s: %s (%d files) has sha256 %s, but the recipe pins %s (update the recipe if the data changed on purpose)", name, d.File.Path, len(files), sum, d.File.SHA256))
				continue
			}
			res.Sets[d.File.Path] = abs
			continue
		}
		abs, err := dir.Resolve(d.File.Path)
		if err != nil {
			var esc *recipefs.EscapeError
			if errors.As(err, &esc) {
				problems = append(problems, fmt.Sprintf("dataset %s: %q %v (declare the shared volume as a data root: dataRoots in the recipe, or --data-root %s)", name, d.File.Path, esc, esc.Root))
			} else {
				problems = append(problems, fmt.Sprintf("dataset %s: %v", name, err))
			}
			continue
		}
		sum, err := opts.Hasher.SHA256(abs)
		if err != nil {
			problems = append(problems, fmt.Sprintf("dataset %s: %v", name, err))
			continue
		}
		if sum != d.File.SHA256 {
			problems = append(problems, fmt.Sprintf("dataset %s: %s has sha256 %s, but the recipe pins %s (update the recipe if the data changed on purpose)", name, d.File.Path, sum, d.File.SHA256))
			continue
		}
		res.Files[d.File.Path] = abs
	}

	lock := opts.Lock
	if lock == nil {
		lock = &Lock{Pins: map[Ref]string{}}
	}
	seen := map[Ref]bool{}
	var refs []Ref
	for _, hr := range config.HubRefs(r) {
		ref := Ref{Kind: hr.Kind, Repo: hr.Repo, Revision: hr.Revision}
		if !seen[ref] && !isCommit(ref.Revision) {
			seen[ref] = true
			refs = append(refs, ref)
		}
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	for _, ref := range refs {
		if c, ok := lock.Pins[ref]; ok {
			res.Pins[ref] = c
			continue
		}
		if opts.Hub == nil {
			problems = append(problems, fmt.Sprintf("%s is not pinned and %s has no entry for it: pin revision to a commit in the recipe, or run once with network access to write the lock", ref, LockFile))
			continue
		}
		c, err := opts.Hub.Commit(ctx, ref)
		if err != nil {
			problems = append(problems, err.Error()+" (offline? pin the revision to a commit in the recipe, or commit an "+LockFile+" written where the Hub is reachable, and run with --offline)")
			continue
		}
		res.Pins[ref] = c
		res.LockChanged = true
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("resolving inputs:\n  %s", strings.Join(problems, "\n  "))
	}
	pins := map[config.HubRef]string{}
	for ref, c := range res.Pins {
		pins[config.HubRef{Kind: ref.Kind, Repo: ref.Repo, Revision: ref.Revision}] = c
	}
	config.ApplyPins(r, pins)
	return res, nil
}

// UpdatedLock returns lock with res's pins added.
func UpdatedLock(lock *Lock, res *Result) *Lock {
	out := &Lock{Pins: map[Ref]string{}}
	if lock != nil {
		for k, v := range lock.Pins {
			out.Pins[k] = v
		}
		// The image pins (ftc lock) are not run's to change: keep them.
		out.Bases, out.Python = lock.Bases, lock.Python
	}
	for k, v := range res.Pins {
		out.Pins[k] = v
	}
	return out
}
