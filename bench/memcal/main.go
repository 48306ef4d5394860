// Command memcal prints ftc's per-GPU memory estimates for a fixed set of
// calibration configurations, as JSON (for bench/gpu/memory.py, which
// measures the same configurations on a GPU and prints both side by side)
// or as a table next to the measurements DESIGN.md §5 records.
//
//	go run ./bench/memcal            # table: estimates vs recorded measurements
//	go run ./bench/memcal -json      # the configurations with their estimates
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/ftc-dev/ftc/compiler/memory"
)

// Config is one calibration point: a model shape, a fine-tuning setup and
// a batch on one GPU. bench/gpu/memory.py reads these fields.
type Config struct {
	Name          string  `json:"name"`
	Shape         string  `json:"shape"` // "0.5B", "1.5B" or "7B": Qwen2.5 architecture
	Adapter       string  `json:"adapter"`
	LoRARank      int     `json:"loraRank"`
	LoRADropout   float64 `json:"loraDropout"`
	Checkpointing bool    `json:"checkpointing"`
	MicroBatch    int     `json:"microBatch"`
	// SeqLen is the longest row; with Padded the other rows are shorter
	// and padded to it (the Trainer's dynamic padding), with an attention
	// mask.
	SeqLen int  `json:"seqLen"`
	Padded bool `json:"padded,omitempty"`
	// Optimizer is torch AdamW's implementation: "fused" (what ftc runs)
	// or "foreach".
	Optimizer string `json:"optimizer"`
	// Loss is "plain" (transformers' own, full logits) or "chunked"
	// (ftc's chunked cross-entropy, speed.chunkedLoss, in chunks of
	// LossChunk tokens).
	Loss      string `json:"loss"`
	LossChunk int    `json:"lossChunk,omitempty"`
	// EstimateGiB is the estimate of what the caching allocator serves
	// (torch.cuda.max_memory_allocated): the total less the memory
	// outside it.
	EstimateGiB float64 `json:"estimateGiB"`
	// MeasuredGiB is a recorded measurement (0: none recorded yet).
	MeasuredGiB float64 `json:"measuredGiB,omitempty"`
	Source      string  `json:"source,omitempty"`
}

var shapes = map[string]memory.Model{
	"0.5B": {Layers: 24, Hidden: 896, Intermediate: 4864, Heads: 14, KVHeads: 2, Vocab: 151936, TiedEmbeddings: true, Params: 494032768, DType: "bf16"},
	"1.5B": {Layers: 28, Hidden: 1536, Intermediate: 8960, Heads: 12, KVHeads: 2, Vocab: 151936, TiedEmbeddings: true, Params: 1543714304, DType: "bf16"},
	"7B":   {Layers: 28, Hidden: 3584, Intermediate: 18944, Heads: 28, KVHeads: 4, Vocab: 152064, Params: 7615616512, DType: "bf16"},
}

