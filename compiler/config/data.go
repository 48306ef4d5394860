package config

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/ftc-dev/ftc/compiler/datacheck"
	"github.com/ftc-dev/ftc/compiler/diag"
)

// SampleFiles is how many files of a directory or glob vet samples.
const SampleFiles = 16

// checkData reads a sample of every local data file (compiler/datacheck)
// and reports rows that do not have the declared shape. A file that fails
// loses its size in DataBytes, so no estimate is made from it.
func (r *Recipe) checkData(files fs.FS) diag.List {
	var out diag.List
	for _, name := range r.SortedDatasetNames() {
		d := r.Datasets[name]
		if d.File == nil || d.Hub != nil || !fs.ValidPath(d.File.Path) {
			continue
		}
		paths := r.DataSets[d.File.Path]
		if paths == nil {
			if st, err := fs.Stat(files, d.File.Path); err != nil || st.IsDir() {
				continue // the recipe checks say why
			}
			paths = []string{d.File.Path}
		}
		enc := r.Encoding(d)
		if enc == "" {
			continue
		}
		// Each file of a set is sampled as a file of its own, the first
		// SampleFiles of them; rows add up, scaled by bytes for the rest.
		rows := Rows{Exact: true}
		bad, unknown := false, false
		var sampledBytes int64
		for i, f := range paths {
			if i == SampleFiles {
				if total := r.DataBytes[d.File.Path]; sampledBytes > 0 && total > 0 {
					rows.N = int64(float64(rows.N) * float64(total) / float64(sampledBytes))
				}
				rows.Exact = false
				break
			}
			if st, err := fs.Stat(files, f); err == nil {
				sampledBytes += st.Size()
			}
			l, sample := datacheck.CheckSample(files, datacheck.Dataset{
				Spec:     datacheck.Spec{Format: d.Format, Prompt: d.Prompt, Columns: d.Columns},
				Path:     "datasets." + name,
				File:     f,
				Abs:      filepath.Join(r.Dir, filepath.FromSlash(f)),
				Encoding: enc,
			}, r.Pos)
			out = append(out, l...)
			switch {
			case l.HasErrors():
				bad = true
			case sample.Rows == 0 || sample.Bytes == 0:
				unknown = true // Parquet: rows not read
			default:
				n := int64(sample.Rows)
				if !sample.Complete {
					if st, err := fs.Stat(files, f); err == nil && st.Size() > 0 {
						n = int64(float64(st.Size()) * float64(sample.Rows) / float64(sample.Bytes))
					}
				}
				rows.N += n
				rows.Exact = rows.Exact && sample.Complete
				rows.Desirable += int64(sample.Desirable)
				rows.Undesirable += int64(sample.Undesirable)
			}
		}
		if bad {
			delete(r.DataBytes, d.File.Path)
		} else if !unknown {
			r.DataRows[d.File.Path] = rows
		}
	}
	return out
}

// Encoding is a local dataset's encoding: declared, or implied by its
// file's extension (by its files' for a directory or a glob); "" when it
// cannot be told.
func (r *Recipe) Encoding(d Dataset) string {
	if d.File == nil {
		return ""
	}
	if set := r.DataSets[d.File.Path]; set != nil {
		enc, _ := SetEncoding(set, d.File.Encoding)
		return enc
	}
	return d.File.EncodingOrDefault()
}

// checkLabels refuses a kto stage on labelled rows (format
// "unpaired-preference") that are all of one label, where vet read every
// row of every source: KTO weighs desirable against undesirable answers,
// and trl would train on without the other kind (the entrypoint refuses
// it too, for data vet cannot read whole).
func (r *Recipe) checkLabels() diag.List {
	var out diag.List
	for _, name := range r.SortedStageNames() {
		st := r.Stages[name]
		if st.Method != "kto" || st.KTO == nil || st.KTO.UnpairPreferences {
			continue
		}
		var good, bad int64
		var names []string
		known := true
		for _, src := range st.Data.Sources() {
			d := src.Dataset
			if d.Format != "unpaired-preference" || d.File == nil || d.Hub != nil {
				known = false
				break
			}
			rows, ok := r.DataRows[d.File.Path]
			if !ok || !rows.Exact {
				known = false
				break
			}
			good += rows.Desirable
			bad += rows.Undesirable
			names = append(names, fmt.Sprintf("%q", d.Name))
		}
		if !known || good+bad == 0 || good > 0 && bad > 0 {
			continue
		}
		kind, other, label := "desirable", "undesirable", "false"
		if good == 0 {
			kind, other, label = "undesirable", "desirable", "true"
		}
		path := "stages." + name + ".data"
		if len(st.Data.Mix) == 0 {
			path += ".train"
		} else {
			path += ".mix"
		}
		of := "dataset " + names[0] + " holds"
		if len(names) > 1 {
			of = "datasets " + strings.Join(names, ", ") + " hold"
		}
		d := out.Errorf(r.Pos.At(path), path, "kto stage's %d training rows are all %s: %s no %s answer (label %s), and KTO weighs one kind against the other",
			good+bad, kind, of, other, label)
		if good > 0 {
			d.WithHint("add rows labelled false, or train on the desirable answers with method \"sft\" (format \"prompt-completion\")")
		} else {
			d.WithHint("add rows labelled true")
		}
	}
	return out
}
