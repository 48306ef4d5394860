package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// A dataset's file.path names one file, a directory (every .jsonl or
// .parquet file under it, or those of its encoding), or a glob
// ("data/shards/*.jsonl", path.Match syntax, no "**"). Several files are
// one dataset: read in path order, pinned together by SetDigest.

// IsPattern reports whether a data path is a glob.
func IsPattern(p string) bool { return strings.ContainsAny(p, "*?[") }

// DataFiles returns the files a dataset's path names, sorted, and
// whether they are a set (a directory or a glob) rather than one file.
// fsys is the recipe's data view: a file outside the directory and its
// data roots is an error there.
func DataFiles(fsys fs.FS, p, encoding string) (files []string, set bool, err error) {
	if IsPattern(p) {
		if _, err := path.Match(p, ""); err != nil {
			return nil, true, fmt.Errorf("%q is not a valid glob: %w", p, err)
		}
		matches, err := fs.Glob(fsys, p)
		if err != nil {
			return nil, true, err
		}
		for _, m := range matches {
			if st, err := fs.Stat(fsys, m); err == nil && st.Mode().IsRegular() {
				files = append(files, m)
			} else if err != nil {
				return nil, true, err
			}
		}
		if len(files) == 0 {
			return nil, true, fmt.Errorf("%s matches no file", p)
		}
		sort.Strings(files)
		return files, true, nil
	}
	st, err := fs.Stat(fsys, p)
	if err != nil {
		return nil, false, err
	}
	if !st.IsDir() {
		return []string{p}, false, nil
	}
	files, err = walkFiles(fsys, p, func(f string) bool {
		// .json is left out: a Hub dataset's directory holds JSON
		// metadata (dataset_info.json) beside its data.
		enc := encodingOf(f)
		return enc != "" && path.Ext(f) != ".json" && (encoding == "" || enc == encoding)
	})
	if err != nil {
		return nil, true, err
	}
	if len(files) == 0 {
		what := ".jsonl or .parquet"
		if encoding != "" {
			what = "." + encoding
		}
		return nil, true, fmt.Errorf("%s is a directory with no %s files", p, what)
	}
	sort.Strings(files)
	return files, true, nil
}

// SetEncoding is the encoding of a set's files, or an error when their
// extensions disagree and no encoding is declared.
func SetEncoding(files []string, declared string) (string, error) {
	if declared != "" {
		return declared, nil
	}
	enc := ""
	for _, f := range files {
		e := encodingOf(f)
		if e == "" {
			return "", fmt.Errorf("cannot tell the encoding of %s from its extension", f)
		}
		if enc != "" && e != enc {
			return "", errors.New("its files are both JSON Lines and Parquet")
		}
		enc = e
	}
	return enc, nil
}

// SetDigest is the sha256 of several files: the sha256 of the lines
// `sha256sum` prints for them in path order ("HEX  PATH\n", paths relative
// to the recipe's directory), so
//
//	sha256sum data/shards/*.jsonl | sha256sum
//
// computes it by hand. sums[i] is the hex sha256 of files[i].
func SetDigest(files, sums []string) string {
	h := sha256.New()
	for i, f := range files {
		fmt.Fprintf(h, "%s  %s\n", sums[i], f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// PathDigest is the sha256 a dataset's file.path is pinned by: its
// file's, or SetDigest of its files. digest hashes one file by its path
// relative to the recipe.
func PathDigest(fsys fs.FS, p, encoding string, digest func(rel string) (string, error)) (string, error) {
	files, set, err := DataFiles(fsys, p, encoding)
	if err != nil {
		return "", err
	}
	sums := make([]string, len(files))
	for i, f := range files {
		if sums[i], err = digest(f); err != nil {
			return "", err
		}
	}
	if !set {
		return sums[0], nil
	}
	return SetDigest(files, sums), nil
}

// walkFiles lists the regular files under the directory p that keep
// accepts, sorted, skipping hidden files and directories (.git, .cache).
// Each is stat'ed through fsys, which refuses a symlink out of the
// recipe's directory and its data roots.
func walkFiles(fsys fs.FS, p string, keep func(f string) bool) ([]string, error) {
	var files []string
	err := fs.WalkDir(fsys, p, func(f string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if f != p && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") || !keep(f) {
			return nil
		}
		st, err := fs.Stat(fsys, f)
		if err != nil {
			return err
		}
		if st.Mode().IsRegular() {
			files = append(files, f)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// TreeFiles lists the files of a local model directory: every regular
// file under it but hidden ones, sorted. They are the tree TreeDigest
// hashes and the runtime hands the stage.
func TreeFiles(fsys fs.FS, p string) ([]string, error) {
	st, err := fs.Stat(fsys, p)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is a file, not a model directory", p)
	}
	files, err := walkFiles(fsys, p, func(string) bool { return true })
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("%s is an empty directory", p)
	}
	return files, err
}

// TreeDigest is the sha256 of a local model directory: SetDigest of its
// TreeFiles named relative to the directory, so that the same tree keys
// the same wherever it lies, and
//
//	cd models/my-7b && find . -type f ! -path '*/.*' | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum | sha256sum
//
// computes it by hand (no hidden directories). digest hashes one file by
// its path relative to the recipe.
func TreeDigest(fsys fs.FS, p string, digest func(rel string) (string, error)) (files []string, sum string, err error) {
	files, err = TreeFiles(fsys, p)
	if err != nil {
		return nil, "", err
	}
	names := make([]string, len(files))
	sums := make([]string, len(files))
	for i, f := range files {
		if sums[i], err = digest(f); err != nil {
			return nil, "", err
		}
		names[i] = strings.TrimPrefix(f, p+"/")
	}
	return files, SetDigest(names, sums), nil
}
