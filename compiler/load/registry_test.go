package load

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// A recipe whose directory's cue.mod declares a dependency, with
// CUE_REGISTRY pointing at a server here: loading it is refused, and no
// request reaches the registry (CUE's default would fetch the module).
func TestRecipeNeverFetchesAModule(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	t.Setenv("CUE_REGISTRY", strings.TrimPrefix(srv.URL, "http://")+"+insecure")

	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "cue.mod"), 0o755)
	os.WriteFile(filepath.Join(dir, "cue.mod", "module.cue"), []byte(`module: "example.com/mine@v0"
language: version: "v0.17.0"
deps: "example.com/dep@v0": v: "v0.1.0"
`), 0o644)
	recipe := filepath.Join(dir, "recipe.cue")
	os.WriteFile(recipe, []byte("package recipe\n\nimport \"example.com/dep@v0:dep\"\n\nx: dep.y\n"), 0o644)

	if _, err := Load(recipe, nil); err == nil || !strings.Contains(err.Error(), "not modules") {
		t.Fatalf("got %v, want the import refused", err)
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("loading the recipe sent %d request(s) to the registry", n)
	}
}
