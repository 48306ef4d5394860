package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"

	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/recipefs"
)

// Options are the parts of decoding that do not come from the recipe.
type Options struct {
	// DataRoots are directories, given on the command line, that data
	// files may reach through symlinks (absolute paths); they add to the
	// recipe's own dataRoots.
	DataRoots []string
	// Digest, when set, hashes local data files so their pins are checked
	// at vet; the CLI passes a memoizing hasher from runtime/resolve.
	Digest Digester
	// TreeDigest hashes the files of local model directories (model:
	// path); without it Digest does, and without either the files are
	// read through the recipe's directory.
	TreeDigest Digester
	// GPUs, when set, is the number of GPUs the recipe will run on
	// (--gpus): a valid recipe is rescaled to it (Recipe.Rescale) and
	// checked again as rescaled.
	GPUs int
	// CPU moves a valid recipe to CPUs (--cpu, Recipe.OnCPU), after GPUs.
	CPU bool
	// Archs are the models' config.json facts that ftc.lock holds: a
	// model written without arch takes its architecture from there, and
	// one written with it is checked against them.
	Archs ModelFacts
}

// Source is a recipe as the loader (compiler/load) hands it over: JSON is
// the bridge, so nothing past the loader holds a CUE value or links CUE's
// evaluator. CUE's exporter gives the concrete, defaulted value, and
// encoding/json's rules are the ones the types document.
type Source struct {
	// JSON is the recipe unified with the schema, defaults applied.
	JSON []byte
	// Dir is the recipe's directory and File the recipe file (absolute).
	Dir, File string
	// Pos maps recipe paths to where the user wrote them.
	Pos diag.Positions
}

// DataRooted is implemented by a recipe directory whose data files may
// resolve into declared data roots (recipefs.Dir). A plain fs.FS has no
// symlinks to follow and needs no roots.
type DataRooted interface {
	WithDataRoots(roots []string) fs.FS
}

// Decode turns a loaded recipe into Go values and runs every semantic
// check. files is the recipe's directory (a recipefs.Dir in the CLI);
// reward functions and chat templates are read from it and must stay
// inside it, data files may also resolve into a declared data root. The
// returned diagnostics hold warnings even when the recipe is valid; the
// error is non-nil when they hold errors.
func Decode(src Source, files fs.FS, opts Options) (*Recipe, diag.List, error) {
	b, err := cleanPaths(src.JSON)
	if err != nil {
		return nil, nil, fmt.Errorf("decoding recipe: %w", err)
	}
	var r Recipe
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, nil, fmt.Errorf("decoding recipe: %w", err)
	}
	if !r.Hardware.Strategy.Valid() {
		// The schema allows only the strategies; a Source made elsewhere
		// is checked here.
		return nil, nil, fmt.Errorf("decoding recipe: hardware.strategy %q is not single, ddp, fsdp, zero2 or zero3", r.Hardware.Strategy)
	}
	r.Dir = src.Dir
	r.Pos = src.Pos
	r.Files = map[string]File{}
	r.DataBytes = map[string]int64{}
	r.DataRows = map[string]Rows{}
	r.DataRoots = dataRoots(r.DataRoots, opts.DataRoots)
	data := files
	if dr, ok := files.(DataRooted); ok && len(r.DataRoots) > 0 {
		data = dr.WithDataRoots(r.DataRoots)
	}
	r.DataSets = map[string][]string{}
	for _, d := range r.Datasets {
		if d.File == nil || !fs.ValidPath(d.File.Path) {
			continue
		}
		files, set, err := DataFiles(data, d.File.Path, d.File.Encoding)
		if err != nil {
			continue // the recipe checks say why
		}
		if set {
			r.DataSets[d.File.Path] = files
		}
		var size int64
		for _, f := range files {
			if st, err := fs.Stat(data, f); err == nil {
				size += st.Size()
			}
		}
		r.DataBytes[d.File.Path] = size
	}

	tree := opts.TreeDigest
	if tree == nil {
		tree = opts.Digest
	}
	r.readModelTrees(data, tree)

	var diags diag.List
	for _, name := range sortedKeys(r.Stages) {
		st := r.Stages[name]
		base := "stages." + name
		if st.Base() != nil && st.Base().ChatTemplate != "" {
			r.readFile(files, st.Base().ChatTemplate, base+".model.chatTemplate", &diags)
		}
		for i, rw := range st.Rewards {
			if rw.Function != nil {
				r.readFile(files, rw.Function.File, fmt.Sprintf("%s.rewards.%d.function.file", base, i), &diags)
			}
		}
		if st.Eval != nil {
			for i, sc := range st.Eval.Scorers {
				r.readFile(files, sc.File, fmt.Sprintf("%s.eval.scorers.%d.file", base, i), &diags)
			}
		}
	}
	if !r.resolveArchs(src.File, opts.Archs, &diags) {
		// The checks need every model's architecture: the lock first.
		if !diags.HasErrors() {
			// Skipping every check without saying why would let a recipe
			// through unchecked (an eval stage's empty output once did).
			return nil, diags, fmt.Errorf("decoding recipe: a model has no architecture and no error says which (a bug in ftc)")
		}
		diags = diags.Sort()
		return &r, diags, diags.Err()
	}
	diags = append(diags, check(&r, files, data)...)
	diags = append(diags, r.checkData(data)...)
	diags = append(diags, r.checkLabels()...)
	diags = append(diags, r.checkCheckpoints()...)
	if opts.Digest != nil {
		diags = append(diags, CheckDigests(&r, data, opts.Digest)...)
	}
	diags = diags.Sort()
	if diags.HasErrors() || opts.GPUs == 0 && !opts.CPU {
		return &r, diags, diags.Err()
	}
	rr := &r
	if opts.GPUs != 0 {
		if rr, err = r.Rescale(opts.GPUs); err != nil {
			return nil, diags, err
		}
		if rr != &r {
			diags = append(diags, recheck(rr, opts.GPUs, files, data)...).Sort()
		}
	}
	if opts.CPU && !diags.HasErrors() {
		if rr, err = rr.OnCPU(); err != nil {
			return nil, diags, err
		}
	}
	return rr, diags, diags.Err()
}

