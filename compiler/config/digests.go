package config

import (
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/ident"
)

// Digester returns the hex sha256 of the file at an absolute path. The
// compiler does not read files by path itself; the CLI passes one that
// remembers digests by file identity (runtime/resolve.Hasher), so an
// unchanged file costs a stat.
type Digester func(abs string) (string, error)

// CheckDigests compares every local data file with the sha256 the recipe
// pins, so a changed file is caught at vet rather than when `ftc run`
// resolves it. Files the recipe checks already refused (missing, a
// directory, a malformed pin) are skipped.
func CheckDigests(r *Recipe, files fs.FS, digest Digester) diag.List {
	var out diag.List
	for _, name := range r.SortedDatasetNames() {
		d := r.Datasets[name]
		if d.File == nil || d.Hub != nil || !ident.IsSHA256Hex(d.File.SHA256) {
			continue
		}
		if !fs.ValidPath(d.File.Path) {
			continue
		}
		set := r.DataSets[d.File.Path]
		if set == nil {
			if st, err := fs.Stat(files, d.File.Path); err != nil || !st.Mode().IsRegular() {
				continue
			}
		}
		path := "datasets." + name + ".file.sha256"
		sum, err := PathDigest(files, d.File.Path, d.File.Encoding, func(rel string) (string, error) {
			return digest(filepath.Join(r.Dir, filepath.FromSlash(rel)))
		})
		if err != nil {
			out.Errorf(r.Pos.At(path), path, "cannot hash %s: %v", d.File.Path, unwrapPathErr(err))
			continue
		}
		if sum != d.File.SHA256 {
			at := r.Pos.At(path)
			what := d.File.Path
			if set != nil {
				what = fmt.Sprintf("%s (%d files, sha256 of their sha256sum lines)", d.File.Path, len(set))
			}
			e := out.Errorf(at, path, "%s has sha256 %s, not the one pinned here", what, sum)
			if recipe := r.Pos.At(""); at.IsValid() && recipe.IsValid() && at.Filename() != recipe.Filename() {
				// Written in one of the recipe's packages: ftc pin rewrites
				// only the recipe file it is given.
				e.WithHint("if the data changed on purpose, write sha256: %q here (ftc pin rewrites only the recipe's own file)", sum)
			} else {
				e.WithHint("if the data changed on purpose, %s (or write sha256: %q)", diag.PinCommandHint(at), sum)
			}
		}
	}
	return out
}
