package hubtest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/arch"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/internal/hubtest"
)

// presets are the stdlib model presets with the size their model cards
// publish (parameters; for a mixture of experts also the active ones).
var presets = []struct {
	preset, repo string
	published    float64
	active       float64
}{
	{"Qwen25_05BInstruct", "Qwen/Qwen2.5-0.5B-Instruct", 0.49e9, 0},
	{"Qwen25_7BInstruct", "Qwen/Qwen2.5-7B-Instruct", 7.61e9, 0},
	{"Llama31_8BInstruct", "meta-llama/Llama-3.1-8B-Instruct", 8.03e9, 0},
	{"Llama31_70BInstruct", "meta-llama/Llama-3.1-70B-Instruct", 70.6e9, 0},
	{"Llama32_1BInstruct", "meta-llama/Llama-3.2-1B-Instruct", 1.24e9, 0},
	{"Llama32_3BInstruct", "meta-llama/Llama-3.2-3B-Instruct", 3.21e9, 0},
	{"Llama33_70BInstruct", "meta-llama/Llama-3.3-70B-Instruct", 70.6e9, 0},
	{"Qwen3_06BModel", "Qwen/Qwen3-0.6B", 0.6e9, 0},
	{"Qwen3_17BModel", "Qwen/Qwen3-1.7B", 1.72e9, 0}, // the card's "1.7B" (1.4B without the embedding)
	{"Qwen3_4BModel", "Qwen/Qwen3-4B", 4.02e9, 0},
	{"Qwen3_8BModel", "Qwen/Qwen3-8B", 8.2e9, 0},
	{"Qwen3_14BModel", "Qwen/Qwen3-14B", 14.8e9, 0},
	{"Qwen3_32BModel", "Qwen/Qwen3-32B", 32.8e9, 0},
	{"Qwen3_30B_A3BModel", "Qwen/Qwen3-30B-A3B", 30.5e9, 3.3e9},
	{"Qwen3_235B_A22BModel", "Qwen/Qwen3-235B-A22B", 235e9, 22e9},
	{"Mistral7BInstruct", "mistralai/Mistral-7B-Instruct-v0.3", 7.25e9, 0},
	{"MistralNemoInstruct", "mistralai/Mistral-Nemo-Instruct-2407", 12.2e9, 0},
	{"Gemma2_2BInstruct", "google/gemma-2-2b-it", 2.61e9, 0},
	{"Gemma2_9BInstruct", "google/gemma-2-9b-it", 9.24e9, 0},
	{"Gemma2_27BInstruct", "google/gemma-2-27b-it", 27.2e9, 0},
	{"Gemma3_1BInstruct", "google/gemma-3-1b-it", 1.0e9, 0},
	{"Phi35MiniInstruct", "microsoft/Phi-3.5-mini-instruct", 3.82e9, 0},
	{"Phi4Instruct", "microsoft/phi-4", 14.7e9, 0},
}

