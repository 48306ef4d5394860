package export

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/key"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/cas"
)

func storeWithTree(t *testing.T, files map[string]string) (*cas.Store, cas.Digest) {
	t.Helper()
	root := t.TempDir()
	st, err := cas.Open(filepath.Join(root, "cas"))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "src")
	for name, content := range files {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, _, err := st.PutTree(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st, d
}

func TestMaterializeLinksAndRefusesNonEmpty(t *testing.T) {
	files := map[string]string{"config.json": "{}", "model.safetensors": "weights", "README.md": "from the cache", "sub/x.txt": "x"}
	st, d := storeWithTree(t, files)
	dst := filepath.Join(t.TempDir(), "out")
	n, err := Materialize(st, d, dst, false)
	if err != nil || n != len(files) {
		t.Fatalf("Materialize: %d, %v", n, err)
	}
	for name, content := range files {
		b, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || string(b) != content {
			t.Errorf("%s: %q, %v", name, b, err)
		}
	}
	// A hard link where the file system allows (same temp file system).
	a, _ := os.Stat(filepath.Join(dst, "model.safetensors"))
	tr, _ := st.ReadTree(d)
	var blob string
	for _, e := range tr.Entries {
		if e.Path == "model.safetensors" {
			blob = st.BlobPath(e.Digest)
		}
	}
	b, _ := os.Stat(blob)
	if !os.SameFile(a, b) {
		t.Errorf("model.safetensors is a copy, not a hard link to the store's blob")
	}

	// The card replaces README.md without writing through the link.
	if err := WriteCard(dst, CardInfo{Plan: &plan.Plan{Recipe: "r"}, Stage: &plan.Stage{Name: "sft.export", Kind: "export", Config: plan.ExportConfig{Form: "merged", DType: "bf16"}}, Command: "ftc run r.cue"}); err != nil {
		t.Fatal(err)
	}
	if err := st.VerifyTree(d); err != nil {
		t.Fatalf("the store changed: %v", err)
	}

	// Non-empty: refused without --force, replaced with it.
	if _, err := Materialize(st, d, dst, false); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("non-empty dir: %v, want ErrNotEmpty", err)
	}
	os.WriteFile(filepath.Join(dst, "mine.txt"), []byte("keep"), 0o644)
	if _, err := Materialize(st, d, dst, true); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "mine.txt")); string(b) != "keep" {
		t.Errorf("--force removed a file the export does not write")
	}
	if err := st.VerifyTree(d); err != nil {
		t.Fatalf("the store changed: %v", err)
	}
}

func TestMaterializeRefusesTheStoreAndSymlinks(t *testing.T) {
	st, d := storeWithTree(t, map[string]string{"sub/x.txt": "x"})
	if _, err := Materialize(st, d, filepath.Join(st.Root(), "blobs", "out"), false); err == nil || !strings.Contains(err.Error(), "overlaps the cache") {
		t.Errorf("into the store: %v", err)
	}
	// A symlink to the store is resolved.
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(st.Root(), link)
	if _, err := Materialize(st, d, filepath.Join(link, "out"), false); err == nil || !strings.Contains(err.Error(), "overlaps the cache") {
		t.Errorf("through a symlink into the store: %v", err)
	}
	// A directory in DIR that is a symlink is not followed.
	dst := t.TempDir()
	os.Symlink(t.TempDir(), filepath.Join(dst, "sub"))
	if _, err := Materialize(st, d, dst, true); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("through a symlinked subdirectory: %v", err)
	}
	for _, bad := range []string{"../x", "/etc/passwd", "a/../../x", ""} {
		if _, err := inside(dst, bad); err == nil {
			t.Errorf("inside(%q) accepted", bad)
		}
	}
}

