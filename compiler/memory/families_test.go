package memory

import (
	"strings"
	"testing"
)

// Qwen3-30B-A3B's shape: 128 experts of width 768, 8 per token; heads
// 128 wide (not hidden / heads = 64).
var moe = Model{Layers: 48, Hidden: 2048, Intermediate: 6144, Heads: 32, KVHeads: 4, HeadDim: 128, Vocab: 151936,
	Params: 30532122624, DType: "bf16", Experts: 128, ExpertsPerToken: 8, ExpertWidth: 768}

// A mixture of experts holds every expert: the linear layers are the
// attention, all experts and the router, and the count computed from
// them is the model's (less embeddings and norms).
func TestMixtureOfExpertsCounts(t *testing.T) {
	attn := int64(2048*4096 + 2*2048*512 + 4096*2048)
	experts := int64(128 * 3 * 2048 * 768)
	router := int64(2048 * 128)
	if got, want := moe.LinearParams(nil), 48*(attn+experts+router); got != want {
		t.Errorf("linear params %d, want %d", got, want)
	}
	if got, want := moe.LinearParams([]string{"q_proj"}), int64(48*2048*4096); got != want {
		t.Errorf("q_proj params %d, want %d (heads × head_dim wide)", got, want)
	}
	// LoRA on every expert's down_proj: r × (768 + 2048) each.
	if got, want := moe.LoRAParams(8, []string{"down_proj"}), int64(48*128*8*(768+2048)); got != want {
		t.Errorf("LoRA params %d, want %d", got, want)
	}
	// A token passes through 8 experts: the MLP working set is 8 × 768
	// wide, not 128 × 768 nor the dense 6144.
	if got := moe.mlpWidth(); got != 8*768 {
		t.Errorf("MLP width %d", got)
	}
	// Phi-3's fused names are the sums of the unfused ones.
	phi := Model{Layers: 32, Hidden: 3072, Intermediate: 8192, Heads: 32, KVHeads: 32, Vocab: 32064, DType: "bf16"}
	if phi.LinearParams([]string{"qkv_proj", "gate_up_proj"}) != phi.LinearParams([]string{"q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"}) {
		t.Error("fused modules do not add up")
	}
}

// The rollout KV cache is GQA-wide (key/value heads, not heads) and a
// sliding-window layer keeps only its window.
func TestRolloutKVCache(t *testing.T) {
	gemma2 := Model{Layers: 26, Hidden: 2304, Intermediate: 9216, Heads: 8, KVHeads: 4, HeadDim: 256, Vocab: 256000,
		Params: 2614341888, DType: "bf16", SlidingWindow: 4096, SlidingLayers: 13}
	if got, want := KVTokens(gemma2, 8192), float64(13*8192+13*4096); got != want {
		t.Errorf("KV tokens %v, want %v", got, want)
	}
	if got := KVTokens(gemma2, 2048); got != 26*2048 {
		t.Errorf("within the window every layer holds all: %v", got)
	}
	in := Input{
		Train:       Training{Model: gemma2, Adapter: "lora", LoRARank: 8, Optimizer: "adamw", GradAccum: 1, TokensPerMicroBatch: 8192, LogitsTokens: 4096, Rows: 1, Loss: LossLogps},
		Topology:    Topology{Strategy: "single", Processes: 1},
		Rollout:     &Rollout{Sequences: 1, Length: 8192},
		CapacityGiB: 80,
	}
	b := Estimate(in)
	for _, p := range b.Parts {
		if p.Name != "rollout KV" {
			continue
		}
		// 2 (k, v) × 4 heads × 256 × 2 bytes × (13 × 8192 + 13 × 4096) tokens.
		if want := float64(2*4*256*2) * (13*8192 + 13*4096); p.Bytes != want {
			t.Errorf("rollout KV %v bytes, want %v", p.Bytes, want)
		}
		if !strings.Contains(p.Note, "13 of 26 layers windowed to 4096") {
			t.Errorf("note %q", p.Note)
		}
		return
	}
	t.Fatal("no rollout KV part")
}

// A mixture of experts costs the FLOPs of its active parameters.
func TestThroughputOfActiveParams(t *testing.T) {
	all := EstimateThroughput(30532122624, false, false, true, 1, 989)
	active := EstimateThroughput(3353032704, false, false, true, 1, 989)
	if active.TokensPerSecond < 9*all.TokensPerSecond {
		t.Errorf("active %v vs all %v tokens/s", active.TokensPerSecond, all.TokensPerSecond)
	}
}
