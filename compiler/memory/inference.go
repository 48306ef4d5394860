package memory

import "fmt"

// RowLogpBytes is what the inference entrypoints (reference.py,
// evaluate.py) hold per logit element of the one row whose
// log-probabilities they take at a time: the row's logits selected (a
// bf16 copy where evaluate.py keeps only the answer tokens), upcast to
// fp32 and log-softmaxed in fp32: 2 + 4 + 4 (reference.py's row is a
// view, so 2 bytes high there).
const RowLogpBytes = 10.0

// Inference is a stage that only runs a model forward, without
// gradients, as one process on one GPU whatever the training topology:
// DPO's reference log-probabilities, an eval stage.
type Inference struct {
	Model Model
	// Rows and Tokens are one forward pass: its sequences, and rows × the
	// longest a row can be (padding costs what tokens do).
	Rows, Tokens int
	// LogitsTokens are the tokens whose logits the forward returns, in
	// the model dtype; RowLogitsTokens those of the one row whose
	// log-probabilities are taken at a time (RowLogpBytes each).
	LogitsTokens, RowLogitsTokens int
	// MaskElements is the dense attention mask of padded rows, of
	// MaskElementBytes each (0 when attention needs none).
	MaskElements     int64
	MaskElementBytes float64
	MaskNote         string
	// Generate is the generation of eval on prompts: its KV cache (nil
	// when the stage does not generate).
	Generate *Rollout
	// CapacityGiB is the GPU's memory.
	CapacityGiB float64
}

// EstimateInference computes the breakdown of an inference stage on its
// GPU: the weights in the model dtype, one forward's working set under
// no_grad (FrozenWorkBytes, as a frozen model's in Estimate), its logits,
// and generation's KV cache (as a rollout's in Estimate). Every part is
// alive at once: the total is their sum.
func EstimateInference(in Inference) Breakdown {
	m := in.Model
	v := float64(m.Vocab)
	logits := fmt.Sprintf("%d tokens", in.LogitsTokens)
	if in.RowLogitsTokens > 0 {
		logits += fmt.Sprintf(", fp32 log-softmax of %d at a time", in.RowLogitsTokens)
	}
	parts := []Part{
		{"weights", float64(m.Params) * DTypeBytes(m.DType), m.DType + ", one GPU", PhaseHeld},
		{"forward", float64(in.Tokens) * FrozenWorkBytes(m), fmt.Sprintf("%d rows, %d tokens, no gradients", in.Rows, in.Tokens), PhaseHeld},
		{"logits", float64(in.LogitsTokens)*v*DTypeBytes(m.DType) + float64(in.RowLogitsTokens)*v*RowLogpBytes, logits, PhaseHeld},
	}
	if in.MaskElements > 0 {
		parts = append(parts, Part{"attention mask", float64(in.MaskElements) * in.MaskElementBytes, in.MaskNote, PhaseHeld})
	}
	var unmodelled []string
	if g := in.Generate; g != nil {
		kv, note := rolloutKV(m, *g)
		parts = append(parts, Part{"generate KV", kv, note, PhaseHeld})
		unmodelled = append(unmodelled, "generation's working memory besides the KV cache")
	}
	parts = append(parts, Part{"framework", frameworkBytes, "CUDA context (outside the allocator)", PhaseHeld})
	return breakdown(parts, unmodelled, in.CapacityGiB)
}
