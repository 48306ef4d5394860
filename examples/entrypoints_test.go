package examples

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/plan"
)

// goldenEntrypoints stands in for the embedded entrypoints' digest in
// every golden of this package, so that an edit to the Python entrypoints
// does not rewrite every golden key. TestKeysHashTheEmbeddedEntrypoints
// is the one test that the real digest reaches the keys.
const goldenEntrypoints = "sha256:golden-entrypoints"

func TestMain(m *testing.M) {
	plan.PinEntrypointsDigestForGoldens(goldenEntrypoints)
	os.Exit(m.Run())
}

// Every kind of stage (prepare, training, export) hashes the entrypoints'
// digest: changing it changes every key. And nothing but tests pins it.
func TestKeysHashTheEmbeddedEntrypoints(t *testing.T) {
	defer plan.PinEntrypointsDigestForGoldens(goldenEntrypoints)
	kinds := map[string]string{}
	keys := func(digest string) map[string]string {
		plan.PinEntrypointsDigestForGoldens(digest)
		p, _, err := compiler.Plan(filepath.Join("sft-export", "recipe.cue"), nil)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, s := range p.Stages {
			m[s.Name] = string(s.Key)
			kinds[s.Name] = string(s.Kind)
		}
		return m
	}
	embedded, other := keys(plan.EntrypointsDigest()), keys("sha256:other")
	covered := map[string]bool{}
	for name, k := range embedded {
		if other[name] == k {
			t.Errorf("stage %s: the key does not change with the entrypoints' digest", name)
		}
		covered[kinds[name]] = true
	}
	if !covered["prepare"] || !covered["sft"] || !covered["export"] {
		t.Errorf("sft-export's stages %v do not cover prepare, training and export", kinds)
	}

	// Only tests may pin it: a pinned digest in ftc itself would make
	// keys lie about the code that ran.
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "PinEntrypointsDigestForGoldens(") && filepath.Base(path) != "entrypoints.go" {
			t.Errorf("%s pins the entrypoints' digest; only tests may", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
