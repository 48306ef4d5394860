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
}

// Source names where MeasuredGiB comes from.
const Source = "H200, bench/gpu/memory.py, 2026-11-30"

// HeldOut says whether configuration i is kept out of the fit: every
// third one, by position, fixed before the measurements were read.
func HeldOut(i int) bool { return i%3 == 2 }

var shapes = map[string]memory.Model{
	"0.5B": {Layers: 24, Hidden: 896, Intermediate: 4864, Heads: 14, KVHeads: 2, Vocab: 151936, TiedEmbeddings: true, Params: 494032768, DType: "bf16"},
	"1.5B": {Layers: 28, Hidden: 1536, Intermediate: 8960, Heads: 12, KVHeads: 2, Vocab: 151936, TiedEmbeddings: true, Params: 1543714304, DType: "bf16"},
	"7B":   {Layers: 28, Hidden: 3584, Intermediate: 18944, Heads: 28, KVHeads: 4, Vocab: 152064, Params: 7615616512, DType: "bf16"},
}

// configs span model size, LoRA vs full, checkpointing, micro batch,
// sequence length, padding, the optimizer's implementation and the loss.
// MeasuredGiB is bench/gpu/memory.py's torch.cuda.max_memory_allocated on
// one H200 (bench/gpu/results/2026-11-30-h200.json: torch 2.11,
// transformers 5.17, peft 0.21). Every third configuration is held out
// (HeldOut): the constants fitted to measurements (-fit) see only the
// others, and the held-out error is reported apart.
var configs = []Config{
	{Name: "7B LoRA r8, 1×4096, ckpt", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, Checkpointing: true, MicroBatch: 1, SeqLen: 4096, MeasuredGiB: 23.42},
	{Name: "7B LoRA r8, 1×4096", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, MicroBatch: 1, SeqLen: 4096, MeasuredGiB: 52.53},
	{Name: "7B LoRA r8, 2×4096", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, MicroBatch: 2, SeqLen: 4096, MeasuredGiB: 90.55},
	{Name: "7B LoRA r8, 2×2048, ckpt", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, Checkpointing: true, MicroBatch: 2, SeqLen: 2048, MeasuredGiB: 23.42},
	{Name: "7B LoRA r16 p0, 1×2048", Shape: "7B", Adapter: "lora", LoRARank: 16, MicroBatch: 1, SeqLen: 2048, MeasuredGiB: 31.65},
	{Name: "1.5B LoRA r16, 4×2048", Shape: "1.5B", Adapter: "lora", LoRARank: 16, LoRADropout: 0.05, MicroBatch: 4, SeqLen: 2048, MeasuredGiB: 46.72},
	{Name: "1.5B full, 2×2048, ckpt", Shape: "1.5B", Adapter: "none", Checkpointing: true, MicroBatch: 2, SeqLen: 2048, MeasuredGiB: 17.18},
	{Name: "1.5B full, 2×2048, foreach", Shape: "1.5B", Adapter: "none", MicroBatch: 2, SeqLen: 2048, Optimizer: "foreach", MeasuredGiB: 27.91},
	{Name: "0.5B LoRA r16, 4×2048", Shape: "0.5B", Adapter: "lora", LoRARank: 16, LoRADropout: 0.05, MicroBatch: 4, SeqLen: 2048, MeasuredGiB: 30.39},
	{Name: "0.5B LoRA r16, 4×2048, ckpt", Shape: "0.5B", Adapter: "lora", LoRARank: 16, LoRADropout: 0.05, Checkpointing: true, MicroBatch: 4, SeqLen: 2048, MeasuredGiB: 17.67},
	{Name: "0.5B full, 2×1024", Shape: "0.5B", Adapter: "none", MicroBatch: 2, SeqLen: 1024, MeasuredGiB: 9.52},
	{Name: "0.5B full, 8×1024, ckpt", Shape: "0.5B", Adapter: "none", Checkpointing: true, MicroBatch: 8, SeqLen: 1024, MeasuredGiB: 19.44},
	{Name: "0.5B full, 1×8192", Shape: "0.5B", Adapter: "none", MicroBatch: 1, SeqLen: 8192, MeasuredGiB: 29.62},
	{Name: "0.5B LoRA r16, 4×≤2048 padded", Shape: "0.5B", Adapter: "lora", LoRARank: 16, LoRADropout: 0.05, MicroBatch: 4, SeqLen: 2048, Padded: true, MeasuredGiB: 31.70},
	// ftc's chunked loss (its sft default), where the logits no longer
	// dominate.
	{Name: "7B LoRA r8, 1×4096, chunked", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, MicroBatch: 1, SeqLen: 4096, Loss: "chunked", MeasuredGiB: 49.13},
	{Name: "7B LoRA r8, 1×4800, chunked", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, MicroBatch: 1, SeqLen: 4800, Loss: "chunked", MeasuredGiB: 54.29},
	{Name: "7B LoRA r8, 4×1024, ckpt, chunked", Shape: "7B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, Checkpointing: true, MicroBatch: 4, SeqLen: 1024, Loss: "chunked", MeasuredGiB: 20.05},
	{Name: "7B LoRA r8 p0, 1×8192, ckpt, chunked", Shape: "7B", Adapter: "lora", LoRARank: 8, Checkpointing: true, MicroBatch: 1, SeqLen: 8192, Loss: "chunked", MeasuredGiB: 22.12},
	{Name: "1.5B LoRA r8, 1×8192, chunked", Shape: "1.5B", Adapter: "lora", LoRARank: 8, LoRADropout: 0.1, MicroBatch: 1, SeqLen: 8192, Loss: "chunked", MeasuredGiB: 36.22},
	{Name: "1.5B full, 2×2048, chunked", Shape: "1.5B", Adapter: "none", MicroBatch: 2, SeqLen: 2048, Loss: "chunked", MeasuredGiB: 25.32},
	{Name: "1.5B full, 4×2048, ckpt, chunked", Shape: "1.5B", Adapter: "none", Checkpointing: true, MicroBatch: 4, SeqLen: 2048, Loss: "chunked", MeasuredGiB: 16.15},
	{Name: "0.5B full, 1×8192, chunked", Shape: "0.5B", Adapter: "none", MicroBatch: 1, SeqLen: 8192, Loss: "chunked", MeasuredGiB: 19.72},
	{Name: "0.5B LoRA r16, 8×1024, ckpt, chunked", Shape: "0.5B", Adapter: "lora", LoRARank: 16, LoRADropout: 0.05, Checkpointing: true, MicroBatch: 8, SeqLen: 1024, Loss: "chunked", MeasuredGiB: 7.28},
	{Name: "0.5B full, 4×2048, chunked", Shape: "0.5B", Adapter: "none", MicroBatch: 4, SeqLen: 2048, Loss: "chunked", MeasuredGiB: 19.72},
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

// withDefaults fills the fields the table leaves out and each estimate.
func withDefaults(cs []Config) []Config {
	cs = append([]Config(nil), cs...)
	for i := range cs {
		c := &cs[i]
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
	return cs
}

// Error is the estimate's relative error against the measurement
// (negative: the estimate is below the peak, the dangerous side).
func (c Config) Error() float64 { return c.Estimate().Allocated()/(c.MeasuredGiB*memory.GiB) - 1 }

// Implied is the fit of the chunked loss's constants on the configurations
// not held out: for each chunked configuration whose loss phase is its
// peak, the bytes per logit element the measurement implies, given every
// other term of the estimate. One-chunk configurations give
// memory.ChunkedLossBytes; configurations of two or more full chunks give
// it plus memory.ChunkedCarryBytes.
type Implied struct {
	Name          string
	Chunks        int
	BytesPerLogit float64
}

func fitChunked(cs []Config) []Implied {
	var out []Implied
	for i, c := range cs {
		if HeldOut(i) || c.Loss != "chunked" || c.MeasuredGiB == 0 {
			continue
		}
		tokens := c.MicroBatch * c.SeqLen
		full, rest := tokens/c.LossChunk, tokens%c.LossChunk
		if full == 1 && rest > 0 || full == 0 {
			continue // a partial chunk: neither constant alone
		}
		b := c.Estimate()
		tr := memory.Training{Model: shapes[c.Shape], Adapter: c.Adapter, TokensPerMicroBatch: tokens, LogitsTokens: c.LossChunk, Loss: memory.LossChunked}
		loss := memory.LossBytes(tr)
		if loss < memory.LayerBackwardBytes(memory.Training{Model: shapes[c.Shape], TokensPerMicroBatch: tokens, Checkpointing: c.Checkpointing, Adapter: c.Adapter, LoRARank: c.LoRARank}) {
			continue // the layer phase, not the loss, is the peak
		}
		logits := memory.ChunkedPeakElements(tokens, c.LossChunk) * float64(shapes[c.Shape].Vocab)
		need := c.MeasuredGiB*memory.GiB - (b.Allocated() - logits)
		out = append(out, Implied{c.Name, full, need / (float64(c.LossChunk) * float64(shapes[c.Shape].Vocab))})
	}
	return out
}

func main() {
	asJSON := flag.Bool("json", false, "print the configurations with estimates as JSON")
	fit := flag.Bool("fit", false, "print what the measurements not held out imply for the chunked loss's constants")
	flag.Parse()
	cs := withDefaults(configs)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(cs)
		return
	}
	if *fit {
		fmt.Printf("fitted on the configurations not held out (ChunkedLossBytes %.1f, ChunkedCarryBytes %.1f now)\n", memory.ChunkedLossBytes, memory.ChunkedCarryBytes)
		for _, f := range fitChunked(cs) {
			fmt.Printf("%-40s %d chunk(s): %5.2f bytes per logit element\n", f.Name, f.Chunks, f.BytesPerLogit)
		}
		return
	}
	fmt.Printf("%-40s %9s %9s %8s  %s\n", "configuration", "estimate", "measured", "error", "set")
	var worst [2]float64
	for i, c := range cs {
		if c.MeasuredGiB == 0 {
			fmt.Printf("%-40s %7.1f G %9s %8s  (run bench/gpu/memory.py on a GPU)\n", c.Name, c.EstimateGiB, "-", "-")
			continue
		}
		set, k := "fit", 0
		if HeldOut(i) {
			set, k = "held out", 1
		}
		e := c.Error()
		worst[k] = min(worst[k], e)
		fmt.Printf("%-40s %7.1f G %7.2f G %+7.1f%%  %s\n", c.Name, c.EstimateGiB, c.MeasuredGiB, e*100, set)
	}
	fmt.Printf("\nmost below a measured peak: %+.1f%% (fit), %+.1f%% (held out); measured: %s\n", worst[0]*100, worst[1]*100, Source)
}
