package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"

	"github.com/ftc-dev/ftc/compiler/arch"
	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/recipefs"
)

// ModelTree is a local model directory (model: path: ...) as decoding
// read it, through the recipe's data view: its files, the tree digest
// that keys the stages using it, and the facts of its config.json.
type ModelTree struct {
	// Files are the directory's files relative to the recipe, sorted
	// (TreeFiles).
	Files []string
	// SHA256 is TreeDigest of the directory.
	SHA256 string
	// Facts are read from config.json in the directory.
	Facts arch.Facts
	// Err says why the directory could not be listed or hashed;
	// ConfigErr why its config.json could not be read.
	Err, ConfigErr error
}

// localModels lists every local model directory the recipe names.
func (r *Recipe) localModels() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range r.modelSites() {
		if p := s.m.Path; p != "" && s.m.Repo == "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// readModelTrees hashes each local model directory as a tree and reads
// its config.json, through data (the recipe's directory and its data
// roots). digest, when set, hashes a file by its absolute path (the CLI's
// memoizing hasher); otherwise the bytes are read through data.
func (r *Recipe) readModelTrees(data fs.FS, digest Digester) {
	r.ModelTrees = map[string]ModelTree{}
	for _, p := range r.localModels() {
		if !fs.ValidPath(p) {
			continue // resolveArchs says why
		}
		var t ModelTree
		t.Files, t.SHA256, t.Err = TreeDigest(data, p, func(rel string) (string, error) {
			if digest != nil {
				return digest(filepath.Join(r.Dir, filepath.FromSlash(rel)))
			}
			return HashFile(data, rel)
		})
		if t.Err == nil {
			b, err := fs.ReadFile(data, path.Join(p, "config.json"))
			if err == nil {
				t.Facts, err = arch.FromConfigJSON(b)
			}
			t.ConfigErr = err
		}
		r.ModelTrees[p] = t
	}
}

// HashFile is the hex sha256 of a file of fsys, as TreeDigest and
// SetDigest take it.
func HashFile(fsys fs.FS, name string) (string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkModelSources refuses a model that names both a Hub repo and a
// local path, or neither. Stage outputs carry their base's.
func (r *Recipe) checkModelSources(diags *diag.List) bool {
	ok := true
	for _, name := range sortedKeys(r.Stages) {
		st := r.Stages[name]
		base := "stages." + name
		sites := []modelSite{}
		for _, f := range []struct {
			field string
			m     *Model
		}{{"model", st.Model}, {"policy", st.Policy}, {"reference", st.Reference}, {"reward", st.Reward}, {"value", st.Value}} {
			if f.m != nil {
				sites = append(sites, modelSite{path: base + "." + f.field, m: f.m})
			}
		}
		for i := range st.Rewards {
			if m := st.Rewards[i].Model; m != nil {
				sites = append(sites, modelSite{path: fmt.Sprintf("%s.rewards.%d.model", base, i), m: m})
			}
		}
		for _, s := range sites {
			if s.m.From != nil {
				continue
			}
			switch {
			case s.m.Repo != "" && s.m.Path != "":
				ok = false
				diags.Errorf(r.Pos.At(s.path+".path"), s.path, "model has both repo %q and path %q", s.m.Repo, s.m.Path).
					WithHint("keep one: repo for a Hub model, path for a local model directory")
			case s.m.Repo == "" && s.m.Path == "":
				ok = false
				diags.Errorf(r.Pos.At(s.path), s.path, "model has neither repo nor path").
					WithHint("set repo: \"OWNER/NAME\" for a Hub model, path: \"models/NAME\" for a local model directory, or use a preset of \"ftc.dev/stdlib/models\"")
			case s.m.Path != "" && r.Pos.Has(s.path+".revision"):
				diags.Errorf(r.Pos.At(s.path+".revision"), s.path+".revision", "a local model has no revision: the digest of its directory's files pins it").
					WithHint("remove revision")
			}
		}
	}
	return ok
}

// localFact is the config.json fact of a local model directory, or false
// with an error said at the model (once per site, not for outputs).
func (r *Recipe) localFact(s modelSite, diags *diag.List) (ModelFact, bool) {
	m := s.m
	at := s.path + ".path"
	if !fs.ValidPath(m.Path) {
		if !s.derived {
			diags.Errorf(r.Pos.At(at), at, "%q must be a path inside the recipe's directory", m.Path).
				WithHint("use a slash-separated relative path without \"..\"")
		}
		return ModelFact{}, false
	}
	t := r.ModelTrees[m.Path]
	switch {
	case s.derived:
	case t.Err != nil:
		var esc *recipefs.EscapeError
		if errors.As(t.Err, &esc) {
			diags.Errorf(r.Pos.At(at), at, "%q %v", m.Path, esc).
				WithHint("if %s is a shared volume, declare it: dataRoots: [%q] in the recipe, or --data-root %s", esc.Root, esc.Root, esc.Root)
		} else {
			diags.Errorf(r.Pos.At(at), at, "cannot read the model directory %s: %v", m.Path, unwrapPathErr(t.Err))
		}
	case errors.Is(t.ConfigErr, fs.ErrNotExist):
		diags.Errorf(r.Pos.At(at), at, "model directory %s has no config.json, which gives its architecture and which transformers loads it by", m.Path).
			WithHint("save the model with save_pretrained (it writes config.json beside the weights), or copy the config.json of the model it was made from into %s", m.Path)
	case t.ConfigErr != nil:
		diags.Errorf(r.Pos.At(at), at, "cannot read %s/config.json: %v", m.Path, unwrapPathErr(t.ConfigErr))
	}
	if t.Err != nil || t.ConfigErr != nil {
		return ModelFact{}, false
	}
	return ModelFact{At: m.Path, Facts: t.Facts}, true
}
