package memory

import (
	"fmt"
	"sort"
	"strings"
)

// Each term below is built from how the libraries of the profiles
// allocate (torch 2.5+ autograd and caching allocator, transformers 4.48
// and 5.x Qwen2 modules, peft 0.14+, trl 0.16+), not fitted to
// measurements; the comment next to each says what it assumes. What is not
// modelled is named in Breakdown.Unmodelled, so that an estimate never
// says "fits" on the strength of a term it does not have.

// Fixed margins: the only two terms not derived from the libraries.
const (
	// frameworkBytes is memory outside torch's caching allocator, which
	// max_memory_allocated does not see: the CUDA context and loaded
	// kernels (about 0.5 GiB with lazy module loading), and NCCL's
	// communication buffers when several processes train.
	frameworkBytes = 1.0 * GiB
	// Headroom (memory.go) leaves 8% of the card to the allocator's
	// fragmentation (reserved but not allocated blocks).
)

// Bytes per logit element (tokens × vocabulary) at the peak of the loss,
// by how the loss is computed.
const (
	// PlainLossBytes: transformers' ForCausalLMLoss (4.48 and 5.x) upcasts
	// the bf16 logits to fp32 (logits.float()) and calls cross_entropy,
	// i.e. log_softmax, which saves its fp32 output, and nll_loss. The
	// first node of the backward holds that saved output (4), the fp32
	// gradient nll_loss hands it (4) and the fp32 gradient it makes (4),
	// with every activation still saved; the forward's peak is lower (bf16
	// 2 + fp32 copy 4 + log_softmax output 4). The bf16 logits (2) are
	// counted too: they live as long as the model output does, which a
	// training loop may keep through the backward (the calibration
	// harness does; the Trainer's compute_loss drops it, so this is up to
	// 2 bytes per element high there).
	PlainLossBytes = 14.0
	// ChunkedLossBytes: ftc's chunked cross-entropy (speed.py) holds one
	// chunk's fp32 logits while logsumexp makes an fp32 temporary of the
	// same size (4 + 4); the bf16 matmul output before the fp32 copy
	// (2 + 4) and the bf16 gradient after the softmax (4 + 2) are less.
	// Measured on an H200 (bench/gpu/results/2026-11-30-h200.json): 8.2
	// bytes per element with one chunk, where 6 had been derived.
	ChunkedLossBytes = 8.0
	// ChunkedCarryBytes: the bf16 gradient of the previous chunk is still
	// referenced while the next chunk's logits are made (the loop's
	// variable is only rebound after them): 10.1-10.2 bytes per element
	// measured with two full chunks.
	ChunkedCarryBytes = 2.0
	// LogpsBytes: trl's PPO and GRPO take per-token log-probabilities of
	// the policy's bf16 logits with selective_log_softmax, row by row:
	// the bf16 logits (2), each row's log_softmax output saved for the
	// backward (2), and in the backward the rows' gradients stacked into
	// one logits gradient (2) beside the row being computed (2).
	LogpsBytes = 8.0
	// FrozenLogitBytes: a frozen model's logits under no_grad: the bf16
	// logits and one temperature-scaled or log-softmaxed copy.
	FrozenLogitBytes = 4.0
)

// Phase says when a part of the breakdown is allocated.
type Phase int

const (
	// PhaseHeld parts live through the whole step: weights, optimizer state,
	// buffers.
	PhaseHeld Phase = iota
	// PhaseRollout parts exist while PPO and GRPO generate and score: the KV
	// cache, the frozen models' forward passes. They are freed before the
	// policy's forward with gradients.
	PhaseRollout
	// PhaseBackward parts are the activations saved by the forward, all alive
	// when the backward starts.
	PhaseBackward
	// PhaseLoss parts are the loss's buffers at the first node of the
	// backward; they are freed before any layer's backward runs.
	PhaseLoss
	// PhaseLayer parts are one layer's backward: its recomputed activations
	// under checkpointing, and its working gradients.
	PhaseLayer
	// PhaseStep parts peak at the optimizer step, when the activations are
	// gone and every gradient exists.
	PhaseStep
	phases
)

// peak is the total of a breakdown: held parts, plus the largest phase.
func peak(parts []Part) float64 {
	var p [phases]float64
	for _, x := range parts {
		p[x.Phase] += x.Bytes
	}
	return p[PhaseHeld] + max(p[PhaseRollout], p[PhaseBackward]+max(p[PhaseLoss], p[PhaseLayer]), p[PhaseStep])
}

