package arch

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"

	"github.com/ftc-dev/ftc/compiler/libknobs"
)

// Family is what ftc knows about one transformers model type.
type Family struct {
	// ModelType is config.json's model_type.
	ModelType string
	// DecoderLayer is the transformers class of one block, which FSDP
	// wraps.
	DecoderLayer string
	// LinearModules are the names of the linear layers LoRA can target:
	// attention, MLP, and for mixtures of experts the experts' and the
	// router's ("gate").
	LinearModules []string
	// Tokenizer names the tokenizer lineage: models that share it (and the
	// vocabulary size) share token ids.
	Tokenizer string
	// MinTransformers is the first transformers release that has the
	// model type (and reads its published configs: Llama 3.1's "llama3"
	// RoPE scaling came in 4.43).
	MinTransformers string
	// Packing says how packed rows get per-document attention: every
	// family here restarts position_ids at each document, which
	// flash_attention_2 (and transformers 5's sdpa masks) turn into
	// per-document attention.
	Packing string
	// QKVBias: the q, k and v projections have biases (Qwen2).
	QKVBias bool
	// QKNorm: RMSNorm on queries and keys, one head_dim vector each.
	QKNorm bool
	// NormsPerLayer is the RMSNorms of one block (2 unless the family
	// normalises before and after both attention and MLP, as Gemma 2/3).
	NormsPerLayer int
	// ExpertModules are the names in LinearModules that are nn.Linear
	// modules only before FusedExpertsSince: from that transformers
	// release the experts of a mixture are fused 3-D parameters and the
	// router is no nn.Linear either (transformers 5.17's
	// Qwen3MoeExperts and Qwen3MoeTopKRouter), so LoRA's target modules
	// are the attention projections.
	ExpertModules     []string
	FusedExpertsSince string
	// GlobalEvery, when a sliding window is set, makes every GlobalEvery-th
	// layer attend globally and the others within the window (Gemma 2
	// alternates, Gemma 3 has one global layer in six); 0: every layer
	// uses the window.
	GlobalEvery int
	// AttentionSoftcap: the model caps its attention scores with tanh
	// (Gemma 2's attn_logit_softcapping). PyTorch's sdpa has no such cap
	// and transformers' sdpa path drops it (4.48 and 5.x alike), so the
	// family does not train correctly on sdpa.
	AttentionSoftcap bool
}

// SlidingLayers is how many of a model's layers attend within its
// sliding window (none without one).
func (f Family) SlidingLayers(layers, window int) int {
	switch {
	case window <= 0:
		return 0
	case f.GlobalEvery > 0:
		return layers - layers/f.GlobalEvery
	}
	return layers
}

var (
	attnMLP    = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
	positionID = "position_ids restart per document (flash_attention_2; sdpa from transformers 5)"
)

// Families is the table, by model type.
var Families = []Family{
	{ModelType: "gemma2", DecoderLayer: "Gemma2DecoderLayer", LinearModules: attnMLP, Tokenizer: "gemma",
		MinTransformers: "4.42.0", Packing: positionID, NormsPerLayer: 4, GlobalEvery: 2, AttentionSoftcap: true},
	{ModelType: "gemma3_text", DecoderLayer: "Gemma3DecoderLayer", LinearModules: attnMLP, Tokenizer: "gemma3",
		MinTransformers: "4.50.0", Packing: positionID, QKNorm: true, NormsPerLayer: 4, GlobalEvery: 6},
	{ModelType: "llama", DecoderLayer: "LlamaDecoderLayer", LinearModules: attnMLP, Tokenizer: "llama",
		MinTransformers: "4.43.0", Packing: positionID},
	{ModelType: "mistral", DecoderLayer: "MistralDecoderLayer", LinearModules: attnMLP, Tokenizer: "mistral",
		MinTransformers: "4.34.0", Packing: positionID},
	{ModelType: "phi3", DecoderLayer: "Phi3DecoderLayer", LinearModules: []string{"qkv_proj", "o_proj", "gate_up_proj", "down_proj"},
		Tokenizer: "phi3", MinTransformers: "4.40.0", Packing: positionID},
	{ModelType: "qwen2", DecoderLayer: "Qwen2DecoderLayer", LinearModules: attnMLP, Tokenizer: "qwen2",
		MinTransformers: "4.37.0", Packing: positionID, QKVBias: true},
	{ModelType: "qwen3", DecoderLayer: "Qwen3DecoderLayer", LinearModules: attnMLP, Tokenizer: "qwen2",
		MinTransformers: "4.51.0", Packing: positionID, QKNorm: true},
	{ModelType: "qwen3_moe", DecoderLayer: "Qwen3MoeDecoderLayer", LinearModules: append(append([]string{}, attnMLP...), "gate"),
		Tokenizer: "qwen2", MinTransformers: "4.51.0", Packing: positionID, QKNorm: true,
		ExpertModules: []string{"gate_proj", "up_proj", "down_proj", "gate"}, FusedExpertsSince: "5.0.0"},
}

// LinearModulesAt are the linear module names LoRA can target on the
// given transformers release ("" for any).
func (f Family) LinearModulesAt(transformers string) []string {
	if f.FusedExpertsSince == "" || transformers == "" || libknobs.Compare(transformers, f.FusedExpertsSince) < 0 {
		return f.LinearModules
	}
	var out []string
	for _, m := range f.LinearModules {
		if !slices.Contains(f.ExpertModules, m) {
			out = append(out, m)
		}
	}
	return out
}

// Lookup finds a model type in the table.
func Lookup(modelType string) (Family, bool) {
	for _, f := range Families {
		if f.ModelType == modelType {
			return f, true
		}
	}
	return Family{}, false
}

// Known lists the model types of the table, sorted.
func Known() string {
	var n []string
	for _, f := range Families {
		n = append(n, f.ModelType)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// JSON is the table for the library tests
// (stdlib/python/libtests/families.json, written by internal/hubtest's
// golden test): for each family and each stock profile, what ftc claims
// that profile's transformers has (the decoder layer class, the linear
// module names) or that it lacks the model type; and the facts and
// parameter counts of the given config.json files (repo → facts), which
// the tests build on the meta device and count.
func JSON(configs map[string]Facts) []byte {
	type family struct {
		ModelType       string              `json:"model_type"`
		DecoderLayer    string              `json:"decoder_layer"`
		MinTransformers string              `json:"min_transformers"`
		LinearModules   map[string][]string `json:"linear_modules"` // by transformers version
	}
	type config struct {
		Repo      string `json:"repo"`
		ModelType string `json:"model_type"`
		Params    int64  `json:"params"`
	}
	doc := struct {
		Comment  string   `json:"comment"`
		Families []family `json:"families"`
		Configs  []config `json:"configs"`
	}{Comment: "Written by compiler/arch.JSON (FTC_UPDATE_GOLDEN=1 go test ./internal/hubtest); do not edit."}
	for _, f := range Families {
		fam := family{ModelType: f.ModelType, DecoderLayer: f.DecoderLayer, MinTransformers: f.MinTransformers, LinearModules: map[string][]string{}}
		for _, p := range libknobs.Stock {
			v := p.Versions["transformers"]
			if libknobs.Compare(v, f.MinTransformers) >= 0 {
				fam.LinearModules[v] = f.LinearModulesAt(v)
			}
		}
		doc.Families = append(doc.Families, fam)
	}
	var repos []string
	for r := range configs {
		repos = append(repos, r)
	}
	sort.Strings(repos)
	for _, r := range repos {
		doc.Configs = append(doc.Configs, config{Repo: r, ModelType: configs[r].ModelType, Params: configs[r].Params()})
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n')
}