func TestCardSaysWhereItCameFrom(t *testing.T) {
	pin := "sha256:" + strings.Repeat("a", 64)
	p := &plan.Plan{Recipe: "demo", Environment: plan.Environment{Profile: "current-2026", Key: key.Key("sha256:" + strings.Repeat("e", 64))},
		Stages: []*plan.Stage{
			{Name: "sft.prepare", Kind: "prepare", Key: "sha256:" + key.Key(strings.Repeat("1", 64)), Inputs: []plan.Input{{Role: "dataset", Source: &plan.Source{Kind: "file", Ref: "data/chat.jsonl", Pin: pin}}}},
			{Name: "sft", Kind: "sft", Key: "sha256:" + key.Key(strings.Repeat("2", 64)), Inputs: []plan.Input{{Role: "train", Stage: "sft.prepare"}}},
			{Name: "other", Kind: "sft", Key: "sha256:" + key.Key(strings.Repeat("9", 64))},
		}}
	es := &plan.Stage{Name: "sft.export", Kind: "export", Key: "sha256:" + key.Key(strings.Repeat("3", 64)),
		Config: plan.ExportConfig{Form: "merged", DType: "bf16"},
		Inputs: []plan.Input{{Role: "model", Stage: "sft"}, {Role: "base", Source: &plan.Source{Kind: "hub-model", Ref: "Qwen/Qwen2.5-0.5B-Instruct", Pin: "7ae557604adf67be50417f59c2c2f167def9a775"}}}}
	p.Stages = append(p.Stages, es)
	card := Card(CardInfo{Plan: p, Stage: es, RecipeFile: "recipe.cue", RecipeSHA256: "sha256:" + strings.Repeat("4", 64),
		LockSHA256: "sha256:" + strings.Repeat("5", 64), Summaries: map[string]json.RawMessage{"sft": json.RawMessage(`{"train_loss": 1.25, "step": 8}`)},
		Command: "ftc run recipe.cue && ftc export recipe.cue out"})
	for _, want := range []string{
		"recipe sha256 | `sha256:4444", "ftc.lock sha256 | `sha256:5555", "`data/chat.jsonl` (file) `" + pin,
		"Qwen/Qwen2.5-0.5B-Instruct@7ae557604adf67be50417f59c2c2f167def9a775", "| sft | sft | `sha256:2222",
		"| sft.export | export | `sha256:3333", "| train_loss | 1.25 |", "image | `not built",
		"ftc run recipe.cue && ftc export recipe.cue out", "base_model: Qwen/Qwen2.5-0.5B-Instruct",
	} {
		if !strings.Contains(card, want) {
			t.Errorf("card lacks %q:\n%s", want, card)
		}
	}
	if strings.Contains(card, "other") {
		t.Errorf("card names a stage the export does not read:\n%s", card)
	}
	// A local model's path is no Hub id: no base_model in the metadata,
	// the directory and its tree digest in the provenance.
	es.Inputs[1].Source = &plan.Source{Kind: "local-model", Ref: "models/my-7b", Pin: pin, Pinned: true}
	local := Card(CardInfo{Plan: p, Stage: es, RecipeFile: "recipe.cue", RecipeSHA256: "sha256:" + strings.Repeat("4", 64)})
	if strings.Contains(local, "base_model:") || !strings.Contains(local, "| base model | `local directory models/my-7b@"+pin+"` |") {
		t.Errorf("card of a local model's export:\n%s", local)
	}
	es.Inputs[1].Source = &plan.Source{Kind: "hub-model", Ref: "Qwen/Qwen2.5-0.5B-Instruct", Pin: "7ae557604adf67be50417f59c2c2f167def9a775"}
	if card != Card(CardInfo{Plan: p, Stage: es, RecipeFile: "recipe.cue", RecipeSHA256: "sha256:" + strings.Repeat("4", 64),
		LockSHA256: "sha256:" + strings.Repeat("5", 64), Summaries: map[string]json.RawMessage{"sft": json.RawMessage(`{"train_loss": 1.25, "step": 8}`)},
		Command: "ftc run recipe.cue && ftc export recipe.cue out"}) {
		t.Errorf("the card is not a function of its inputs")
	}
}
