package memory

import (
	"strings"
	"testing"
)

// llama70B is Llama 3.1 70B's architecture.
var llama70B = Model{Layers: 80, Hidden: 8192, Intermediate: 28672, Heads: 64, KVHeads: 8, Vocab: 128256, Params: 70553706496, DType: "bf16"}

// forward is an inference forward of rows padded to length.
func forward(m Model, rows, length int) Inference {
	return Inference{Model: m, Rows: rows, Tokens: rows * length, LogitsTokens: rows * length, RowLogitsTokens: length, CapacityGiB: 80}
}

func TestInferenceByHand(t *testing.T) {
	// tiny: weights 1000·2; forward 4·3 tokens × (3·2·16 + (2·2+4)·8 =
	// 160); logits 12·100·2 + 3·100·10; framework.
	b := EstimateInference(forward(tiny, 4, 3))
	want := 2000.0 + 12*160 + 2400 + 3000 + frameworkBytes
	if b.Total != want {
		t.Errorf("total %v, want %v:\n%s", b.Total, want, b)
	}
	if !b.Fits() || len(b.Unmodelled) > 0 {
		t.Errorf("a tiny model does not fit 80 GiB:\n%s", b)
	}
	if s := b.String(); strings.Contains(s, "max(rollout") {
		t.Errorf("an inference breakdown is a sum, not phases:\n%s", s)
	}
}

func TestInferenceGrows(t *testing.T) {
	base := EstimateInference(forward(qwen7B, 4, 1024)).Total
	for name, in := range map[string]Inference{
		"longer rows": forward(qwen7B, 4, 2048),
		"more rows":   forward(qwen7B, 8, 1024),
		"larger model": forward(Model{Layers: 48, Hidden: 5120, Intermediate: 13824, Heads: 40, KVHeads: 8, Vocab: 152064,
			Params: 14770033664, DType: "bf16"}, 4, 1024),
	} {
		if got := EstimateInference(in).Total; got <= base {
			t.Errorf("%s: %.2f GiB, not above %.2f GiB", name, got/GiB, base/GiB)
		}
	}
	gen := forward(qwen7B, 4, 1024)
	gen.Generate = &Rollout{Sequences: 4, Length: 1024 + 512}
	short := EstimateInference(gen)
	gen.Generate = &Rollout{Sequences: 4, Length: 1024 + 4096}
	long := EstimateInference(gen)
	kv := func(b Breakdown) float64 { return part(b, "generate KV") }
	// Qwen2.5-7B: 28 layers × 2 × 512 wide × 2 bytes per token and sequence.
	if want := 4.0 * 1536 * 28 * 2 * 512 * 2; kv(short) != want {
		t.Errorf("KV cache %v, want %v", kv(short), want)
	}
	if long.Total <= short.Total || kv(long) <= kv(short) {
		t.Errorf("more new tokens, no more memory: %.2f then %.2f GiB", short.Total/GiB, long.Total/GiB)
	}
	if len(long.Unmodelled) == 0 {
		t.Errorf("generation's working memory is not modelled, yet the estimate may say it fits")
	}
}

func TestInference70BOnOneGPU(t *testing.T) {
	b := EstimateInference(forward(llama70B, 2, 1024))
	if b.Fits() {
		t.Errorf("a 70B model in bf16 fits an 80 GB GPU:\n%s", b)
	}
	if w := part(b, "weights") / GiB; w < 130 || w > 132 {
		t.Errorf("70B weights %.1f GiB, want about 131.4", w)
	}
	b.CapacityGiB, b.Usable = 178, 178*GiB*Headroom
	if !b.Fits() {
		t.Errorf("a 70B model in bf16 does not fit 178 GiB:\n%s", b)
	}
}
