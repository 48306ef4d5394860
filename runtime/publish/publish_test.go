package publish

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/runtime/cas"
)

func testArtifact(t *testing.T) Artifact {
	data := filepath.Join(t.TempDir(), "train.jsonl")
	if err := os.WriteFile(data, []byte(`{"text": "hi"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Artifact{
		Index: Index{Recipe: "tiny", RecipeFile: "recipe.cue", Flags: []string{"--cpu"}, Image: "reg/img@sha256:" + strings.Repeat("a", 64),
			Stages: []Stage{{Name: "sft", Kind: "sft", Key: "sha256:" + strings.Repeat("1", 64), Output: "sha256:" + strings.Repeat("2", 64), Metrics: json.RawMessage(`{"loss":1.5}`)}}},
		Files: []File{
			{Name: "recipe.cue", Role: RoleRecipe, Content: []byte("name: \"tiny\"\n")},
			{Name: "data/train.jsonl", Role: RoleData, Source: data},
		},
		Builder: "test",
	}
}

// The same artifact gives the same manifest; written to a layout and
// fetched back, its files and index are what went in, and the provenance
// names the outputs as subjects and the inputs by sha256.
func TestBuildWriteFetch(t *testing.T) {
	a := testArtifact(t)
	img, err := Build(a)
	if err != nil {
		t.Fatal(err)
	}
	img2, _ := Build(testArtifact(t))
	d1, _ := img.Digest()
	d2, _ := img2.Digest()
	if d1 != d2 {
		t.Fatalf("two builds of one artifact: %s and %s", d1, d2)
	}
	lay := t.TempDir()
	if err := WriteLayout(lay, "tiny", img); err != nil {
		t.Fatal(err)
	}
	// Written again under the same name, it replaces itself.
	if err := WriteLayout(lay, "tiny", img); err != nil {
		t.Fatal(err)
	}
	got, digest, err := ReadLayout(lay, "")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	f, err := Fetch(got, digest, filepath.Join(t.TempDir(), "out"), func(k int64) { n += k })
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("Fetch counted no bytes")
	}
	if f.Index.Recipe != "tiny" || len(f.Files) != 3 || len(f.ByRole(RoleProvenance)) != 1 {
		t.Fatalf("fetched %+v", f)
	}
	b, _ := os.ReadFile(f.ByRole(RoleData)[0].Source)
	if string(b) != `{"text": "hi"}`+"\n" {
		t.Fatalf("data file %q", b)
	}
	var st statementV1
	b, _ = os.ReadFile(f.ByRole(RoleProvenance)[0].Source)
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != StatementType || st.PredicateType != PredicateType || len(st.Subject) != 1 || st.Subject[0].Digest["sha256"] != strings.Repeat("2", 64) {
		t.Fatalf("statement %s", b)
	}
	if n := len(st.Predicate.BuildDefinition.ResolvedDependencies); n != 3 { // recipe, data, image
		t.Fatalf("%d resolved dependencies: %s", n, b)
	}
}

// A changed byte of a data file in the layout is reported by its path,
// and nothing of it is left in the directory.
func TestFetchTampered(t *testing.T) {
	img, err := Build(testArtifact(t))
	if err != nil {
		t.Fatal(err)
	}
	lay := t.TempDir()
	if err := WriteLayout(lay, "tiny", img); err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	for _, l := range m.Layers {
		if l.Annotations[AnnotationTitle] == "data/train.jsonl" {
			p := filepath.Join(lay, "blobs", "sha256", l.Digest.Hex)
			os.Chmod(p, 0o644)
			if err := os.WriteFile(p, []byte(`{"text": "ho"}`+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, digest, err := ReadLayout(lay, "tiny")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	_, err = Fetch(got, digest, out, nil)
	if !IsTampered(err) || !strings.HasPrefix(err.Error(), "data/train.jsonl has sha256 ") {
		t.Fatalf("Fetch: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "data", "train.jsonl")); err == nil {
		t.Fatal("the tampered file was left in the directory")
	}
}

func TestSafePath(t *testing.T) {
	for p, want := range map[string]bool{"recipe.cue": true, "data/a.jsonl": true, "../x": false, "/etc/passwd": false, "a/../../b": false, "": false, "a//b": false, "..": false} {
		if SafePath(p) != want {
			t.Errorf("SafePath(%q) = %v", p, !want)
		}
	}
}

func TestCompareMetrics(t *testing.T) {
	rows := CompareMetrics("sft", json.RawMessage(`{"loss": 1.0, "train_runtime": 3, "acc": 0.5}`), json.RawMessage(`{"loss": 1.005, "train_runtime": 9}`), 0.01)
	want := []string{"NO", "yes", "- (timing)"} // acc missing; loss within 1%; runtime not compared
	for i, r := range rows {
		if r.Match != want[i] {
			t.Errorf("%s: %s, want %s", r.What, r.Match, want[i])
		}
	}
}

// A rerun's output is compared file by file: on a CPU run differing
// weights fail and other files are shown; a GPU run fails on nothing.
func TestCompareOutput(t *testing.T) {
	tree := func(w, s string) *cas.Tree {
		return &cas.Tree{Entries: []cas.TreeEntry{{Path: "model.safetensors", Digest: cas.Digest("sha256:" + strings.Repeat(w, 64))}, {Path: "trainer_state.json", Digest: cas.Digest("sha256:" + strings.Repeat(s, 64))}}}
	}
	failed := func(rows []Row) (n int) {
		for _, r := range rows {
			if r.Failed() {
				n++
			}
		}
		return n
	}
	if rows := CompareOutput("sft", "sha256:a", "sha256:a", nil, nil, true); len(rows) != 1 || rows[0].Match != "yes" {
		t.Errorf("same tree: %+v", rows)
	}
	if rows := CompareOutput("sft", "sha256:a", "sha256:b", tree("1", "2"), tree("1", "3"), true); failed(rows) != 0 || rows[1].Match != "differs (not weights)" {
		t.Errorf("metadata differs on CPU: %+v", rows)
	}
	if rows := CompareOutput("sft", "sha256:a", "sha256:b", tree("1", "2"), tree("4", "2"), true); failed(rows) != 2 { // the file and the weights row
		t.Errorf("weights differ on CPU: %+v", rows)
	}
	if rows := CompareOutput("sft", "sha256:a", "sha256:b", tree("1", "2"), tree("4", "3"), false); failed(rows) != 0 {
		t.Errorf("a GPU run: %+v", rows)
	}
	if rows := CompareOutput("sft", "sha256:a", "sha256:b", nil, tree("4", "3"), true); len(rows) != 1 || !rows[0].Failed() {
		t.Errorf("no published tree on CPU: %+v", rows)
	}
}
