package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/exec"
	"github.com/ftc-dev/ftc/runtime/resolve"
)

// ErrNoRecord is LastRecord's error when the records directory has no
// run at all.
var ErrNoRecord = errors.New("no run recorded")

// Record is a run record read back: its directory, its events, and the
// run's first and last event (End is nil for a run that did not end).
type Record struct {
	Dir        string
	Events     []exec.Event
	Start, End *exec.Event
}

// LastRecord reads the newest run record under root of the recipe named
// name: the newest record whose id ends in the name, else (no such
// record, or name "") the latest run. A record without a run-start event
// is an error.
func LastRecord(root, name string) (*Record, error) {
	var id string
	if name != "" {
		ents, _ := os.ReadDir(root)
		var ids []string
		for _, e := range ents {
			// ids are <UTC time, no dash>-<recipe name> (the CLI's newRecord)
			if _, n, _ := strings.Cut(e.Name(), "-"); e.IsDir() && n == name {
				ids = append(ids, e.Name())
			}
		}
		sort.Strings(ids) // ids begin with the UTC time
		if len(ids) > 0 {
			id = ids[len(ids)-1]
		}
	}
	if id == "" {
		b, err := os.ReadFile(filepath.Join(root, "latest"))
		if err != nil {
			return nil, fmt.Errorf("%w in %s", ErrNoRecord, root)
		}
		id = strings.TrimSpace(string(b))
	}
	rec := &Record{Dir: filepath.Join(root, id)}
	var err error
	if rec.Events, err = exec.ReadEvents(filepath.Join(rec.Dir, "events.jsonl")); err != nil {
		return nil, fmt.Errorf("reading the run record: %w", err)
	}
	for i := range rec.Events {
		switch rec.Events[i].Type {
		case exec.EventRunStart:
			rec.Start = &rec.Events[i]
		case exec.EventRunEnd:
			rec.End = &rec.Events[i]
		}
	}
	if rec.Start == nil {
		return nil, fmt.Errorf("the run record %s has no run-start event", rec.Dir)
	}
	return rec, nil
}

// NotCachedError is a stage of the plan the cache has no entry for: the
// run did not finish it.
type NotCachedError struct {
	Stage, Key, Store string
}

func (e *NotCachedError) Error() string {
	return fmt.Sprintf("stage %s (key %s) is not in the cache %s: the run did not finish it", e.Stage, e.Key, e.Store)
}

// RunOptions are what FromRun makes an artifact of: a run record, the
// plan made again as the run made it (with its key flags, offline), and
// the cache holding its outputs.
type RunOptions struct {
	Record     *Record
	Recipe     *config.Recipe
	RecipeFile string // the recipe's path here
	Plan       *plan.Plan
	// Resolved are the recipe's local files as resolution checked them.
	Resolved *resolve.Result
	// Flags are the run's key flags; Image the stage image by digest.
	Flags []string
	Image string
	Store *cas.Store
	// WithOutputs are the stages whose output files are carried, not
	// only their tree's digest.
	WithOutputs []string
	// WithModels carries the files of the local model directories the
	// run trained from (Resolved.Models), not only their tree digests.
	WithModels bool
	// Builder names ftc and its version, for the provenance.
	Builder string
	// Cache is the ftc cache's root ($FTC_CACHE): the run record names
	// paths under it, which are published as "$FTC_CACHE/...".
	Cache string
}