// Estimate computes the per-GPU breakdown of a stage. The peak is the
// held parts plus the largest phase (see peak).
//
// Gradients are a step part when one micro batch makes a step: during the
// backward they are allocated layer by layer as that layer's activations
// are freed, so the peak is the larger of the two, not their sum (exact
// for uniform layers). With gradient accumulation they are held: the
// later micro batches run their forward and backward with the earlier
// ones' gradients allocated.
func Estimate(in Input) Breakdown {
	t := in.Topology
	tr := in.Train
	world := float64(max(1, t.Processes))
	shardParams := t.Strategy == "zero3" || t.Strategy == "fsdp"
	shardGrads := shardParams || t.Strategy == "zero2"
	shardOptim := shardGrads
	var parts []Part
	var unmodelled []string

	m := tr.Model
	params := float64(m.Params)
	dt := DTypeBytes(m.DType)
	weights := params * dt
	note := m.DType
	if tr.Adapter == "qlora" {
		// Linear layers are stored in 4 bits (plus about 3% of
		// quantization constants with double quantization); embeddings
		// and norms stay.
		lin := float64(m.LinearParams(nil))
		weights = lin*0.5*1.03 + (params-lin)*dt
		note = "4-bit linear layers"
		unmodelled = append(unmodelled, "bitsandbytes' dequantized weight buffers (QLoRA)")
	}
	if m.DType == "fp32" {
		unmodelled = append(unmodelled, "autocast's half-precision copies of fp32 weights")
	}
	trainable := params
	lora := tr.Adapter == "lora" || tr.Adapter == "qlora"
	if lora {
		trainable = float64(m.LoRAParams(tr.LoRARank, tr.Targets))
	}
	// Bytes per trainable parameter: its weight when separate from the
	// frozen base (wT), its gradient (gT), its optimizer state (oT) and
	// the optimizer step's temporaries (tmpT).
	var wT, gT float64
	switch {
	case lora:
		// peft keeps adapters in fp32 (autocast_adapter_dtype); their
		// gradients are fp32 too.
		wT, gT = 4, 4
	case t.Strategy == "fsdp" || t.Strategy == "zero2" || t.Strategy == "zero3":
		// Mixed precision keeps fp32 master weights next to the bf16 ones.
		wT, gT = 4, dt
	default:
		// Plain Trainer on a bf16 model: weights, gradients and Adam
		// state all in the model dtype; no separate master copy.
		wT, gT = 0, dt
	}
	fp32State := lora || wT == 4
	oT := optimizerBytes(tr.Optimizer, m.DType, fp32State)
	tmpT := optimizerTempBytes(tr, m.DType, fp32State)
	frozenWeights := weights
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
		tmpT /= world
	}
	if t.OffloadOptimizer {
		oT, tmpT = 0, 0
	}
	if shardGrads {
		unmodelled = append(unmodelled, strategyTitle(t.Strategy)+" communication buffers and gathered parameters")
	}
	var buckets float64
	if t.Strategy == "ddp" && world > 1 {
		// DDP all-reduces through flat buckets, allocated when the model
		// is wrapped, holding a second copy of the gradients
		// (gradient_as_bucket_view is off by default).
		buckets = trainable * gT
	}
	gradPhase := PhaseStep
	if tr.GradAccum > 1 {
		gradPhase = PhaseHeld
	}
	parts = append(parts,
		Part{"weights", frozenWeights, note + shardNote(shardParams, t.OffloadParams, world), PhaseHeld},
		Part{"DDP buckets", buckets, "a second copy of the gradients", PhaseHeld},
		Part{"trainable", trainable * wT, fmt.Sprintf("%.3gM parameters", trainable/1e6), PhaseHeld},
		Part{"optimizer", trainable * oT, optimNote(tr.Optimizer, t.OffloadOptimizer), PhaseHeld},
		Part{"gradients", trainable * gT, gradNote(tr.GradAccum), gradPhase},
		Part{"optimizer step", trainable * tmpT, "foreach AdamW's temporary: sqrt of the second moment", PhaseStep},
	)

	parts = append(parts,
		Part{"activations", SavedActivationBytes(tr), actNote(tr), PhaseBackward},
		Part{"logits", LossBytes(tr), lossNote(tr), PhaseLoss},
		Part{"layer backward", LayerBackwardBytes(tr), layerNote(tr), PhaseLayer})
	if !lora && (tr.Loss == LossPlain || tr.Loss == LossLogps) && tr.LogitsTokens > 0 {
		// The LM head's weight gradient (tied or not) is made by the loss's
		// backward, before any layer's activations are freed; the other
		// gradients replace activations as the backward frees them. (The
		// chunked loss keeps its own fp32 copy, in LossBytes.)
		parts = append(parts, Part{"LM head grad", float64(m.Vocab) * float64(m.Hidden) * gT, "made while every activation is alive", PhaseBackward})
	}
	if tr.MaskElements > 0 {
		parts = append(parts, Part{"attention mask", float64(tr.MaskElements) * tr.MaskElementBytes, tr.MaskNote, PhaseBackward})
	}

	if v := in.Value; v != nil {
		// PPO's value model trains in full next to the policy (trl wraps
		// both in one module under one optimizer): its weights, gradient
		// and Adam state in the model dtype, and its activations (a score
		// head, no vocabulary logits).
		vdt := DTypeBytes(v.Model.DType)
		vw := float64(v.Model.Params) * vdt
		vs := float64(v.Model.Params) * (vdt + optimizerBytes(v.Optimizer, v.Model.DType, false))
		if shardParams {
			vw /= world
		}
		if shardOptim {
			vs /= world
		}
		parts = append(parts, Part{"value model", vw + vs, "trained in full: weights, gradients, optimizer", PhaseHeld},
			Part{"value acts", SavedActivationBytes(*v) + LayerBackwardBytes(*v), "its activations", PhaseBackward})
	}
	for _, f := range in.Frozen {
		if f.Shared {
			continue
		}
		fb := float64(f.Model.Params) * DTypeBytes(f.Model.DType)
		if shardParams {
			fb /= world
		}
		parts = append(parts, Part{f.Role, fb, "frozen weights", PhaseHeld})
		// Under no_grad nothing is saved: the forward's working set is one
		// layer's (FrozenWorkBytes) and the logits.
		work := float64(f.Tokens)*FrozenWorkBytes(f.Model) + float64(f.LogitsTokens)*float64(f.Model.Vocab)*FrozenLogitBytes
		parts = append(parts, Part{f.Role + " fwd", work, "inference working set", PhaseRollout})
	}
	if r := in.Rollout; r != nil {
		kv, note := rolloutKV(m, *r)
		parts = append(parts, Part{"rollout KV", kv, note, PhaseRollout})
		unmodelled = append(unmodelled, "generation's working memory besides the KV cache")
	}
	parts = append(parts, Part{"framework", frameworkBytes, "CUDA context, NCCL buffers (outside the allocator)", PhaseHeld})

	return breakdown(parts, unmodelled, in.CapacityGiB)
}

