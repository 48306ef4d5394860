package memory

import "fmt"

// Calibrated constants (see calibration_test.go for the measurements).
const (
	// hiddenActs and interActs are the activation values saved per token
	// and layer, in units of the hidden and intermediate widths, at 2
	// bytes each, for a block with SDPA attention (no score matrix kept),
	// an fp32 RMSNorm upcast, and LoRA on every linear layer.
	hiddenActs = 15.0
	interActs  = 4.0
	// loraDropoutHidden and loraDropoutInter are the extra copies LoRA
	// dropout keeps of each adapted layer's input.
	loraDropoutHidden = 6.0
	loraDropoutInter  = 1.0
	// logitBytes is what the logits cost per token and vocabulary entry
	// (bf16 logits and their gradient, loss computed in chunks).
	logitBytes = 2.0
	// frameworkBytes is the CUDA context, cuBLAS workspaces and kernels.
	frameworkBytes = 1.0 * GiB
)

// Estimate computes the per-GPU breakdown of a stage.
func Estimate(in Input) Breakdown {
	t := in.Topology
	world := float64(max(1, t.Processes))
	shardParams := t.Strategy == "zero3" || t.Strategy == "fsdp"
	shardGrads := shardParams || t.Strategy == "zero2"
	shardOptim := shardGrads
	var parts []Part

	m := in.Train.Model
	params := float64(m.Params)
	wbytes := DTypeBytes(m.DType)
	weights := params * wbytes
	note := m.DType
	if in.Train.Adapter == "qlora" {
		// Linear layers are stored in 4 bits (plus about 3% of quantization
		// constants with double quantization); embeddings and norms stay.
		lin := float64(m.LinearParams(nil))
		weights = lin*0.5*1.03 + (params-lin)*wbytes
		note = "4-bit linear layers"
	}
	trainable := params
	if in.Train.Adapter == "lora" || in.Train.Adapter == "qlora" {
		trainable = float64(m.LoRAParams(in.Train.LoRARank, in.Train.Targets))
	}
	frozenWeights := weights
	// Bytes per trainable parameter: its weight (when separate from the
	// frozen base), gradient, and optimizer state.
	var wT, gT, oT float64
	switch {
	case in.Train.Adapter != "none":
		// peft keeps adapters in fp32 (autocast_adapter_dtype).
		wT, gT = 4, 4
	case t.Strategy == "fsdp" || t.Strategy == "zero2" || t.Strategy == "zero3":
		// Mixed precision keeps fp32 master weights next to the bf16 ones.
		wT, gT = 4, DTypeBytes(m.DType)
	default:
		// Plain Trainer on a bf16 model: weights, grads and Adam state
		// all in the model dtype.
		wT, gT = 0, wbytes
		frozenWeights = weights
	}
	oT = optimizerBytes(in.Train.Optimizer, m.DType, in.Train.Adapter != "none" || wT == 4)
	if shardParams {
		frozenWeights /= world
		wT /= world
	}
	if t.OffloadParams && shardParams {
		frozenWeights, wT = 0, 0
	}
	if shardGrads {
		gT /= world
	}
	if shardOptim {
		oT /= world
	}
	if t.OffloadOptimizer {
		oT = 0
	}
	var buckets float64
	if t.Strategy == "ddp" && world > 1 {
		// DDP all-reduces through flat buckets holding a second copy of
		// the gradients.
		buckets = trainable * gT
	}
	parts = append(parts,
		Part{"weights", frozenWeights, note + shardNote(shardParams, t.OffloadParams, world)},
		Part{"DDP buckets", buckets, "a second copy of the gradients"},
		Part{"trainable", trainable * wT, fmt.Sprintf("%.3gM parameters", trainable/1e6)},
		Part{"gradients", trainable * gT, ""},
		Part{"optimizer", trainable * oT, optimNote(in.Train.Optimizer, t.OffloadOptimizer)},
	)

	act := activationBytes(in.Train)
	parts = append(parts, Part{"activations", act, actNote(in.Train)})
	parts = append(parts, Part{"logits", float64(in.Train.LogitsTokens) * float64(m.Vocab) * logitBytes, ""})
	if n := float64(in.Train.MaskTokens); n > 0 {
		parts = append(parts, Part{"attention mask", n * n * in.Train.MaskElementBytes,
			fmt.Sprintf("dense %d × %d for per-document attention", in.Train.MaskTokens, in.Train.MaskTokens)})
	}

	if v := in.Value; v != nil {
		vw := float64(v.Model.Params) * DTypeBytes(v.Model.DType)
		vp := float64(v.Model.Params) * (DTypeBytes(v.Model.DType) + optimizerBytes(v.Optimizer, v.Model.DType, false))
		if shardParams {
			vw /= world
		}
		if shardOptim {
			vp /= world
		}
		parts = append(parts, Part{"value model", vw + vp + activationBytes(*v), "trained in full"})
	}
	for _, f := range in.Frozen {
		if f.Shared {
			continue
		}
		fb := float64(f.Model.Params) * DTypeBytes(f.Model.DType)
		if shardParams {
			fb /= world
		}
		// Inference keeps one layer's activations and the logits.
		fb += float64(f.Tokens) * float64(f.Model.Hidden) * 2 * hiddenActs
		fb += float64(f.LogitsTokens) * float64(f.Model.Vocab) * logitBytes
		parts = append(parts, Part{f.Role, fb, "frozen"})
	}
	if r := in.Rollout; r != nil {
		kv := float64(r.Sequences) * float64(r.Length) * 2 * float64(m.Layers) * float64(m.kvDim()) * DTypeBytes(m.DType)
		parts = append(parts, Part{"rollout KV", kv, fmt.Sprintf("%d sequences × %d tokens", r.Sequences, r.Length)})
	}
	parts = append(parts, Part{"framework", frameworkBytes, "CUDA context, workspaces"})

	b := Breakdown{Parts: parts, CapacityGiB: in.CapacityGiB}
	for _, p := range parts {
		b.Total += p.Bytes
	}
	b.Usable = in.CapacityGiB * GiB * Headroom
	return b
}