// FromRun collects the artifact of a run: per stage its key, output tree
// and final metrics from the cache (every stage must be there:
// NotCachedError), its metrics log, the recipe and the files it names,
// ftc.lock, the plan (PlanJSON) and the run record.
func FromRun(o RunOptions) (*Artifact, error) {
	p, store, rec := o.Plan, o.Store, o.Record
	carry := map[string]bool{}
	for _, n := range o.WithOutputs {
		carry[n] = true
	}
	idx := Index{Recipe: p.Recipe, Flags: o.Flags, Image: o.Image, Record: filepath.Base(rec.Dir),
		Started: rec.Start.Time.UTC().Format(time.RFC3339Nano)}
	if rec.End != nil {
		idx.Finished = rec.End.Time.UTC().Format(time.RFC3339Nano)
	}
	var files []File
	for _, s := range p.Stages {
		a, err := store.GetAction(string(s.Key))
		if errors.Is(err, cas.ErrNotFound) {
			return nil, &NotCachedError{Stage: s.Name, Key: s.Key.Short(), Store: store.Root()}
		} else if err != nil {
			return nil, err
		}
		idx.Stages = append(idx.Stages, Stage{Name: s.Name, Kind: string(s.Kind), Key: string(s.Key), Output: string(a.Outputs["output"]), Metrics: a.Summary})
		if out := a.Outputs["output"]; out != "" {
			files = append(files, File{Name: "ftc-run/outputs/" + s.Name + ".tree.json", Role: RoleOutputTree, Source: store.BlobPath(out)})
			if carry[s.Name] {
				t, err := store.ReadTree(out)
				if err != nil {
					return nil, err
				}
				for _, e := range t.Entries {
					files = append(files, File{Name: "ftc-run/outputs/" + s.Name + "/" + e.Path, Role: RoleOutput, Source: store.BlobPath(e.Digest)})
				}
			}
		}
		if m := treeFile(store, a.Outputs["logs"], "metrics.jsonl"); m != "" {
			files = append(files, File{Name: "ftc-run/metrics/" + s.Name + ".jsonl", Role: RoleMetrics, Source: m})
		}
	}

	r := o.Recipe
	rel, err := filepath.Rel(r.Dir, o.RecipeFile)
	if err != nil || !SafePath(filepath.ToSlash(rel)) {
		rel = filepath.Base(o.RecipeFile)
	}
	idx.RecipeFile = filepath.ToSlash(rel)
	files = append(files, File{Name: idx.RecipeFile, Role: RoleRecipe, Source: o.RecipeFile})
	for name, rf := range r.Files {
		files = append(files, File{Name: name, Role: RoleRecipeFile, Content: rf.Content})
	}
	if o.Resolved != nil {
		for name, abs := range o.Resolved.Files {
			files = append(files, File{Name: name, Role: RoleData, Source: abs})
		}
		for _, set := range o.Resolved.Sets {
			for name, abs := range set {
				files = append(files, File{Name: name, Role: RoleData, Source: abs})
			}
		}
		models, mfiles, err := localModels(r, o.Resolved.Models, o.WithModels)
		if err != nil {
			return nil, err
		}
		idx.Models = models
		files = append(files, mfiles...)
	}
	if lock := filepath.Join(r.Dir, resolve.LockFile); exists(lock) {
		files = append(files, File{Name: resolve.LockFile, Role: RoleLock, Source: lock})
	}
	planJSON, err := PlanJSON(p)
	if err != nil {
		return nil, err
	}
	files = append(files, File{Name: "ftc-run/plan.json", Role: RolePlan, Content: planJSON})
	// The run record is the one part written with this machine's paths
	// in it (a stage's command line, where it resumed from, a failure's
	// log): they are published relative to the folders they name.
	local := localPaths(r.Dir, o.Cache)
	events, err := os.ReadFile(filepath.Join(rec.Dir, "events.jsonl"))
	if err != nil {
		return nil, err
	}
	files = append(files, File{Name: "ftc-run/events.jsonl", Role: RoleEvents, Content: []byte(local.Replace(string(events)))})
	if rep, err := os.ReadFile(filepath.Join(rec.Dir, "report.html")); err == nil {
		files = append(files, File{Name: "ftc-run/report.html", Role: RoleReport, Content: []byte(local.Replace(string(rep)))})
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return &Artifact{Index: idx, Files: files, Builder: o.Builder}, nil
}

// localPaths rewrites this machine's folders in a run record's text as
// the names others know them by: the recipe's folder as $RECIPE_DIR, the
// cache as $FTC_CACHE, the home folder as $HOME (the longest first, so a
// cache under the home folder is $FTC_CACHE). A folder matches whole:
// followed by a slash or closing a JSON string. Names that HTML escapes
// (quotes, ampersands) are left in the report as they are.
func localPaths(recipeDir, cache string) *strings.Replacer {
	type pair struct{ dir, as string }
	var pairs []pair
	add := func(dir, as string) {
		if dir == "" || !filepath.IsAbs(dir) {
			return
		}
		if dir = filepath.Clean(dir); dir != string(filepath.Separator) {
			pairs = append(pairs, pair{dir, as})
		}
	}
	add(recipeDir, "$RECIPE_DIR")
	add(cache, "$FTC_CACHE")
	if home, err := os.UserHomeDir(); err == nil {
		add(home, "$HOME")
	}
	sort.SliceStable(pairs, func(i, j int) bool { return len(pairs[i].dir) > len(pairs[j].dir) })
	var args []string
	for _, p := range pairs {
		args = append(args, p.dir+"/", p.as+"/", `"`+p.dir+`"`, `"`+p.as+`"`)
	}
	return strings.NewReplacer(args...)
}

// Bytes is the size of the artifact's files.
func (a *Artifact) Bytes() int64 {
	var n int64
	for _, l := range a.Files {
		if l.Source != "" {
			if fi, err := os.Stat(l.Source); err == nil {
				n += fi.Size()
			}
		} else {
			n += int64(len(l.Content))
		}
	}
	return n
}

// PlanJSON is the plan as ftc plan --json prints it.
func PlanJSON(p *plan.Plan) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	err := enc.Encode(p)
	return b.Bytes(), err
}