// configs span model size, LoRA vs full, checkpointing, micro batch,
// sequence length, padding and the optimizer's implementation. The first
// three were measured on an H200 (DESIGN.md §5); the rest wait for
// bench/gpu/memory.py. Keep a third of them out of any fitting, to report
// the error on configurations the estimate was not adjusted to.
var configs = []Config{
	{Name: "7B LoRA r8, 1×4096, ckpt", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, Checkpointing: true, MicroBatch: 1, SeqLen: 4096, MeasuredGiB: 18.6, Source: "H200, trl 1.9 packing"},
	{Name: "7B LoRA r8, 1×4096", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, MicroBatch: 1, SeqLen: 4096, MeasuredGiB: 49.9, Source: "H200, trl 1.9 packing"},
	{Name: "7B LoRA r8, 2×4096", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, MicroBatch: 2, SeqLen: 4096, MeasuredGiB: 90.6, Source: "H200, hand-written loop"},
	{Name: "7B LoRA r8, 2×2048, ckpt", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, Checkpointing: true, MicroBatch: 2, SeqLen: 2048},
	{Name: "7B LoRA r16 p0, 1×2048", Shape: "7B", Adapter: "lora", LoRARank: 16, MicroBatch: 1, SeqLen: 2048},
	{Name: "1.5B LoRA r16, 4×2048", Shape: "1.5B", Adapter: "lora", LoRARank: 16, LoRADropout: 0.05, MicroBatch: 4, SeqLen: 2048},
	{Name: "1.5B full, 2×2048, ckpt", Shape: "1.5B", Adapter: "none", Checkpointing: true, MicroBatch: 2, SeqLen: 2048},
	{Name: "1.5B full, 2×2048, foreach", Shape: "1.5B", Adapter: "none", MicroBatch: 2, SeqLen: 2048, Optimizer: "foreach"},
	{Name: "0.5B LoRA r16, 4×2048", Shape: "0.5B", Adapter: "lora", LoRARank: 16, LoRADropout: 0.05, MicroBatch: 4, SeqLen: 2048},
	{Name: "0.5B LoRA r16, 4×2048, ckpt", Shape: "0.5B", Adapter: "lora", LoRARank: 16, LoRADropout: 0.05, Checkpointing: true, MicroBatch: 4, SeqLen: 2048},
	{Name: "0.5B full, 2×1024", Shape: "0.5B", Adapter: "none", MicroBatch: 2, SeqLen: 1024},
	{Name: "0.5B full, 8×1024, ckpt", Shape: "0.5B", Adapter: "none", Checkpointing: true, MicroBatch: 8, SeqLen: 1024},
	{Name: "0.5B full, 1×8192", Shape: "0.5B", Adapter: "none", MicroBatch: 1, SeqLen: 8192},
	{Name: "0.5B LoRA r16, 4×≤2048 padded", Shape: "0.5B", Adapter: "lora", LoRARank: 16, LoRADropout: 0.05, MicroBatch: 4, SeqLen: 2048, Padded: true},
	// ftc's chunked loss (its sft default), where the logits no longer
	// dominate.
	{Name: "7B LoRA r8, 1×4096, chunked", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, MicroBatch: 1, SeqLen: 4096, Loss: "chunked"},
	{Name: "7B LoRA r8, 1×4800, chunked", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, MicroBatch: 1, SeqLen: 4800, Loss: "chunked"},
	{Name: "7B LoRA r8, 4×1024, ckpt, chunked", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, Checkpointing: true, MicroBatch: 4, SeqLen: 1024, Loss: "chunked"},
	{Name: "7B LoRA r8 p0, 1×8192, ckpt, chunked", Shape: "7B", Adapter: "lora", LoRARank: 8, Checkpointing: true, MicroBatch: 1, SeqLen: 8192, Loss: "chunked"},
	{Name: "1.5B LoRA r8, 1×8192, chunked", Shape: "1.5B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, MicroBatch: 1, SeqLen: 8192, Loss: "chunked"},
	{Name: "1.5B full, 2×2048, chunked", Shape: "1.5B", Adapter: "none", MicroBatch: 2, SeqLen: 2048, Loss: "chunked"},
	{Name: "1.5B full, 4×2048, ckpt, chunked", Shape: "1.5B", Adapter: "none", Checkpointing: true, MicroBatch: 4, SeqLen: 2048, Loss: "chunked"},
	{Name: "0.5B full, 1×8192, chunked", Shape: "0.5B", Adapter: "none", MicroBatch: 1, SeqLen: 8192, Loss: "chunked"},
	{Name: "0.5B LoRA r16, 8×1024, ckpt, chunked", Shape: "0.5B", Adapter: "lora", LoRARank: 16, LoRADropout: 0.05, Checkpointing: true, MicroBatch: 8, SeqLen: 1024, Loss: "chunked"},
	{Name: "0.5B full, 4×2048, chunked", Shape: "0.5B", Adapter: "none", MicroBatch: 4, SeqLen: 2048, Loss: "chunked"},
}

// Estimate is the breakdown of one configuration, with the inputs the
// plan would give for the same stage.
func (c Config) Estimate() memory.Breakdown {
	tokens := c.MicroBatch * c.SeqLen
	tr := memory.Training{Model: shapes[c.Shape], Adapter: c.Adapter, LoRARank: c.LoRARank, LoRADropout: c.LoRADropout,
		Optimizer: "adamw", ForeachOptimizer: c.Optimizer == "foreach", GradAccum: 1,
		TokensPerMicroBatch: tokens, Rows: c.MicroBatch, Attention: "sdpa", LogitsTokens: tokens, Checkpointing: c.Checkpointing}
	if c.Loss == "chunked" {
		// As compiler/config does for speed.chunkedLoss.
		tr.Loss = memory.LossChunked
		tr.LogitsTokens = min(tokens, c.LossChunk)
	}
	if c.Padded && c.MicroBatch > 1 {
		// transformers 5 (the GPU machine's) builds a boolean 4-D mask.
		tr.MaskElements = int64(c.MicroBatch) * int64(c.SeqLen) * int64(c.SeqLen)
		tr.MaskElementBytes = 1
	}
	return memory.Estimate(memory.Input{Train: tr, Topology: memory.Topology{Strategy: "single", Processes: 1}, CapacityGiB: 140})
}

func main() {
	asJSON := flag.Bool("json", false, "print the configurations with estimates as JSON")
	flag.Parse()
	for i := range configs {
		c := &configs[i]
		if c.Optimizer == "" {
			c.Optimizer = "fused"
		}
		if c.Loss == "" {
			c.Loss = "plain"
		}
		if c.Loss == "chunked" && c.LossChunk == 0 {
			c.LossChunk = 4096 // stage.SpeedConfig's lossChunkTokens default
		}
		c.EstimateGiB = float64(int(c.Estimate().Allocated()/memory.GiB*10+0.5)) / 10
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(configs)
		return
	}
	fmt.Printf("%-30s %10s %10s %8s  %s\n", "configuration", "estimate", "measured", "error", "source")
	for _, c := range configs {
		if c.MeasuredGiB == 0 {
			fmt.Printf("%-30s %8.1f G %10s %8s  (run bench/gpu/memory.py on a GPU)\n", c.Name, c.EstimateGiB, "-", "-")
			continue
		}
		fmt.Printf("%-30s %8.1f G %8.1f G %+7.1f%%  %s\n", c.Name, c.EstimateGiB, c.MeasuredGiB, (c.EstimateGiB/c.MeasuredGiB-1)*100, c.Source)
	}
}