// recheck runs the checks again on a rescaled recipe: those that depend
// on the topology (memory per GPU, GRPO generations, launcher CPUs...)
// may fail where the recipe as written passed, which had no errors. Each
// error says that --gpus brought it.
func recheck(rr *Recipe, gpus int, files, data fs.FS) diag.List {
	var out diag.List
	for _, d := range append(check(rr, files, data), rr.checkCheckpoints()...).Errors() {
		d.Message = fmt.Sprintf("with --gpus %d: %s", gpus, d.Message)
		out.Add(d)
	}
	return out
}

// dataRoots is the recipe's data roots and the command line's, cleaned,
// without duplicates, in order.
func dataRoots(lists ...[]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lists {
		for _, d := range l {
			d = filepath.Clean(d)
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	sort.Strings(out)
	return out
}

// cleanPaths normalises every recipe-relative path (dataset files, reward
// function files, chat templates) with path.Clean, so "./data/x.jsonl"
// and "data/x.jsonl" name the same file, in the plan and in every key. A
// path that still leaves the directory ("../x", "/x") is refused later.
// It works on the exported JSON because a dataset or model is copied into
// every stage that refers to it.
func cleanPaths(b []byte) ([]byte, error) {
	// Numbers stay as written: a passthrough value's kind (int or float)
	// is checked against the library's field.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var walk func(v any, parent string)
	walk = func(v any, parent string) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && s != "" && isRelPathField(parent, k) {
					v[k] = path.Clean(s)
					continue
				}
				walk(x, k)
			}
		case []any:
			for _, x := range v {
				walk(x, parent)
			}
		}
	}
	walk(v, "")
	return json.Marshal(v)
}

// isRelPathField reports whether key k of an object found under parent is
// one of the schema's #RelPath fields.
func isRelPathField(parent, k string) bool {
	switch {
	case k == "chatTemplate":
		return true
	case parent == "file" && k == "path": // datasets.*.file.path
		return true
	case parent == "function" && k == "file": // rewards[].function.file
		return true
	case parent == "scorers" && k == "file": // eval.scorers[].file
		return true
	case parent == "tensorboard" && k == "dir": // tracking.tensorboard.dir
		return true
	case k == "path" && modelFields[parent]: // a local model's directory
		return true
	}
	return false
}

// modelFields are the keys whose value is a #Model.
var modelFields = map[string]bool{"model": true, "policy": true, "reference": true, "reward": true, "value": true, "output": true}

// readFile reads a recipe-directory file once, refusing paths that leave
// the directory, through ".." or through a symlink: what it reads may end
// up in an image layer, so data roots never apply.
func (r *Recipe) readFile(files fs.FS, name, path string, diags *diag.List) {
	if _, ok := r.Files[name]; ok {
		return
	}
	if !fs.ValidPath(name) {
		diags.Errorf(r.Pos.At(path), path, "%q must be a path inside the recipe's directory", name).
			WithHint("use a slash-separated relative path without \"..\"")
		return
	}
	b, err := fs.ReadFile(files, name)
	if err != nil {
		var esc *recipefs.EscapeError
		if errors.As(err, &esc) {
			diags.Errorf(r.Pos.At(path), path, "%q %v", name, esc).
				WithHint("reward functions and chat templates enter the image, so they must be inside the recipe's directory even where a data root is declared: copy the file in")
			return
		}
		diags.Errorf(r.Pos.At(path), path, "cannot read %s: %v", name, unwrapPathErr(err))
		return
	}
	sum := sha256.Sum256(b)
	r.Files[name] = File{SHA256: hex.EncodeToString(sum[:]), Content: b}
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// UnmarshalJSON accepts "all-linear" or a list of module names.
func (t *Targets) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s != "all-linear" {
			return fmt.Errorf("targets: want \"all-linear\" or a list, got %q", s)
		}
		*t = Targets{AllLinear: true}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*t = Targets{Modules: l}
	return nil
}

// MarshalJSON writes the form UnmarshalJSON reads.
func (t Targets) MarshalJSON() ([]byte, error) {
	if t.AllLinear {
		return json.Marshal("all-linear")
	}
	return json.Marshal(t.Modules)
}

// sortedKeys returns a map's keys in order: checks and plans never depend
// on map iteration order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SortedStageNames returns the stage names in order.
func (r *Recipe) SortedStageNames() []string { return sortedKeys(r.Stages) }

// SortedDatasetNames returns the dataset names in order.
func (r *Recipe) SortedDatasetNames() []string { return sortedKeys(r.Datasets) }