// breakdown totals parts at their peak against the usable share of a GPU
// of capacityGiB.
func breakdown(parts []Part, unmodelled []string, capacityGiB float64) Breakdown {
	return Breakdown{Parts: parts, CapacityGiB: capacityGiB, Unmodelled: unmodelled,
		Total: peak(parts), Usable: capacityGiB * GiB * Headroom}
}

// rolloutKV is generation's KV cache: keys and values (KVHeads wide:
// GQA) of every layer for every sequence generated at once, in the model
// dtype; a sliding-window layer keeps at most its window.
func rolloutKV(m Model, r Rollout) (float64, string) {
	kv := float64(r.Sequences) * 2 * float64(m.kvDim()) * DTypeBytes(m.DType) * KVTokens(m, r.Length)
	note := fmt.Sprintf("%d sequences × %d tokens", r.Sequences, r.Length)
	if m.SlidingWindow > 0 && m.SlidingWindow < r.Length && m.SlidingLayers > 0 {
		note += fmt.Sprintf(", %d of %d layers windowed to %d", m.SlidingLayers, m.Layers, m.SlidingWindow)
	}
	return kv, note
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
		return 2 * state // two Adam moments, zeros_like the parameter
	}
}

// optimizerTempBytes is what the optimizer step allocates per trainable
// parameter beyond its state. ftc's "adamw" is torch's fused AdamW
// (adamw_torch_fused, trainargs.py), which updates in place: nothing. The
// foreach implementation (torch.optim.adamw._multi_tensor_adamw, the
// default when fused is not asked for) makes exp_avg_sq_sqrt =
// _foreach_sqrt(exp_avg_sqs): one temporary of the state's size per
// parameter group, the groups stepped one after another; the Trainer's
// decay group holds nearly every parameter, so count them all.
func optimizerTempBytes(t Training, dtype string, fp32Params bool) float64 {
	if !t.ForeachOptimizer || (t.Optimizer != "adamw" && t.Optimizer != "") {
		return 0
	}
	if fp32Params {
		return 4
	}
	return DTypeBytes(dtype)
}

