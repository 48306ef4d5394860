package publish

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ftc-dev/ftc/compiler/config"
)

// Model is a local model directory the run trained from (model: path):
// its path in the recipe's directory, its tree digest (config.TreeDigest,
// which keyed the stages that read it), its size, and whether the
// artifact carries its files (ftc publish --with-models). A base model
// may be large or not the publisher's to share, so by default only its
// digest is published and ftc reproduce is given a copy (--model).
type Model struct {
	Path    string `json:"path"`
	Tree    string `json:"tree"` // hex sha256
	Files   int    `json:"files"`
	Bytes   int64  `json:"bytes"`
	Carried bool   `json:"carried,omitempty"`
}

// MissingModelsError is a reproduction of a run that trained from local
// model directories the artifact does not carry and that were not given.
type MissingModelsError struct{ Models []Model }

func (e *MissingModelsError) Error() string {
	var b strings.Builder
	b.WriteString("the run trained from local model directories the artifact does not carry:")
	for _, m := range e.Models {
		fmt.Fprintf(&b, "\n  %s (%d file(s), %d bytes, tree sha256:%s)", m.Path, m.Files, m.Bytes, m.Tree)
	}
	return b.String()
}

// ModelMismatchError is a directory given for a local model whose files
// are not the ones the run trained from.
type ModelMismatchError struct {
	Path, Dir  string
	Want, Got  string
	Files      int
	WantFiles  int
	ListingErr error
}

func (e *ModelMismatchError) Error() string {
	if e.ListingErr != nil {
		return fmt.Sprintf("model %s: %s: %v", e.Path, e.Dir, e.ListingErr)
	}
	return fmt.Sprintf("model %s: %s holds %d file(s) of tree sha256:%s; the run trained from %d file(s) of tree sha256:%s",
		e.Path, e.Dir, e.Files, e.Got, e.WantFiles, e.Want)
}

// UnknownModelError is a directory given for a path the artifact names
// no local model at.
type UnknownModelError struct {
	Path  string
	Known []string
}

func (e *UnknownModelError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("%s: the published run trained from no local model directory", e.Path)
	}
	return fmt.Sprintf("%s: the published run's local models are %s", e.Path, strings.Join(e.Known, ", "))
}

// localModels lists the recipe's local model directories as resolution
// checked them (path → file relative to the directory → absolute path),
// with their tree digests, and adds their files to the artifact when
// carry is set.
func localModels(r *config.Recipe, resolved map[string]map[string]string, carry bool) ([]Model, []File, error) {
	paths := make([]string, 0, len(resolved))
	for p := range resolved {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var models []Model
	var files []File
	for _, p := range paths {
		m := Model{Path: p, Tree: r.ModelTrees[p].SHA256, Files: len(resolved[p]), Carried: carry}
		rels := make([]string, 0, len(resolved[p]))
		for rel := range resolved[p] {
			rels = append(rels, rel)
		}
		sort.Strings(rels)
		for _, rel := range rels {
			abs := resolved[p][rel]
			st, err := os.Stat(abs)
			if err != nil {
				return nil, nil, err
			}
			m.Bytes += st.Size()
			if carry {
				files = append(files, File{Name: p + "/" + rel, Role: RoleModel, Source: abs})
			}
		}
		models = append(models, m)
	}
	return models, files, nil
}

// placeModels puts a copy of each local model the artifact does not carry
// into the pulled recipe's directory, from the directory given for its
// path (given: recipe path → directory here), and checks its tree digest
// against the published one. Files are hard-linked where the
// filesystem allows (a model may be tens of gigabytes), else copied.
func placeModels(models []Model, recipeDir string, given map[string]string) error {
	known := map[string]bool{}
	var names []string
	for _, m := range models {
		known[m.Path] = true
		names = append(names, m.Path)
	}
	byPath := map[string]string{}
	for p, d := range given {
		clean := filepath.ToSlash(filepath.Clean(p))
		if !known[clean] {
			return &UnknownModelError{Path: p, Known: names}
		}
		byPath[clean] = d
	}
	var missing []Model
	for _, m := range models {
		dir, ok := byPath[m.Path]
		if m.Carried {
			if ok {
				return fmt.Errorf("model %s: the artifact carries it; leave out --model %s", m.Path, m.Path)
			}
			continue
		}
		if !ok {
			missing = append(missing, m)
			continue
		}
		if err := placeModel(m, dir, recipeDir); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return &MissingModelsError{Models: missing}
	}
	return nil
}

func placeModel(m Model, dir, recipeDir string) error {
	src := os.DirFS(dir)
	files, sum, err := config.TreeDigest(src, ".", func(rel string) (string, error) { return config.HashFile(src, rel) })
	if err != nil {
		return &ModelMismatchError{Path: m.Path, Dir: dir, ListingErr: err}
	}
	if sum != m.Tree {
		return &ModelMismatchError{Path: m.Path, Dir: dir, Want: m.Tree, Got: sum, Files: len(files), WantFiles: m.Files}
	}
	dst := filepath.Join(recipeDir, filepath.FromSlash(m.Path))
	for _, rel := range files {
		if !SafePath(rel) {
			return fmt.Errorf("model %s: %q is not a path inside %s", m.Path, rel, dir)
		}
		if err := linkOrCopy(filepath.Join(dir, filepath.FromSlash(rel)), filepath.Join(dst, filepath.FromSlash(rel))); err != nil {
			return fmt.Errorf("model %s: %w", m.Path, err)
		}
	}
	return nil
}

// hardLink is os.Link; a test makes it fail as across filesystems.
var hardLink = os.Link

// linkOrCopy makes dst hold src's bytes: a hard link to the file src
// resolves to (a Hub cache snapshot's files are symlinks), else a copy
// (another filesystem, or one without links). ftc run links a local
// model's files into each stage's inputs the same way.
func linkOrCopy(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	src, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	if err := hardLink(src, dst); err == nil {
		return nil
	} else if errors.Is(err, fs.ErrExist) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
