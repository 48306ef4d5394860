package memory

// Efficiency is the share of a GPU's rated dense bf16 throughput that
// training reaches, calibrated on DESIGN.md §5: trl 1.9 SFT with packing
// on one H200 (rated 989 TFLOP/s) ran 5,803 tokens/s with checkpointing
// (6·N FLOPs per token: LoRA's forward, backward to inputs, and the
// recomputed forward) and 8,458 without (4·N): 26–27% of rated either way.
const Efficiency = 0.265

// PaddingEfficiency is the share of real tokens without packing: the same
// runs did 2,344 tokens/s unpacked against 5,803 packed.
const PaddingEfficiency = 0.40

// Throughput is a stage's estimated speed.
type Throughput struct {
	// TokensPerSecond counts real (non-pad) tokens over all GPUs.
	TokensPerSecond float64
	// FLOPsPerToken is what one token costs to train.
	FLOPsPerToken float64
}

// EstimateThroughput estimates training speed from FLOPs per token and
// the GPUs' rated throughput.
func EstimateThroughput(params int64, fullFineTune, checkpointing, packing bool, gpus int, tflops float64) Throughput {
	n := float64(params)
	// Forward 2N; backward to the inputs 2N; weight gradients another 2N
	// when every weight trains; checkpointing repeats the forward.
	f := 4 * n
	if fullFineTune {
		f = 6 * n
	}
	if checkpointing {
		f += 2 * n
	}
	tps := float64(gpus) * tflops * 1e12 * Efficiency / f
	if !packing {
		tps *= PaddingEfficiency
	}
	return Throughput{TokensPerSecond: tps, FLOPsPerToken: f}
}
