package compiler_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/key"
)

const localModelRecipe = `package recipe

import (
	"ftc.dev/stdlib/gpus"
	"ftc.dev/stdlib/profiles"
)

apiVersion: "ftc.dev/v1alpha1"
name:       "local-model"
environment: profiles.Pinned2025Q1
hardware: gpu: gpus.H100_80G
datasets: chat: {
	file: {path: "chat.jsonl", sha256: "a7aa437ed5ff3d9284313a0c594960c563614072ad57bdbe171bd19498abe734"}
	format: "messages"
}
stages: sft: {
	method: "sft"
	model: path: "MODEL"
	data: train: datasets.chat
	training: epochs: 1
	export: form: "merged"
}
`

const tinyConfig = `{"model_type": "qwen2", "num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000, "tie_word_embeddings": true, "max_position_embeddings": 2048}`

// localModelDir writes a recipe training the local model directory
// models/tiny (under the name model in the recipe) and returns the
// recipe's directory.
func localModelDir(t *testing.T, model string) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, s string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("recipe.cue", strings.Replace(localModelRecipe, "MODEL", model, 1))
	write("chat.jsonl", `{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}`+"\n")
	write("models/tiny/config.json", tinyConfig)
	write("models/tiny/model.safetensors", "weights v1")
	write("models/tiny/tokenizer.json", "{}")
	return dir
}

func localKeys(t *testing.T, dir string) map[string]key.Key {
	t.Helper()
	return keysOf(t, filepath.Join(dir, "recipe.cue"))
}

// A local model is keyed by its tree digest: a changed weight file
// changes the key of every stage that reads it (the tokenizer of prepare,
// the weights of sft, the base of export); a file outside the directory,
// or the directory's name, changes nothing.
func TestLocalModelKeyedByTree(t *testing.T) {
	dir := localModelDir(t, "models/tiny")
	first := localKeys(t, dir)
	if len(first) != 3 {
		t.Fatalf("want 3 stages (prepare, sft, export), got %v", first)
	}

	p, _, err := compiler.Plan(filepath.Join(dir, "recipe.cue"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Stages {
		for _, in := range s.Inputs {
			if in.Source != nil && in.Source.Kind == "local-model" {
				if in.Source.Ref != "models/tiny" || !strings.HasPrefix(in.Source.Pin, "sha256:") || !in.Source.Pinned {
					t.Errorf("stage %s input %s: source %+v", s.Name, in.Role, *in.Source)
				}
			}
			if in.Source != nil && in.Source.Kind == "hub-model" {
				t.Errorf("stage %s input %s is a Hub model: %+v", s.Name, in.Role, *in.Source)
			}
		}
	}

	// An unrelated file beside the recipe, outside the model directory.
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "models/other"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "models/other/model.safetensors"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, k := range localKeys(t, dir) {
		if first[name] != k {
			t.Errorf("stage %s: a file outside the model directory changed its key", name)
		}
	}

	// The same tree under another name keys the same.
	moved := localModelDir(t, "./weights/my-7b")
	if err := os.MkdirAll(filepath.Join(moved, "weights"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(moved, "models/tiny"), filepath.Join(moved, "weights/my-7b")); err != nil {
		t.Fatal(err)
	}
	for name, k := range localKeys(t, moved) {
		if first[name] != k {
			t.Errorf("stage %s: the model directory's name changed its key", name)
		}
	}

	// A changed weight file.
	if err := os.WriteFile(filepath.Join(dir, "models/tiny/model.safetensors"), []byte("weights v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := localKeys(t, dir)
	for name, k := range first {
		if changed[name] == k {
			t.Errorf("stage %s: a changed weight file left its key %s", name, k)
		}
	}
}