// optimizerBytes is the optimizer state per trainable parameter.
func optimizerBytes(opt, dtype string, fp32Params bool) float64 {
	state := DTypeBytes(dtype)
	if fp32Params {
		state = 4
	}
	switch opt {
	case "adamw-8bit", "paged-adamw-8bit":
		return 2 // two 8-bit moments
	case "sgd":
		return 0 // no momentum by default
	default:
		return 2 * state // two Adam moments in the parameters' dtype
	}
}

// activationBytes is what the backward pass needs kept from the forward.
func activationBytes(t Training) float64 {
	m := t.Model
	h, i := float64(m.Hidden), float64(m.Intermediate)
	perLayer := hiddenActs*h + interActs*i
	if t.Adapter != "none" && t.LoRADropout > 0 {
		perLayer += loraDropoutHidden*h + loraDropoutInter*i
	}
	perLayer *= 2 // bf16 values
	tokens := float64(t.TokensPerMicroBatch)
	if t.Checkpointing {
		// Each block's input is kept; one block is recomputed at a time.
		return tokens * (float64(m.Layers)*h*2 + perLayer)
	}
	return tokens * float64(m.Layers) * perLayer
}

func shardNote(sharded, offload bool, world float64) string {
	switch {
	case offload:
		return ", offloaded to CPU"
	case sharded:
		return fmt.Sprintf(", sharded over %.0f", world)
	}
	return ""
}

func optimNote(opt string, offload bool) string {
	if offload {
		return opt + ", offloaded to CPU"
	}
	return opt
}

func actNote(t Training) string {
	ck := "no checkpointing"
	if t.Checkpointing {
		ck = "checkpointing"
	}
	return fmt.Sprintf("%d tokens per micro batch, %s", t.TokensPerMicroBatch, ck)
}
