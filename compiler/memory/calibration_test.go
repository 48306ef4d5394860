package memory

import (
	"math"
	"testing"
)

var qwen7B = Model{Layers: 28, Hidden: 3584, Intermediate: 18944, Heads: 28, KVHeads: 4, Vocab: 152064, Params: 7615616512, DType: "bf16"}

// TestCalibration compares the estimate with peak memory measured on one
// H200 (DESIGN.md §5): Qwen2.5-7B shape, random weights, LoRA r=8 on all
// linear layers, packed rows. Only the packed runs are used: the dynamic
// padding runs' token counts per batch were not recorded, so they cannot
// be compared. Each estimate must be within ±15%.
func TestCalibration(t *testing.T) {
	for _, c := range []struct {
		name          string
		tokens        int
		checkpointing bool
		measuredGiB   float64
	}{
		{"trl 1.9 SFTTrainer, packing 4096, checkpointing", 4096, true, 18.6},
		{"trl 1.9 SFTTrainer, packing 4096, no checkpointing", 4096, false, 49.9},
		{"hand-written loop, 2×4096 packed rows, no checkpointing", 8192, false, 90.6},
	} {
		b := Estimate(Input{
			Train: Training{Model: qwen7B, Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, Optimizer: "adamw",
				TokensPerMicroBatch: c.tokens, LogitsTokens: c.tokens, Checkpointing: c.checkpointing},
			Topology:    Topology{Strategy: "single", Processes: 1},
			CapacityGiB: 140.4,
		})
		ratio := b.TotalGiB() / c.measuredGiB
		t.Logf("%-58s measured %5.1f GiB, estimated %5.1f GiB (%+.1f%%)", c.name, c.measuredGiB, b.TotalGiB(), (ratio-1)*100)
		if math.Abs(ratio-1) > 0.15 {
			t.Errorf("%s: estimate %.1f GiB is %.0f%% off the measured %.1f GiB", c.name, b.TotalGiB(), (ratio-1)*100, c.measuredGiB)
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
	full := Training{Model: qwen7B, Adapter: "none", Optimizer: "adamw", TokensPerMicroBatch: 2048, LogitsTokens: 2048, Checkpointing: true}
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
