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
// a batch of packed rows on one GPU.
type Config struct {
	Name          string  `json:"name"`
	Shape         string  `json:"shape"` // "0.5B" or "7B": Qwen2.5 architecture
	Adapter       string  `json:"adapter"`
	LoRARank      int     `json:"loraRank"`
	LoRADropout   float64 `json:"loraDropout"`
	Checkpointing bool    `json:"checkpointing"`
	MicroBatch    int     `json:"microBatch"`
	SeqLen        int     `json:"seqLen"`
	EstimateGiB   float64 `json:"estimateGiB"`
	// MeasuredGiB is a recorded measurement (0: none recorded yet).
	MeasuredGiB float64 `json:"measuredGiB,omitempty"`
	Source      string  `json:"source,omitempty"`
}

var shapes = map[string]memory.Model{
	"0.5B": {Layers: 24, Hidden: 896, Intermediate: 4864, Heads: 14, KVHeads: 2, Vocab: 151936, TiedEmbeddings: true, Params: 494032768, DType: "bf16"},
	"7B":   {Layers: 28, Hidden: 3584, Intermediate: 18944, Heads: 28, KVHeads: 4, Vocab: 152064, Params: 7615616512, DType: "bf16"},
}

// configs span model size, LoRA vs full, checkpointing, micro batch and
// sequence length. The first three were measured on an H200 (DESIGN.md
// §5); the rest wait for bench/gpu/memory.py.
var configs = []Config{
	{Name: "7B LoRA r8, 1×4096, ckpt", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, Checkpointing: true, MicroBatch: 1, SeqLen: 4096, MeasuredGiB: 18.6, Source: "H200, trl 1.9 packing"},
	{Name: "7B LoRA r8, 1×4096", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, MicroBatch: 1, SeqLen: 4096, MeasuredGiB: 49.9, Source: "H200, trl 1.9 packing"},
	{Name: "7B LoRA r8, 2×4096", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, MicroBatch: 2, SeqLen: 4096, MeasuredGiB: 90.6, Source: "H200, hand-written loop"},
	{Name: "7B LoRA r8, 2×2048, ckpt", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, Checkpointing: true, MicroBatch: 2, SeqLen: 2048},
	{Name: "0.5B LoRA r16, 4×2048", Shape: "0.5B", Adapter: "lora", LoRARank: 16, LoRADropout: 0.05, MicroBatch: 4, SeqLen: 2048},
	{Name: "0.5B LoRA r16, 4×2048, ckpt", Shape: "0.5B", Adapter: "lora", LoRARank: 16, LoRADropout: 0.05, Checkpointing: true, MicroBatch: 4, SeqLen: 2048},
	{Name: "0.5B full, 2×1024", Shape: "0.5B", Adapter: "none", MicroBatch: 2, SeqLen: 1024},
	{Name: "0.5B full, 8×1024, ckpt", Shape: "0.5B", Adapter: "none", Checkpointing: true, MicroBatch: 8, SeqLen: 1024},
	{Name: "0.5B full, 1×8192", Shape: "0.5B", Adapter: "none", MicroBatch: 1, SeqLen: 8192},
}

func main() {
	asJSON := flag.Bool("json", false, "print the configurations with estimates as JSON")
	flag.Parse()
	for i := range configs {
		c := &configs[i]
		tokens := c.MicroBatch * c.SeqLen
		b := memory.Estimate(memory.Input{
			Train: memory.Training{Model: shapes[c.Shape], Adapter: c.Adapter, LoRARank: c.LoRARank, LoRADropout: c.LoRADropout,
				Optimizer: "adamw", TokensPerMicroBatch: tokens, LogitsTokens: tokens, Checkpointing: c.Checkpointing},
			Topology:    memory.Topology{Strategy: "single", Processes: 1},
			CapacityGiB: 140,
		})
		c.EstimateGiB = float64(int(b.TotalGiB()*10+0.5)) / 10
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
