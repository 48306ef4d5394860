package arch

import (
	"strings"
	"testing"
)

const llama8B = `{"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
	"num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": false,
	"max_position_embeddings": 131072, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}}`

func TestFromConfigJSON(t *testing.T) {
	f, err := FromConfigJSON([]byte(llama8B))
	if err != nil {
		t.Fatal(err)
	}
	want := Facts{ModelType: "llama", Layers: 32, Hidden: 4096, Intermediate: 14336, Heads: 32, KVHeads: 8, HeadDim: 128,
		Vocab: 128256, MaxPositions: 131072}
	if f != want {
		t.Fatalf("facts %+v, want %+v", f, want)
	}
	// Llama 3.1 8B's published size, to the parameter.
	if got := f.Params(); got != 8030261248 {
		t.Errorf("params %d, want 8030261248", got)
	}

	// A sliding window off (Qwen2.5) is none; a multimodal checkpoint gives its text model.
	f, err = FromConfigJSON([]byte(`{"model_type": "gemma3", "tie_word_embeddings": true, "text_config": {"model_type": "gemma3_text",
		"hidden_size": 2560, "intermediate_size": 10240, "num_attention_heads": 8, "num_hidden_layers": 34, "num_key_value_heads": 4,
		"head_dim": 256, "vocab_size": 262208, "max_position_embeddings": 131072, "sliding_window": 1024}}`))
	if err != nil || f.ModelType != "gemma3" || f.Layers != 34 || f.HeadDim != 256 || f.SlidingWindow != 1024 || !f.TiedEmbeddings {
		t.Errorf("text_config: %+v, %v", f, err)
	}
	f, err = FromConfigJSON([]byte(`{"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_attention_heads": 14,
		"num_hidden_layers": 24, "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768,
		"sliding_window": 32768, "use_sliding_window": false, "tie_word_embeddings": true}`))
	if err != nil || f.SlidingWindow != 0 || f.Params() != 494032768 {
		t.Errorf("qwen2: %+v (%d params), %v", f, f.Params(), err)
	}

	// Mixture of experts: all experts in the count, the chosen ones active.
	f, err = FromConfigJSON([]byte(`{"model_type": "qwen3_moe", "hidden_size": 2048, "intermediate_size": 6144, "moe_intermediate_size": 768,
		"num_attention_heads": 32, "num_hidden_layers": 48, "num_key_value_heads": 4, "head_dim": 128, "num_experts": 128,
		"num_experts_per_tok": 8, "vocab_size": 151936, "max_position_embeddings": 40960, "tie_word_embeddings": false}`))
	if err != nil || f.Experts != 128 || f.ExpertsPerToken != 8 || f.ExpertWidth != 768 {
		t.Fatalf("moe: %+v, %v", f, err)
	}
	if p, a := f.Params(), f.ActiveParams(); p < 30_400_000_000 || p > 30_600_000_000 || a < 3_300_000_000 || a > 3_400_000_000 {
		t.Errorf("moe: %d params, %d active", p, a)
	}

	for _, tc := range []struct{ in, want string }{
		{`{"hidden_size": 8}`, "no model_type"},
		{`{"model_type": "x", "hidden_size": 8}`, `config.json (model_type "x") lacks num_hidden_layers, num_attention_heads, vocab_size, max_position_embeddings, intermediate_size`},
		{`[1]`, "config.json: json"},
	} {
		if _, err := FromConfigJSON([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestLockWordsRoundTrip(t *testing.T) {
	f, _ := FromConfigJSON([]byte(llama8B))
	s := f.String()
	if !strings.HasPrefix(s, "model_type=llama layers=32 ") || !strings.HasSuffix(s, " params=8030261248") {
		t.Fatalf("words: %s", s)
	}
	back, err := Parse(strings.Fields(s))
	if err != nil || back != f {
		t.Fatalf("back: %+v, %v", back, err)
	}
	for _, bad := range []string{"layers=x", "colour=red", "model_type=llama"} {
		if _, err := Parse(strings.Fields(strings.Replace(s, "layers=32", bad, 1))); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestFamiliesWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range Families {
		if seen[f.ModelType] || f.DecoderLayer == "" || len(f.LinearModules) == 0 || f.Tokenizer == "" || f.MinTransformers == "" || f.Packing == "" {
			t.Errorf("%+v: incomplete or listed twice", f)
		}
		seen[f.ModelType] = true
	}
	if _, ok := Lookup("qwen3"); !ok || Known() == "" {
		t.Error("lookup")
	}
}

// Qwen3-MoE's experts and router are nn.Linear modules in transformers
// 4.x and fused parameters from 5.0: LoRA targets differ by version.
func TestLinearModulesAt(t *testing.T) {
	f, _ := Lookup("qwen3_moe")
	if got := strings.Join(f.LinearModulesAt("4.51.3"), ","); got != "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,gate" {
		t.Errorf("4.51.3: %s", got)
	}
	if got := strings.Join(f.LinearModulesAt("5.17.0"), ","); got != "q_proj,k_proj,v_proj,o_proj" {
		t.Errorf("5.17.0: %s", got)
	}
	if d, _ := Lookup("llama"); len(d.LinearModulesAt("5.17.0")) != 7 {
		t.Error("a dense family lost modules")
	}
}