// LayerSavedBytes is what autograd keeps of one decoder layer's forward
// for its backward, per token (transformers 4.48 / 5.x Qwen2DecoderLayer
// in the model dtype, SDPA or flash attention; eager attention's score
// matrices are counted by eagerScoreBytes):
//
//   - each of the two Qwen2RMSNorms upcasts its input to fp32; pow() and
//     the multiply by rsqrt save that fp32 copy: 4 bytes × hidden, twice.
//   - attention: SDPA saves q (made contiguous after RoPE), k and v
//     expanded to every head by repeat_kv, and its output, each hidden
//     wide; flash and memory-efficient kernels save a logsumexp (fp32 per
//     head) instead of the score matrix. RoPE's multiplies save cos and
//     sin only (shared by the layers).
//   - MLP: SiLU saves gate_proj's output; the product saves SiLU's output
//     and up_proj's: 3 × intermediate.
//   - the inputs of the linear layers, at four sites (the normed
//     attention input, read by q/k/v; the attention output, by o; the
//     normed MLP input, by gate/up; the product, by down), are saved
//     where a weight gradient needs them: once per site by the base
//     layers in full fine-tuning (the RMSNorm weight's multiply saves the
//     same tensor), once per site by lora_A under LoRA without dropout;
//     with dropout each adapted module has its own nn.Dropout, which
//     keeps its dropped copy (read by lora_A) and a one-byte mask. Frozen
//     base layers save no input (autograd saves what the gradients that
//     will be computed need).
//   - LoRA: lora_B saves lora_A's output, r wide per adapted module.
func LayerSavedBytes(t Training) float64 {
	m := t.Model
	dt := DTypeBytes(m.DType)
	h, i, q := float64(m.Hidden), float64(m.mlpWidth()), float64(m.qDim())
	b := 2*4*h + 4*dt*q + 4*float64(m.Heads) + 3*dt*i
	sites := []struct {
		width   float64
		modules []string
	}{
		{h, []string{"q_proj", "k_proj", "v_proj", "qkv_proj"}},
		{q, []string{"o_proj"}},
		{h, []string{"gate_proj", "up_proj", "gate_up_proj", "gate"}},
		{i, []string{"down_proj"}},
	}
	_, canonical := m.linears()
	for _, s := range sites {
		if t.Adapter == "none" {
			b += dt * s.width
			continue
		}
		n := 0
		for _, mod := range s.modules {
			if t.Targets == nil && !contains(canonical, mod) {
				continue // "all-linear" counts each weight once
			}
			if t.Targets == nil || contains(t.Targets, mod) {
				n++
			}
		}
		switch {
		case n == 0:
		case t.LoRADropout > 0:
			b += float64(n) * (dt + 1) * s.width
		default:
			b += dt * s.width
		}
		b += float64(n) * dt * float64(t.LoRARank)
	}
	return b
}

// LayerWorkBytes is the backward's working memory inside one layer, per
// token: the gradients flowing through the MLP (for gate, up and the
// product, intermediate wide) and through the residual stream and
// attention (q, k, v and the output, hidden wide), in the model dtype,
// and flash attention's fp32 accumulator of q's gradient (hidden wide).
func LayerWorkBytes(m Model) float64 {
	dt := DTypeBytes(m.DType)
	return dt*(3*float64(m.mlpWidth())+4*float64(m.Hidden)) + 4*float64(m.Hidden)
}

// FrozenWorkBytes is one layer's forward working set under no_grad, per
// token: gate, up and their product (intermediate wide), the residual,
// its normed copy and the norm's fp32 upcast.
func FrozenWorkBytes(m Model) float64 {
	dt := DTypeBytes(m.DType)
	return 3*dt*float64(m.mlpWidth()) + (2*dt+4)*float64(m.Hidden)
}

// eagerScoreBytes is what eager attention saves per sequence and layer:
// softmax's fp32 output (saved by the softmax) and its cast to the model
// dtype (saved by the matmul with v), heads × length × length.
func eagerScoreBytes(t Training) float64 {
	if t.Attention != "eager" || t.Rows == 0 {
		return 0
	}
	l := float64(t.TokensPerMicroBatch) / float64(t.Rows)
	return float64(t.Rows) * float64(t.Model.Heads) * l * l * (4 + DTypeBytes(t.Model.DType))
}

// SavedActivationBytes is what the backward needs kept from the forward,
// alive when it starts. Without checkpointing: every layer's saved tensors
// (LayerSavedBytes, and eager attention's scores) and the final norm's
// (fp32 upcast and normed output). With checkpointing (non-reentrant, as
// the entrypoints ask): each layer's input, the residual stream in the
// model dtype, and the final norm's.
func SavedActivationBytes(t Training) float64 {
	m := t.Model
	tokens := float64(t.TokensPerMicroBatch)
	dt := DTypeBytes(m.DType)
	finalNorm := tokens * (4 + dt) * float64(m.Hidden)
	if t.Checkpointing {
		return float64(m.Layers)*tokens*dt*float64(m.Hidden) + finalNorm
	}
	return float64(m.Layers)*(tokens*LayerSavedBytes(t)+eagerScoreBytes(t)) + finalNorm
}