// TestPresets vets one stage per preset with the stand-in Hub's
// config.json facts in the lock: every preset's architecture agrees with
// its model's config.json (vet reports a contradiction fact by fact),
// and its parameter count, computed from the architecture, is within 1%
// of the published size (a mixture of experts' active count, which
// the cards round to two digits, within 2%).
func TestPresets(t *testing.T) {
	dir := t.TempDir()
	row := `{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "chat.jsonl"), []byte(row), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(row))
	var b strings.Builder
	fmt.Fprintf(&b, `package recipe

import (
	"ftc.dev/stdlib/gpus"
	"ftc.dev/stdlib/models"
	"ftc.dev/stdlib/profiles"
)

apiVersion: "ftc.dev/v1alpha1"
name:       "presets"
environment: profiles.Current2026
hardware: gpu: gpus.H100_80G
datasets: chat: {file: {path: "chat.jsonl", sha256: "%s"}, format: "messages"}
stages: {
`, hex.EncodeToString(sum[:]))
	facts := config.ModelFacts{}
	for i, p := range presets {
		fmt.Fprintf(&b, "\tp%d: {method: \"sft\", model: models.%s, data: train: datasets.chat, data: maxLength: 1024, training: epochs: 1}\n", i, p.preset)
		cfg, err := hubtest.Config(p.repo)
		if err != nil {
			t.Fatalf("%s: %v", p.repo, err)
		}
		f, err := arch.FromConfigJSON(cfg)
		if err != nil {
			t.Fatalf("%s: %v", p.repo, err)
		}
		for _, rev := range []string{"main", hubtest.Commit(p.repo)} {
			facts[config.HubRef{Kind: "model", Repo: p.repo, Revision: rev}] = config.ModelFact{At: p.repo + "@" + hubtest.Commit(p.repo), Facts: f}
		}
	}
	b.WriteString("}\n")
	file := filepath.Join(dir, "recipe.cue")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r, diags, _ := compiler.VetWith(file, nil, compiler.Options{Archs: facts})
	if r == nil {
		t.Fatalf("vet: %v", diags)
	}
	for _, d := range diags {
		if strings.Contains(d.Message, "contradicts") || strings.Contains(d.Message, "does not have") {
			t.Errorf("%s: %s", d.Path, d.Message)
		}
	}
	for i, p := range presets {
		m := r.Stages[fmt.Sprintf("p%d", i)].Model
		if m == nil || m.Repo != p.repo {
			t.Fatalf("%s: model %+v", p.preset, m)
		}
		cfg, _ := hubtest.Config(p.repo)
		f, _ := arch.FromConfigJSON(cfg)
		if m.Arch.Params != f.Params() {
			t.Errorf("%s: params %d, computed from config.json %d", p.preset, m.Arch.Params, f.Params())
		}
		if off := math.Abs(float64(m.Arch.Params)-p.published) / p.published; off > 0.01 {
			t.Errorf("%s: %d parameters, %.1f%% off the published %.3gB", p.preset, m.Arch.Params, 100*off, p.published/1e9)
		}
		if p.active > 0 {
			if off := math.Abs(float64(m.Arch.ActiveParams)-p.active) / p.active; off > 0.02 {
				t.Errorf("%s: %d active parameters, %.1f%% off the published %.3gB", p.preset, m.Arch.ActiveParams, 100*off, p.active/1e9)
			}
		}
		// The estimator sees the shapes: head width, experts, windows.
		st := r.Stages[fmt.Sprintf("p%d", i)]
		mm := r.MemoryInput(st, false).Train.Model
		if mm.HeadDim != f.HeadDim || mm.Experts != f.Experts || mm.ExpertsPerToken != f.ExpertsPerToken || mm.ExpertWidth != f.ExpertWidth || mm.SlidingWindow != f.SlidingWindow {
			t.Errorf("%s: the estimator's model %+v, config.json %+v", p.preset, mm, f)
		}
		fam, _ := arch.Lookup(f.ModelType)
		if want := fam.SlidingLayers(f.Layers, f.SlidingWindow); mm.SlidingLayers != want {
			t.Errorf("%s: %d sliding layers, want %d", p.preset, mm.SlidingLayers, want)
		}
		// On transformers 5 (Current2026) a mixture's experts are fused
		// parameters: "all-linear" LoRA is on the attention only.
		if f.Experts > 0 && strings.Join(r.MemoryInput(st, false).Train.Targets, ",") != "q_proj,k_proj,v_proj,o_proj" {
			t.Errorf("%s: LoRA estimated on %v", p.preset, r.MemoryInput(st, false).Train.Targets)
		}
		if f.Experts > 0 && (m.Arch.FLOPsParams() != f.ActiveParams() || m.Arch.FLOPsParams() >= m.Arch.Params) {
			t.Errorf("%s: FLOPs counted on %d parameters, active %d", p.preset, m.Arch.FLOPsParams(), f.ActiveParams())
		}
		if m.Arch.LinearModules == nil || m.Arch.DecoderLayer == "" || m.Arch.Tokenizer == "" {
			t.Errorf("%s: the family table did not fill %+v", p.preset, m.Arch)
		}
	}
}
