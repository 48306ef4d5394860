package memory

import (
	"math"
	"testing"
)

var qwen7B = Model{Layers: 28, Hidden: 3584, Intermediate: 18944, Heads: 28, KVHeads: 4, Vocab: 152064, Params: 7615616512, DType: "bf16"}

// TestCalibration compares the estimate with peak memory measured on one
// H200 (DESIGN.md §5): Qwen2.5-7B shape, random weights, LoRA r=8 on all
// linear layers, packed rows, the plain (non-chunked) loss. The dynamic
// padding runs are left out: their longest row per batch was not
// recorded, and the estimate needs it.
//
// The constants were not fitted to these points: every term is derived
// from how the libraries allocate (estimate.go), so the points check the
// derivation. What matters most is the direction: an estimate below the
// measured peak says "fits" for a run that runs out of memory, so it may
// be at most 3% below; above, it may be up to 30% high (the trl 1.9
// SFTTrainer runs need about 6 bytes per logit element where
// transformers' own loss, which ftc's entrypoints run, needs 12 to 14,
// see PlainLossBytes). The comparison is with what the caching allocator
// serves (torch.cuda.max_memory_allocated), so the memory outside it is
// left out.
func TestCalibration(t *testing.T) {
	for _, c := range []struct {
		name          string
		rows, length  int
		checkpointing bool
		measuredGiB   float64
	}{
		{"trl 1.9 SFTTrainer, packing 4096, checkpointing", 1, 4096, true, 18.6},
		{"trl 1.9 SFTTrainer, packing 4096, no checkpointing", 1, 4096, false, 49.9},
		{"hand-written loop, 2×4096 packed rows, no checkpointing", 2, 4096, false, 90.6},
	} {
		tokens := c.rows * c.length
		b := Estimate(Input{
			Train: Training{Model: qwen7B, Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, Optimizer: "adamw", GradAccum: 1,
				TokensPerMicroBatch: tokens, Rows: c.rows, Attention: "sdpa", LogitsTokens: tokens, Checkpointing: c.checkpointing},
			Topology:    Topology{Strategy: "single", Processes: 1},
			CapacityGiB: 140.4,
		})
		got := b.Allocated() / GiB
		ratio := got / c.measuredGiB
		t.Logf("%-58s measured %5.1f GiB, estimated %5.1f GiB (%+.1f%%)", c.name, c.measuredGiB, got, (ratio-1)*100)
		if ratio < 0.97 || ratio > 1.30 {
			t.Errorf("%s: estimate %.1f GiB is %+.0f%% off the measured %.1f GiB (allowed: -3%% to +30%%)", c.name, got, (ratio-1)*100, c.measuredGiB)
		}
		if len(b.Unmodelled) != 0 {
			t.Errorf("%s: a single-GPU LoRA run is modelled in full, but the estimate leaves out %v", c.name, b.Unmodelled)
		}
	}
}

// TestParameterCounts checks the arithmetic against the Qwen2.5 model
// cards' sizes (within 1%).
func TestParameterCounts(t *testing.T) {
	for _, c := range []struct {
		name      string
		m         Model
		published float64
	}{
		{"Qwen2.5-0.5B", Model{Layers: 24, Hidden: 896, Intermediate: 4864, Heads: 14, KVHeads: 2, Vocab: 151936, TiedEmbeddings: true}, 0.49e9},
		{"Qwen2.5-1.5B", Model{Layers: 28, Hidden: 1536, Intermediate: 8960, Heads: 12, KVHeads: 2, Vocab: 151936, TiedEmbeddings: true}, 1.54e9},
		{"Qwen2.5-3B", Model{Layers: 36, Hidden: 2048, Intermediate: 11008, Heads: 16, KVHeads: 2, Vocab: 151936, TiedEmbeddings: true}, 3.09e9},
		{"Qwen2.5-7B", Model{Layers: 28, Hidden: 3584, Intermediate: 18944, Heads: 28, KVHeads: 4, Vocab: 152064}, 7.61e9},
		{"Qwen2.5-14B", Model{Layers: 48, Hidden: 5120, Intermediate: 13824, Heads: 40, KVHeads: 8, Vocab: 152064}, 14.7e9},
	} {
		got := float64(c.m.CountParams())
		if math.Abs(got/c.published-1) > 0.01 {
			t.Errorf("%s: %d parameters, published %.3g", c.name, c.m.CountParams(), c.published)
		}
	}
	if got := qwen7B.CountParams(); got != 7615616512 {
		t.Errorf("Qwen2.5-7B: %d parameters, config gives 7615616512", got)
	}
	// LoRA r=8 on all linear layers of the 7B shape: 20.2M adapter
	// parameters.
	if got := qwen7B.LoRAParams(8, nil); got != 20185088 {
		t.Errorf("LoRA r=8 parameters: %d", got)
	}
}

func TestShardingDividesState(t *testing.T) {
	full := Training{Model: qwen7B, Adapter: "none", Optimizer: "adamw", GradAccum: 1, TokensPerMicroBatch: 2048, Rows: 1, LogitsTokens: 2048, Checkpointing: true}
	ddp := Estimate(Input{Train: full, Topology: Topology{Strategy: "ddp", Processes: 8}, CapacityGiB: 40})
	z3 := Estimate(Input{Train: full, Topology: Topology{Strategy: "zero3", Processes: 8}, CapacityGiB: 40})
	z3off := Estimate(Input{Train: full, Topology: Topology{Strategy: "zero3", Processes: 8, OffloadOptimizer: true, OffloadParams: true}, CapacityGiB: 40})
	if !(ddp.Total > z3.Total && z3.Total > z3off.Total) {
		t.Fatalf("sharding and offload must each reduce memory: ddp %.1f, zero3 %.1f, zero3+offload %.1f GiB", ddp.TotalGiB(), z3.TotalGiB(), z3off.TotalGiB())
	}
	if ddp.Fits() {
		t.Errorf("full fine-tuning of 7B with DDP on 40 GB cannot fit (%.1f GiB)", ddp.TotalGiB())
	}
	if !z3.Fits() {
		t.Errorf("full fine-tuning of 7B with ZeRO-3 over 8 × 40 GB fits (%.1f GiB)\n%s", z3.TotalGiB(), z3)
	}
}
