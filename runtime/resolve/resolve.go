package resolve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ftc-dev/ftc/compiler/arch"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/ident"
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
	// AllConfigs reads the config.json of every Hub model whose facts the
	// lock lacks (ftc lock); otherwise only those of the models pinned
	// now and of those without an architecture (ftc run).
	AllConfigs bool
}

// Result says what resolution did.
type Result struct {
	// Pins are the commits used for every unpinned reference.
	Pins map[Ref]string
	// Archs are the config.json facts read now.
	Archs map[ModelAt]Arch
	// Warnings are what did not stop resolution: a config.json that
	// could not be read for a model whose recipe gives its architecture
	// (ftc run; ftc lock makes it an error).
	Warnings []string
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
	// Models are the checked local model directories (model: path): that
	// path → each file's path relative to the directory → its absolute
	// path.
	Models map[string]map[string]string
}

// Resolve checks the recipe's local files against their digests and pins
// its Hub references, then rewrites r's revisions to the commits, so the
// plan built from r is keyed by content. It reports every problem.
func Resolve(ctx context.Context, r *config.Recipe, opts Options) (*Result, error) {
	res := &Result{Pins: map[Ref]string{}, Files: map[string]string{}, Archs: map[ModelAt]Arch{}, Sets: map[string]map[string]string{}, Models: map[string]map[string]string{}}
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

	problems = append(problems, resolveModelTrees(r, dir, opts.Hasher, res)...)

	hub := pinHub(ctx, r, opts, res)
	problems = append(problems, hub...)
	if len(problems) > 0 {
		return nil, fmt.Errorf("resolving inputs:\n  %s", strings.Join(problems, "\n  "))
	}
	return res, nil
}

// PinModels pins the recipe's Hub references and reads the config.json
// of its models as opts asks, without checking local files: what `ftc
// lock` does before the recipe can be vetted, when a model's
// architecture is to come from the lock. It rewrites r's revisions to
// the commits.
func PinModels(ctx context.Context, r *config.Recipe, opts Options) (*Result, error) {
	res := &Result{Pins: map[Ref]string{}, Files: map[string]string{}, Archs: map[ModelAt]Arch{}}
	if problems := pinHub(ctx, r, opts, res); len(problems) > 0 {
		return res, fmt.Errorf("resolving Hub references:\n  %s", strings.Join(problems, "\n  "))
	}
	return res, nil
}

// pinHub pins the Hub references through the lock or the Hub, reads
// config.json where opts asks, and applies the pins to r.
func pinHub(ctx context.Context, r *config.Recipe, opts Options, res *Result) []string {
	var problems []string
	lock := opts.Lock
	if lock == nil {
		lock = &Lock{Pins: map[Ref]string{}}
	}
	seen := map[Ref]bool{}
	var refs []Ref
	for _, hr := range config.HubRefs(r) {
		ref := Ref{Kind: hr.Kind, Repo: hr.Repo, Revision: hr.Revision}
		if !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
		}
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	// The models whose config.json is read, at their commits; required
	// are those whose architecture is to come from it (the recipe
	// writes none): for the others it is a check, and failing to read it
	// a warning.
	missing := config.ArchMissing(r)
	var configs []ModelAt
	wanted := map[ModelAt]bool{}
	required := map[ModelAt]bool{}
	want := func(ref Ref, at ModelAt) {
		if missing[config.HubRef{Kind: ref.Kind, Repo: ref.Repo, Revision: ref.Revision}] {
			required[at] = true
		}
		if _, ok := lock.Archs[at]; !ok && !wanted[at] {
			wanted[at] = true
			configs = append(configs, at)
		}
	}
	for _, ref := range refs {
		// Read: every model's config.json for ftc lock; for ftc run,
		// those it pins now and those it needs the architecture of.
		need := ref.Kind == "model" && (opts.AllConfigs || missing[config.HubRef{Kind: ref.Kind, Repo: ref.Repo, Revision: ref.Revision}])
		if ident.IsCommit(ref.Revision) {
			if need {
				want(ref, ModelAt{Repo: ref.Repo, Commit: ref.Revision})
			}
			continue
		}
		if c, ok := lock.Pins[ref]; ok {
			res.Pins[ref] = c
			if need {
				want(ref, ModelAt{Repo: ref.Repo, Commit: c})
			}
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
		if ref.Kind == "model" {
			want(ref, ModelAt{Repo: ref.Repo, Commit: c})
		}
	}
	for _, at := range configs {
		var b []byte
		var facts arch.Facts
		err := fmt.Errorf("model %s: the Hub is not reachable (offline) to read its config.json", at)
		if opts.Hub != nil {
			b, err = opts.Hub.Config(ctx, at.Repo, at.Commit)
			if err == nil {
				facts, err = arch.FromConfigJSON(b)
				if err != nil {
					err = fmt.Errorf("model %s: %w", at, err)
				}
			}
		}
		if err != nil {
			if required[at] {
				problems = append(problems, err.Error()+" (the recipe gives no arch for it: run ftc lock where the Hub is reachable, HF_ENDPOINT naming a mirror, or give arch in the recipe)")
			} else {
				res.Warnings = append(res.Warnings, err.Error()+"; the recipe's arch for it is not checked against it")
			}
			continue
		}
		sum := sha256.Sum256(b)
		res.Archs[at] = Arch{ConfigSHA256: "sha256:" + hex.EncodeToString(sum[:]), Facts: facts}
		res.LockChanged = true
	}
	pins := map[config.HubRef]string{}
	for ref, c := range res.Pins {
		pins[config.HubRef{Kind: ref.Kind, Repo: ref.Repo, Revision: ref.Revision}] = c
	}
	config.ApplyPins(r, pins)
	return problems
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
		for k, v := range lock.Archs {
			if out.Archs == nil {
				out.Archs = map[ModelAt]Arch{}
			}
			out.Archs[k] = v
		}
	}
	for k, v := range res.Pins {
		out.Pins[k] = v
	}
	for k, v := range res.Archs {
		if out.Archs == nil {
			out.Archs = map[ModelAt]Arch{}
		}
		out.Archs[k] = v
	}
	return out
}