// treeFile is the path in the store of the blob of file name in tree d
// ("" when there is none).
func treeFile(store *cas.Store, d cas.Digest, name string) string {
	if d == "" {
		return ""
	}
	t, err := store.ReadTree(d)
	if err != nil {
		return ""
	}
	for _, e := range t.Entries {
		if e.Path == name {
			return store.BlobPath(e.Digest)
		}
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return !errors.Is(err, fs.ErrNotExist)
}

// Open reads the artifact at ref (a registry) or, with layoutDir, in that
// OCI layout (ref then names it when the layout holds several), and
// fetches it into dir, every blob verified (Fetch). bytes, when not nil,
// is told of the bytes read.
func Open(ctx context.Context, ref, layoutDir, dir string, bytes func(int64)) (*Fetched, error) {
	var (
		img    v1.Image
		digest string
		err    error
	)
	if layoutDir != "" {
		img, digest, err = ReadLayout(layoutDir, ref)
	} else {
		img, digest, err = Pull(ctx, ref)
	}
	if err != nil {
		return nil, &OpenError{Err: err}
	}
	return Fetch(img, digest, dir, bytes)
}

// OpenError is an artifact that could not be found or read (before any
// of its files was fetched).
type OpenError struct{ Err error }

func (e *OpenError) Error() string { return e.Err.Error() }
func (e *OpenError) Unwrap() error { return e.Err }

// OutputTree is the published output tree of stage, nil when the
// artifact has none.
func (f *Fetched) OutputTree(stage string) *cas.Tree {
	for _, x := range f.ByRole(RoleOutputTree) {
		if x.Name != "ftc-run/outputs/"+stage+".tree.json" {
			continue
		}
		b, err := os.ReadFile(x.Source)
		if err != nil {
			return nil
		}
		var t cas.Tree
		if json.Unmarshal(b, &t) != nil {
			return nil
		}
		return &t
	}
	return nil
}

// CompareCarried checks the files of stage's output that the artifact
// carries (publish --with-output) against the published tree: every
// file, each with the tree's digest. ok is false when none is carried.
func (f *Fetched) CompareCarried(stage string) (Row, bool) {
	prefix := "ftc-run/outputs/" + stage + "/"
	have := map[string]string{}
	for _, x := range f.ByRole(RoleOutput) {
		if p, ok := strings.CutPrefix(x.Name, prefix); ok {
			have[p] = x.Digest
		}
	}
	if len(have) == 0 {
		return Row{}, false
	}
	r := Row{What: "files " + stage, Published: "(tree)", Here: fmt.Sprintf("%d file(s) carried", len(have)), Match: "yes"}
	t := f.OutputTree(stage)
	if t == nil {
		r.Match = "NO"
		r.Published = "(no tree)"
		return r, true
	}
	r.Published = fmt.Sprintf("%d file(s)", len(t.Entries))
	for _, e := range t.Entries {
		if have[e.Path] != string(e.Digest) {
			r.Match = "NO"
		}
	}
	if len(have) != len(t.Entries) {
		r.Match = "NO"
	}
	return r, true
}

// CompareRerun compares stage's output and final metrics, as the cache
// store holds them under key after a rerun, with the published ones
// (CompareOutput, exact for a CPU run; CompareMetrics within tol).
func (f *Fetched) CompareRerun(store *cas.Store, stage, key string, exact bool, tol float64) ([]Row, error) {
	var ps *Stage
	for i := range f.Index.Stages {
		if f.Index.Stages[i].Name == stage {
			ps = &f.Index.Stages[i]
		}
	}
	if ps == nil {
		return nil, fmt.Errorf("the published plan has no stage %q", stage)
	}
	a, err := store.GetAction(key)
	if err != nil {
		return nil, fmt.Errorf("stage %s is not in the cache after its rerun: %w", stage, err)
	}
	hereTree, _ := store.ReadTree(a.Outputs["output"])
	rows := CompareOutput(stage, ps.Output, string(a.Outputs["output"]), f.OutputTree(stage), hereTree, exact)
	return append(rows, CompareMetrics(stage, ps.Metrics, a.Summary, tol)...), nil
}

// KeyFlags are the flags that decided a run's keys, as the run record and
// Index.Flags hold them: --set V (repeated), --gpus N, --cpu.
type KeyFlags struct {
	Sets    []string
	GPUs    int
	GPUsSet bool
	CPU     bool
}

// Args are the flags as a run record holds them and ftc commands take
// them: each --set, then --gpus, then --cpu (ParseKeyFlags reads them).
func (k KeyFlags) Args() []string {
	var flags []string
	for _, s := range k.Sets {
		flags = append(flags, "--set", s)
	}
	if k.GPUsSet {
		flags = append(flags, "--gpus", strconv.Itoa(k.GPUs))
	}
	if k.CPU {
		flags = append(flags, "--cpu")
	}
	return flags
}

// ParseKeyFlags reads key flags as the run record writes them.
func ParseKeyFlags(flags []string) (KeyFlags, error) {
	var k KeyFlags
	for i := 0; i < len(flags); i++ {
		switch fl := flags[i]; fl {
		case "--cpu":
			k.CPU = true
		case "--set", "--gpus":
			if i+1 >= len(flags) {
				return k, fmt.Errorf("flag %s without a value", fl)
			}
			i++
			if fl == "--set" {
				k.Sets = append(k.Sets, flags[i])
				continue
			}
			n, err := strconv.Atoi(flags[i])
			if err != nil {
				return k, fmt.Errorf("--gpus %q: %v", flags[i], err)
			}
			k.GPUs, k.GPUsSet = n, true
		default:
			return k, fmt.Errorf("unknown key flag %q", fl)
		}
	}
	return k, nil
}

// CompareHere is the first rows of ftc reproduce: the artifact itself
// (every blob verified), each stage's key in the published plan and in p,
// the plan made here (CompareKeys), and the output files it carries
// (CompareCarried).
func (f *Fetched) CompareHere(p *plan.Plan) []Row {
	rows := []Row{{What: "artifact", Published: Short(f.Digest), Here: fmt.Sprintf("%d blobs verified", len(f.Files)+1), Match: "yes"}}
	here := map[string]string{}
	var order []string
	for _, s := range p.Stages {
		here[s.Name] = string(s.Key)
		order = append(order, s.Name)
	}
	rows = append(rows, CompareKeys(f.Index.Stages, here, order)...)
	for _, s := range f.Index.Stages {
		if r, ok := f.CompareCarried(s.Name); ok {
			rows = append(rows, r)
		}
	}
	return rows
}

// CompareImage is the row of the image the artifact names against the
// digest of the one rebuilt here ("" when it was not rebuilt).
func (f *Fetched) CompareImage(rebuilt string) Row {
	if rebuilt == "" {
		return Row{What: "image", Published: f.Index.Image, Here: "not rebuilt (--rebuild builds it here)", Match: "-"}
	}
	_, want, _ := strings.Cut(f.Index.Image, "@")
	return Row{What: "image (rebuilt)", Published: Short(want), Here: Short(rebuilt), Match: yesNo(want == rebuilt)}
}

// Target is where Publish puts an artifact: into the OCI layout Layout
// (made when absent) as Tag, else pushed to the registry reference Ref,
// with Bytes (when not nil) told of the bytes sent.
type Target struct {
	Layout, Tag, Ref string
	Bytes            func(int64)
}

// Published is an artifact Publish wrote: its manifest's digest and size.
type Published struct {
	Digest v1.Hash
	Size   int64
}

// Publish makes the artifact's image (Build) and writes or pushes it.
func Publish(ctx context.Context, a *Artifact, t Target) (*Published, error) {
	img, err := Build(*a)
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	size, _ := img.Size()
	if t.Layout != "" {
		if err := WriteLayout(t.Layout, t.Tag, img); err != nil {
			return nil, fmt.Errorf("writing the layout %s: %w", t.Layout, err)
		}
	} else if err := Push(ctx, t.Ref, img, t.Bytes); err != nil {
		return nil, fmt.Errorf("pushing to %s: %w", t.Ref, err)
	}
	return &Published{Digest: d, Size: size}, nil
}
