package config

import (
	"io/fs"
	"path/filepath"

	"github.com/ftc-dev/ftc/compiler/datacheck"
	"github.com/ftc-dev/ftc/compiler/diag"
)

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
		if st, err := fs.Stat(files, d.File.Path); err != nil || st.IsDir() {
			continue // the recipe checks say why
		}
		enc := d.File.EncodingOrDefault()
		if enc == "" {
			continue
		}
		l, sample := datacheck.CheckSample(files, datacheck.Dataset{
			Spec:     datacheck.Spec{Format: d.Format, Prompt: d.Prompt, Columns: d.Columns},
			Path:     "datasets." + name,
			File:     d.File.Path,
			Abs:      filepath.Join(r.Dir, filepath.FromSlash(d.File.Path)),
			Encoding: enc,
		}, r.Pos)
		if l.HasErrors() {
			delete(r.DataBytes, d.File.Path)
		} else if sample.Rows > 0 && sample.Bytes > 0 {
			rows := Rows{N: int64(sample.Rows), Exact: sample.Complete}
			if size := r.DataBytes[d.File.Path]; !sample.Complete && size > 0 {
				rows.N = int64(float64(size) * float64(sample.Rows) / float64(sample.Bytes))
			}
			r.DataRows[d.File.Path] = rows
		}
		out = append(out, l...)
	}
	return out
}
