package memory

import (
	"strings"
	"testing"
)

// tiny is a model small enough to compute every term by hand.
var tiny = Model{Layers: 2, Hidden: 8, Intermediate: 16, Heads: 2, KVHeads: 1, Vocab: 100, Params: 1000, DType: "bf16"}

func TestLayerSavedBytes(t *testing.T) {
	// Common to every case: two fp32 norm inputs 2·4·8 = 64; q, k, v,
	// SDPA output 4·2·8 = 64; logsumexp 4·2 heads = 8; SiLU input, its
	// output, up's output 3·2·16 = 96: 232.
	for _, c := range []struct {
		name string
		tr   Training
		want float64
	}{
		// + one input per site: 2·(8+8+8+16) = 80.
		{"full", Training{Model: tiny, Adapter: "none"}, 312},
		// + per adapted module its dropped copy and mask, 3 bytes × in
		// width: q,k,v 72, o 24, gate,up 48, down 48; + lora_A outputs
		// 2·4 per module: 56.
		{"LoRA r4, dropout", Training{Model: tiny, Adapter: "lora", LoRARank: 4, LoRADropout: 0.1}, 480},
		// + one input per site kept by lora_A: 80; + lora_A outputs 56.
		{"LoRA r4, no dropout", Training{Model: tiny, Adapter: "lora", LoRARank: 4}, 368},
		// + q's dropped copy and mask 24 and its lora_A output 8.
		{"LoRA r4 on q_proj, dropout", Training{Model: tiny, Adapter: "lora", LoRARank: 4, LoRADropout: 0.1, Targets: []string{"q_proj"}}, 264},
	} {
		if got := LayerSavedBytes(c.tr); got != c.want {
			t.Errorf("%s: %v bytes per token and layer, want %v", c.name, got, c.want)
		}
	}
	// q, k, v, output gradients 4·2·8 + gate, up, product 3·2·16 + fp32
	// dq accumulator 4·8.
	if got := LayerWorkBytes(tiny); got != 64+96+32 {
		t.Errorf("layer work: %v, want 192", got)
	}
}

func TestActivationBytes(t *testing.T) {
	full := Training{Model: tiny, Adapter: "none", TokensPerMicroBatch: 10, Rows: 2}
	// 2 layers × 10 tokens × 312 + final norm 10 × (4+2) × 8.
	if got := SavedActivationBytes(full); got != 6240+480 {
		t.Errorf("no checkpointing: %v, want 6720", got)
	}
	if got := LayerBackwardBytes(full); got != 1920 {
		t.Errorf("no checkpointing, layer backward: %v, want 1920", got)
	}
	ck := full
	ck.Checkpointing = true
	// Each layer's bf16 input 2 × 10 × 2 × 8, and the final norm.
	if got := SavedActivationBytes(ck); got != 320+480 {
		t.Errorf("checkpointing: %v, want 800", got)
	}
	// The recomputed layer and its gradients.
	if got := LayerBackwardBytes(ck); got != 3120+1920 {
		t.Errorf("checkpointing, layer backward: %v, want 5040", got)
	}
	eager := full
	eager.Attention = "eager"
	// 2 rows × 2 heads × 5 × 5 × (fp32 softmax + bf16 copy) per layer.
	if got := SavedActivationBytes(eager); got != 6720+2*600 {
		t.Errorf("eager: %v, want 7920", got)
	}
}

