// Package hubtest is a stand-in for the Hugging Face Hub, for tests: it
// serves the two endpoints `ftc lock` and `ftc run` call (a revision's
// commit, and a model's config.json at a commit) for the models whose
// config.json files testdata/hub holds, the stdlib presets' among them.
//
// The Hub is out of reach where ftc is developed and tested, so those
// files were written from the published configs: the fields ftc reads
// (model_type, layer count, widths, heads, key/value heads, head_dim,
// vocabulary, tied embeddings, positions, sliding window, experts) are
// the models' own; Phi-3.5's 48 longrope factors, which ftc does not
// read, are placeholders (1.0) of the right length. transformers 4.48.2
// and 5.17.0 build every one of these configs (those families they
// have) with exactly the parameter count compiler/arch computes.
package hubtest

import (
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"sort"
	"strings"
	"sync"
)

//go:embed testdata/hub
var files embed.FS

// Pinned are the commits of the presets that pin one (stdlib/models);
// other repositories' commits are made up from their names.
var Pinned = map[string]string{
	"Qwen/Qwen2.5-0.5B-Instruct": "7ae557604adf67be50417f59c2c2f167def9a775",
	"Qwen/Qwen2.5-7B-Instruct":   "a09a35458c702b33eeacc393d103063234e8bc28",
}

// Commit is the commit the stand-in gives every revision of repo.
func Commit(repo string) string {
	if c, ok := Pinned[repo]; ok {
		return c
	}
	h := sha1.Sum([]byte("hubtest " + repo))
	return hex.EncodeToString(h[:])
}

// Config is the config.json the stand-in serves for repo.
func Config(repo string) ([]byte, error) {
	return files.ReadFile(path.Join("testdata/hub", repo, "config.json"))
}

// Repos lists the repositories the stand-in serves, sorted.
func Repos() []string {
	var out []string
	fs.WalkDir(files, "testdata/hub", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "config.json" {
			out = append(out, strings.TrimPrefix(path.Dir(p), "testdata/hub/"))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// Server is a running stand-in.
type Server struct {
	*httptest.Server
	mu    sync.Mutex
	calls []string
}

// Calls are the paths requested so far.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// New starts a stand-in; Close it when done.
//
//	GET /api/models/REPO/revision/REV  → {"sha": COMMIT}
//	GET /REPO/resolve/COMMIT/config.json
func New() *Server {
	s := &Server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls = append(s.calls, r.URL.Path)
		s.mu.Unlock()
		p := r.URL.Path
		if rest, ok := strings.CutPrefix(p, "/api/models/"); ok {
			repo, _, ok := strings.Cut(rest, "/revision/")
			if _, err := Config(repo); !ok || err != nil {
				http.Error(w, `{"error":"Repository not found"}`, http.StatusNotFound)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"sha": Commit(repo)})
			return
		}
		if strings.HasSuffix(p, "/config.json") {
			repo, commit, ok := strings.Cut(strings.TrimPrefix(strings.TrimSuffix(p, "/config.json"), "/"), "/resolve/")
			b, err := Config(repo)
			if !ok || err != nil || commit != Commit(repo) {
				http.Error(w, "Entry not found", http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))
	return s
}