// LayerBackwardBytes is one layer's backward beyond what is saved: its
// working gradients, and under checkpointing its recomputed forward. It
// runs after the loss's backward has freed the loss's buffers.
func LayerBackwardBytes(t Training) float64 {
	tokens := float64(t.TokensPerMicroBatch)
	b := tokens * LayerWorkBytes(t.Model)
	if t.Checkpointing {
		b += tokens*LayerSavedBytes(t) + eagerScoreBytes(t)
	}
	return b
}

// LossBytes is the loss's peak over the logits: see PlainLossBytes,
// ChunkedLossBytes and LogpsBytes. The chunked loss also keeps the
// gradient with respect to the hidden states it computed in the forward
// (tokens × hidden) and, when the LM head trains, an fp32 gradient of its
// weight.
func LossBytes(t Training) float64 {
	m := t.Model
	n := float64(t.LogitsTokens) * float64(m.Vocab)
	switch t.Loss {
	case LossChunked:
		b := ChunkedPeakElements(t.TokensPerMicroBatch, t.LogitsTokens)*float64(m.Vocab) + float64(t.TokensPerMicroBatch)*float64(m.Hidden)*DTypeBytes(m.DType)
		if t.Adapter == "none" {
			b += float64(m.Vocab) * float64(m.Hidden) * 4
		}
		return b
	case LossLogps:
		return n * LogpsBytes
	case LossNone:
		return 0
	}
	return n * PlainLossBytes
}

// ChunkedPeakElements is the chunked loss's peak in bytes per vocabulary
// column: the largest, over its chunks, of a chunk's live logits
// (ChunkedLossBytes per row) and the previous chunk's gradient still
// held (ChunkedCarryBytes per row). tokens are split into chunks of
// chunk rows and a remainder.
func ChunkedPeakElements(tokens, chunk int) float64 {
	if chunk <= 0 || tokens <= 0 {
		return 0
	}
	chunk = min(chunk, tokens)
	peak := float64(chunk) * ChunkedLossBytes
	full, rest := tokens/chunk, tokens%chunk
	if full >= 2 {
		peak += float64(chunk) * ChunkedCarryBytes
	} else if rest > 0 {
		peak = max(peak, float64(rest)*ChunkedLossBytes+float64(chunk)*ChunkedCarryBytes)
	}
	return peak
}

func strategyTitle(s string) string {
	switch s {
	case "fsdp":
		return "FSDP"
	case "zero2":
		return "ZeRO-2"
	case "zero3":
		return "ZeRO-3"
	}
	return s
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

func gradNote(accum int) string {
	if accum > 1 {
		return fmt.Sprintf("held across %d accumulated micro batches", accum)
	}
	return "at the optimizer step"
}

func actNote(t Training) string {
	ck := "no checkpointing"
	if t.Checkpointing {
		ck = "checkpointing"
	}
	return fmt.Sprintf("%d tokens per micro batch, %s", t.TokensPerMicroBatch, ck)
}

func layerNote(t Training) string {
	if t.Checkpointing {
		return "one layer recomputed, its gradients"
	}
	return "one layer's gradients"
}

func lossNote(t Training) string {
	switch t.Loss {
	case LossChunked:
		return fmt.Sprintf("chunked loss, %d tokens at a time", t.LogitsTokens)
	case LossLogps:
		return fmt.Sprintf("log-probabilities of %d tokens", t.LogitsTokens)
	case LossNone:
		return ""
	}
	return fmt.Sprintf("fp32 cross-entropy over %d tokens", t.LogitsTokens)
}

// unmodelledNote lists what an estimate leaves out, sorted.
func unmodelledNote(l []string) string {
	l = append([]string(nil), l...)
	sort.Strings(l)
	return strings.Join(l, "; ")
}

// KVTokens is the tokens the KV cache holds over all layers for one
// sequence of length tokens: every layer holds them all, except a
// sliding-window layer, which holds at most its window.
func KVTokens(m Model, length int) float64 {
	sliding := 0
	if m.SlidingWindow > 0 {
		sliding = min(m.SlidingLayers, m.Layers)
	}
	return float64(m.Layers-sliding)*float64(length) + float64(sliding)*float64(min(length, m.SlidingWindow))
}