func TestLossBytes(t *testing.T) {
	for _, c := range []struct {
		name string
		tr   Training
		want float64
	}{
		{"plain", Training{Model: tiny, Adapter: "lora", LogitsTokens: 10}, 10 * 100 * 14},
		// 10 tokens in chunks of 4: a chunk's logits (4 × 8 bytes) with the
		// previous chunk's gradient (4 × 2) per vocabulary column, and the
		// saved gradient of the hidden states 10 × 8 × 2.
		{"chunked, LoRA", Training{Model: tiny, Adapter: "lora", TokensPerMicroBatch: 10, LogitsTokens: 4, Loss: LossChunked}, 4000 + 160},
		// + the LM head's fp32 gradient 100 × 8 × 4.
		{"chunked, full", Training{Model: tiny, Adapter: "none", TokensPerMicroBatch: 10, LogitsTokens: 4, Loss: LossChunked}, 4000 + 160 + 3200},
		// One chunk: nothing carried.
		{"chunked, one chunk", Training{Model: tiny, Adapter: "lora", TokensPerMicroBatch: 4, LogitsTokens: 4, Loss: LossChunked}, 3200 + 64},
		// A chunk and a remainder of 1: the first chunk's logits are the
		// peak (4 × 8 > 1 × 8 + 4 × 2).
		{"chunked, small remainder", Training{Model: tiny, Adapter: "lora", TokensPerMicroBatch: 5, LogitsTokens: 4, Loss: LossChunked}, 3200 + 80},
		{"log-probabilities", Training{Model: tiny, LogitsTokens: 10, Loss: LossLogps}, 10 * 100 * 8},
		{"score head", Training{Model: tiny, LogitsTokens: 10, Loss: LossNone}, 0},
	} {
		if got := LossBytes(c.tr); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// part returns the bytes of the named part.
func part(b Breakdown, name string) float64 {
	for _, p := range b.Parts {
		if p.Name == name {
			return p.Bytes
		}
	}
	return -1
}

func TestOptimizerAndPhases(t *testing.T) {
	tr := Training{Model: tiny, Adapter: "none", Optimizer: "adamw", GradAccum: 1, TokensPerMicroBatch: 10, Rows: 1, LogitsTokens: 10}
	in := Input{Train: tr, Topology: Topology{Strategy: "single", Processes: 1}, CapacityGiB: 80}
	b := Estimate(in)
	// bf16 weights 2, Adam's two bf16 moments 4, gradients 2 per
	// parameter; fused AdamW makes no temporary.
	if part(b, "weights") != 2000 || part(b, "optimizer") != 4000 || part(b, "gradients") != 2000 || part(b, "optimizer step") != 0 {
		t.Fatalf("full fine-tuning state:\n%s", b)
	}
	// held 6000 + framework; backward 6720 + the LM head's gradient
	// 100·8·2 + max(loss 14000, layer 1920) against step 2000.
	if part(b, "LM head grad") != 1600 {
		t.Errorf("LM head gradient: %v, want 1600", part(b, "LM head grad"))
	}
	if want := 6000 + frameworkBytes + 6720 + 1600 + 14000; b.Total != want {
		t.Errorf("total %v, want %v\n%s", b.Total, want, b)
	}
	in.Train.ForeachOptimizer = true
	if got := part(Estimate(in), "optimizer step"); got != 2000 {
		t.Errorf("foreach AdamW's sqrt temporary: %v, want 2000", got)
	}
	// With little activation memory the step is the peak: gradients and
	// the temporary.
	in.Train.TokensPerMicroBatch, in.Train.LogitsTokens = 0, 0
	if got, want := Estimate(in).Total, 6000+frameworkBytes+2000+2000; got != want {
		t.Errorf("step peak: %v, want %v", got, want)
	}
	// Accumulated gradients are held through the next forward.
	in.Train.GradAccum, in.Train.ForeachOptimizer = 4, false
	in.Train.TokensPerMicroBatch, in.Train.LogitsTokens = 10, 10
	if got, want := Estimate(in).Total, 6000+2000+frameworkBytes+6720+1600+14000; got != want {
		t.Errorf("accumulation: %v, want %v", got, want)
	}
	// LoRA: fp32 adapters, gradients and moments.
	lora := Input{Train: Training{Model: tiny, Adapter: "lora", LoRARank: 4, Optimizer: "adamw", GradAccum: 1}, Topology: Topology{Strategy: "single", Processes: 1}, CapacityGiB: 80}
	n := float64(tiny.LoRAParams(4, nil))
	lb := Estimate(lora)
	if part(lb, "trainable") != 4*n || part(lb, "gradients") != 4*n || part(lb, "optimizer") != 8*n {
		t.Errorf("LoRA state for %v parameters:\n%s", n, lb)
	}
}

func TestUnmodelledNeverFits(t *testing.T) {
	tr := Training{Model: tiny, Adapter: "none", Optimizer: "adamw", GradAccum: 1, TokensPerMicroBatch: 10, Rows: 1, LogitsTokens: 10}
	ok := Estimate(Input{Train: tr, Topology: Topology{Strategy: "ddp", Processes: 2}, CapacityGiB: 80})
	if v := ok.Verdict(false); v != "fits" {
		t.Errorf("DDP, LoRA-free, bf16: %q, want fits", v)
	}
	for _, c := range []struct {
		name string
		in   Input
		want string
	}{
		{"ZeRO-3", Input{Train: tr, Topology: Topology{Strategy: "zero3", Processes: 2}, CapacityGiB: 80}, "ZeRO-3 communication"},
		{"QLoRA", Input{Train: Training{Model: tiny, Adapter: "qlora", LoRARank: 4, Optimizer: "adamw"}, Topology: Topology{Strategy: "single", Processes: 1}, CapacityGiB: 80}, "bitsandbytes"},
		{"rollout", Input{Train: tr, Rollout: &Rollout{Sequences: 1, Length: 10}, Topology: Topology{Strategy: "single", Processes: 1}, CapacityGiB: 80}, "generation"},
	} {
		b := Estimate(c.in)
		if !b.Fits() {
			t.Fatalf("%s: a tiny model must fit 80 GiB", c.name)
		}
		if v := b.Verdict(false); !strings.HasPrefix(v, "may not fit (not modelled: ") || !strings.Contains(v, c.want) {
			t.Errorf("%s: verdict %q", c.name, v)
		}
	}
}