// ModelsLocked says what LockModels did: PinModels' result, and Added,
// the pins the lock did not have before.
type ModelsLocked struct {
	*Result
	Added map[Ref]string
}

// LockModels is ftc lock's model part as a library: it pins r's Hub
// references and reads every model's config.json (PinModels with
// AllConfigs) into lock, and writes lock to path when that changed it.
// lock is the one read from path, whose architectures r was decoded with
// (a model without arch is what this step is for). The result is
// non-nil, also with an error: what was pinned before it is written.
func LockModels(ctx context.Context, r *config.Recipe, lock *Lock, path string, hub *Hub) (*ModelsLocked, error) {
	res, err := PinModels(ctx, r, Options{Lock: lock, Hub: hub, AllConfigs: true})
	out := &ModelsLocked{Result: res, Added: map[Ref]string{}}
	if !res.LockChanged {
		return out, err
	}
	if werr := UpdatedLock(lock, res).Write(path); werr != nil {
		return out, &WriteError{Path: path, Err: werr}
	}
	for ref, c := range res.Pins {
		if _, had := lock.Pins[ref]; !had {
			out.Added[ref] = c
		}
	}
	return out, err
}

// WriteError is a lock that could not be written: what was pinned is
// lost, unlike a resolution error after which the lock holds the rest.
type WriteError struct {
	Path string
	Err  error
}

func (e *WriteError) Error() string { return "writing " + e.Path + ": " + e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

// resolveModelTrees hashes each local model directory again, as vet did
// (config.TreeDigest through the data view), and records its files: the
// plan was keyed by the digest vet saw, so a directory that changed since
// is refused rather than run under the old key.
func resolveModelTrees(r *config.Recipe, dir *recipefs.Dir, hasher *Hasher, res *Result) []string {
	var problems []string
	paths := make([]string, 0, len(r.ModelTrees))
	for p := range r.ModelTrees {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		want := r.ModelTrees[p].SHA256
		abs := map[string]string{}
		_, sum, err := config.TreeDigest(dir, p, func(rel string) (string, error) {
			a, err := dir.Resolve(rel)
			if err != nil {
				return "", err
			}
			abs[strings.TrimPrefix(rel, p+"/")] = a
			return hasher.SHA256(a)
		})
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("model %s: %v", p, err))
		case sum != want:
			problems = append(problems, fmt.Sprintf("model %s: the directory has tree sha256 %s, not the %s the plan was keyed by: it changed while ftc ran", p, sum, want))
		default:
			res.Models[p] = abs
		}
	}
	return problems
}
