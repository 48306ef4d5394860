package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"

	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/load"
)

// Decode turns a loaded recipe into Go values and runs every semantic
// check. files is the recipe's directory (os.DirFS(inst.Dir) in the CLI);
// reward functions and chat templates are read from it. The returned
// diagnostics hold warnings even when the recipe is valid; the error is
// non-nil when they hold errors.
func Decode(inst *load.Instance, files fs.FS) (*Recipe, diag.List, error) {
	// JSON is the bridge: CUE's exporter gives the concrete, defaulted
	// value, and encoding/json's rules are the ones the types document.
	b, err := inst.Value.MarshalJSON()
	if err != nil {
		return nil, nil, fmt.Errorf("exporting recipe: %w", err)
	}
	var r Recipe
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, nil, fmt.Errorf("decoding recipe: %w", err)
	}
	r.Dir = inst.Dir
	r.Pos = inst.Pos
	r.Files = map[string]File{}
	r.DataBytes = map[string]int64{}
	for _, d := range r.Datasets {
		if d.File != nil && fs.ValidPath(d.File.Path) {
			if st, err := fs.Stat(files, d.File.Path); err == nil {
				r.DataBytes[d.File.Path] = st.Size()
			}
		}
	}

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
	}
	diags = append(diags, Check(&r, files)...)
	diags = append(diags, r.checkData(files)...)
	diags = diags.Sort()
	return &r, diags, diags.Err()
}

// readFile reads a recipe-directory file once, refusing paths that leave
// the directory: what it reads may end up in an image layer.
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
