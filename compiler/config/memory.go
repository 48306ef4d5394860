package config

import (
	"fmt"

	"github.com/ftc-dev/ftc/compiler/arch"
	"github.com/ftc-dev/ftc/compiler/memory"
)

// memModel converts a model to the estimator's terms.
func memModel(m *Model) memory.Model {
	a := m.Arch
	fam, _ := arch.Lookup(a.Family)
	return memory.Model{Layers: a.Layers, Hidden: a.Hidden, Intermediate: a.Intermediate, Heads: a.Heads,
		KVHeads: a.KVHeads, Vocab: a.Vocab, TiedEmbeddings: a.TiedEmbeddings, Params: a.Params, DType: m.DType,
		HeadDim: a.HeadDim, SlidingWindow: a.SlidingWindow, SlidingLayers: fam.SlidingLayers(a.Layers, a.SlidingWindow),
		Experts: a.Experts, ExpertsPerToken: a.ExpertsPerToken, ExpertWidth: a.ExpertWidth}
}

// MemoryInput describes a stage on one GPU for the estimator, with
// checkpointing on or off.
func (r *Recipe) MemoryInput(st Stage, checkpointing bool) memory.Input {
	h := r.Hardware
	bm := st.Base()
	t := st.Training
	seq := st.Data.MaxLength
	b, _ := r.Batch(st)
	train := memory.Training{
		Model: memModel(bm), Adapter: st.Adapter.Type, LoRARank: st.Adapter.R, LoRADropout: st.Adapter.Dropout,
		Optimizer: t.Optimizer, Checkpointing: checkpointing, GradAccum: b.GradAccum,
		Attention: bm.Attention, Rows: t.MicroBatch,
	}
	if !st.Adapter.Targets.AllLinear {
		train.Targets = st.Adapter.Targets.Modules
	} else if bm.Arch.Experts > 0 {
		// "all-linear" is what the library version has as nn.Linear:
		// every expert and the router, or (fused experts) attention only.
		train.Targets = bm.Arch.LinearModules
	}
	in := memory.Input{
		Topology: memory.Topology{Strategy: string(h.Strategy), Processes: r.TrainingProcesses(st),
			OffloadOptimizer: h.Offload.Optimizer, OffloadParams: h.Offload.Params},
		CapacityGiB: h.GPU.MemoryGiB,
	}
	switch st.Method {
	case "sft":
		// Rows are padded to the longest in the batch (or packed to
		// maxLength): maxLength is the longest a row can be.
		train.TokensPerMicroBatch = t.MicroBatch * seq
		train.LogitsTokens = train.TokensPerMicroBatch
		if sp := st.Speed; sp != nil && sp.ChunkedLoss {
			// Only one chunk of logits exists at a time.
			train.LogitsTokens = min(train.LogitsTokens, sp.LossChunkTokens)
			train.Loss = memory.LossChunked
		}
		if sp := st.Speed; sp != nil && sp.PaddingFree {
			// One row of every document, attended per document.
			train.Rows = 1
			if n, eb := r.packedMask(st, train.TokensPerMicroBatch); n > 0 {
				train.MaskElements, train.MaskElementBytes = int64(n)*int64(n), eb
				train.MaskNote = fmt.Sprintf("dense %d × %d for per-document attention", n, n)
			}
		} else if !st.Data.Packing {
			r.paddedMask(&train, bm, t.MicroBatch, seq)
		}
	case "reward":
		// Chosen and rejected go through the model together, padded to
		// the longer; the head has one output, not the vocabulary.
		train.TokensPerMicroBatch = 2 * t.MicroBatch * seq
		train.Rows = 2 * t.MicroBatch
		train.Loss = memory.LossNone
		r.paddedMask(&train, bm, train.Rows, seq)
	case "dpo", "orpo", "simpo":
		// Chosen and rejected of every pair go through the policy together,
		// padded to the longer, with log-probabilities over the
		// vocabulary. DPO's reference log-probabilities come from the
		// reference stage, and ORPO and SimPO have none: no second model
		// here.
		train.TokensPerMicroBatch = 2 * t.MicroBatch * seq
		train.Rows = 2 * t.MicroBatch
		train.LogitsTokens = train.TokensPerMicroBatch
		train.Loss = memory.LossLogps
		r.paddedMask(&train, bm, train.Rows, seq)
	case "kto":
		// Each row's answer goes through the policy with gradients; trl
		// scores the same rows and the KL rows (each prompt with another
		// row's answer) with the reference, the starting weights: with
		// LoRA the policy with its adapter disabled, else a frozen copy.
		train.TokensPerMicroBatch = t.MicroBatch * seq
		train.Rows = t.MicroBatch
		train.LogitsTokens = train.TokensPerMicroBatch
		train.Loss = memory.LossLogps
		r.paddedMask(&train, bm, train.Rows, seq)
		in.Frozen = append(in.Frozen, memory.Frozen{Role: "reference", Model: memModel(bm), Shared: st.Adapter.Type != "none",
			Tokens: 2 * train.TokensPerMicroBatch, LogitsTokens: 2 * train.TokensPerMicroBatch})
	case "ppo":
		total := seq + st.PPO.ResponseLength
		train.TokensPerMicroBatch = t.MicroBatch * total
		train.LogitsTokens = train.TokensPerMicroBatch
		train.Loss = memory.LossLogps
		r.paddedMask(&train, bm, t.MicroBatch, total)
		in.Rollout = &memory.Rollout{Sequences: t.MicroBatch, Length: total}
		value := st.Value
		if value == nil {
			value = st.Reward
		}
		in.Value = &memory.Training{Model: memModel(value), Adapter: "none", Optimizer: t.Optimizer, GradAccum: b.GradAccum,
			TokensPerMicroBatch: train.TokensPerMicroBatch, Rows: t.MicroBatch, Attention: value.Attention,
			Checkpointing: checkpointing, Loss: memory.LossNone}
		ref := st.Reference
		if ref == nil {
			ref = st.Policy
		}
		in.Frozen = append(in.Frozen,
			memory.Frozen{Role: "reference", Model: memModel(ref), Shared: st.Adapter.Type != "none", Tokens: train.TokensPerMicroBatch, LogitsTokens: train.TokensPerMicroBatch},
			memory.Frozen{Role: "reward model", Model: memModel(st.Reward), Tokens: train.TokensPerMicroBatch})
	case "grpo", "rloo":
		g, _ := st.Rollouts()
		prompt := seq
		if g.MaxPromptLength > 0 {
			prompt = g.MaxPromptLength
		}
		total := prompt + g.MaxCompletionLength
		train.TokensPerMicroBatch = t.MicroBatch * total
		// trl computes logits for the completion tokens only.
		train.LogitsTokens = t.MicroBatch * g.MaxCompletionLength
		train.Loss = memory.LossLogps
		r.paddedMask(&train, bm, t.MicroBatch, total)
		if !g.VLLM {
			in.Rollout = &memory.Rollout{Sequences: t.MicroBatch, Length: total}
		}
		if g.Beta > 0 {
			in.Frozen = append(in.Frozen, memory.Frozen{Role: "reference", Model: memModel(bm), Shared: st.Adapter.Type != "none",
				Tokens: train.TokensPerMicroBatch, LogitsTokens: train.LogitsTokens})
		}
		for i, rw := range st.Rewards {
			if rw.Model != nil {
				in.Frozen = append(in.Frozen, memory.Frozen{Role: fmt.Sprintf("reward model %d", i), Model: memModel(rw.Model), Tokens: train.TokensPerMicroBatch})
			}
		}
	}
	in.Train = train
	return in
}

// paddedMask counts the 4-D attention mask transformers builds for a
// batch of padded rows (left padding for PPO and GRPO, right for SFT and
// reward pairs): [rows, 1, length, length], in the model dtype up to
// transformers 4.x (_prepare_4d_causal_attention_mask_with_cache_position)
// and boolean from 5.0 (sdpa_mask). A single row has no padding, and
// flash attention takes the unpadded sequences instead: no mask.
func (r *Recipe) paddedMask(t *memory.Training, m *Model, rows, length int) {
	if rows < 2 || m.Attention == "flash_attention_2" {
		return
	}
	t.MaskElements = int64(rows) * int64(length) * int64(length)
	t.MaskElementBytes = memory.DTypeBytes(m.DType)
	if versionAtLeast(r.Environment.Packages["transformers"], 5, 0) {
		t.MaskElementBytes = 1
	}
	t.MaskNote = fmt.Sprintf("%d × %d × %d for padded rows", rows, length, length)
}

// Checkpointing resolves a stage's gradient checkpointing: "auto" is off
// when the stage fits without it by an estimate that models every term
// of the configuration, on otherwise (turning it off is a claim that the
// stage fits, which an estimate with unmodelled terms cannot make).
func (r *Recipe) Checkpointing(st Stage) bool {
	switch st.GradientCheckpointing {
	case "on":
		return true
	case "off":
		return false
	}
	b := memory.Estimate(r.MemoryInput(st, false))
	return !b.Fits() || len(b.Unmodelled) > 0
}

// Memory returns the estimate of a stage with its resolved checkpointing.
func (r *Recipe) Memory(st Stage) memory.Breakdown {
	return memory.Estimate(r.MemoryInput(st, r.Checkpointing(st)))
}

// fix is a change that may make a stage fit.
type fix struct {
	say   string
	apply func(r *Recipe, st *Stage)
}

// microBatchFix lowers the micro batch to mb (a divisor of the current
// one) and keeps the global batch: gradAccum rises by the same factor, or
// follows from globalBatch when that is what the recipe gives.
func microBatchFix(st Stage, mb int) fix {
	t := st.Training
	factor := t.MicroBatch / mb
	if t.GlobalBatch > 0 && t.GradAccum == 0 {
		return fix{fmt.Sprintf(`gradientCheckpointing: "on" and training: microBatch: %d (gradAccum follows from globalBatch %d)`, mb, t.GlobalBatch),
			func(r *Recipe, s *Stage) { s.GradientCheckpointing = "on"; s.Training.MicroBatch = mb }}
	}
	ga := max(1, t.GradAccum) * factor
	return fix{fmt.Sprintf(`gradientCheckpointing: "on" and training: {microBatch: %d, gradAccum: %d} (the same global batch)`, mb, ga),
		func(r *Recipe, s *Stage) {
			s.GradientCheckpointing = "on"
			s.Training.MicroBatch = mb
			s.Training.GradAccum = ga
		}}
}

// memoryFixes are the changes that may make a stage fit, from least to
// most disruptive.
func (r *Recipe) memoryFixes(st Stage) []fix {
	fixes := []fix{
		{`gradientCheckpointing: "on"`, func(r *Recipe, s *Stage) { s.GradientCheckpointing = "on" }},
	}
	for mb := st.Training.MicroBatch - 1; mb >= 1; mb-- {
		if st.Training.MicroBatch%mb == 0 {
			fixes = append(fixes, microBatchFix(st, mb))
		}
	}
	h := r.Hardware
	if h.GPUs() > 1 && h.Strategy != "zero3" && h.Strategy != "fsdp" {
		fixes = append(fixes, fix{`hardware: strategy: "zero3" with gradientCheckpointing: "on"`, func(r *Recipe, s *Stage) {
			r.Hardware.Strategy = "zero3"
			s.GradientCheckpointing = "on"
		}})
	}
	if !h.Offload.Optimizer {
		fixes = append(fixes, fix{`hardware: strategy: "zero3", offload: optimizer: true, with gradientCheckpointing: "on"`, func(r *Recipe, s *Stage) {
			r.Hardware.Strategy = "zero3"
			r.Hardware.Offload.Optimizer = true
			s.GradientCheckpointing = "on"
		}})
	}
	if st.Adapter.Type == "lora" {
		fixes = append(fixes, fix{`adapter: type: "qlora" with gradientCheckpointing: "on"`, func(r *Recipe, s *Stage) {
			s.Adapter.Type = "qlora"
			s.GradientCheckpointing = "on"
		}})
	}
	return fixes
}

// smallestFit finds the first change, from least to most disruptive, that
// makes the stage fit and passes vet, and its estimate.
func (c *checker) smallestFit(base string, st Stage) (string, memory.Breakdown, bool) {
	for _, f := range c.r.memoryFixes(st) {
		rr := *c.r
		s := st
		f.apply(&rr, &s)
		if b := rr.Memory(s); b.Fits() && c.fixPasses(st.Name, base, f.apply) {
			c.offered = append(c.offered, offer{st.Name, base, f.say, f.apply})
			return f.say, b, true
		}
	}
	return "", memory.Breakdown{}, false
}

func (c *checker) memory(base string, st Stage) {
	if st.Base() == nil || c.r.Hardware.GPU.MemoryGiB == 0 {
		return
	}
	b := c.r.Memory(st)
	if b.Fits() {
		return
	}
	d := c.errorf(base, "needs about %.1f GiB per GPU, more than %.0f%% of the %s's %.1f GiB:\n%s",
		b.TotalGiB(), memory.Headroom*100, c.r.Hardware.GPU.Name, b.CapacityGiB, indent(b.String()))
	if c.proposing {
		return
	}
	if say, fb, ok := c.smallestFit(base, st); ok {
		d.WithHint("it fits (%.1f GiB) with %s", fb.TotalGiB(), say)
	} else {
		d.WithHint("no single change that passes vet fits it on this hardware: use more or larger GPUs")
	}
}

func indent(s string) string {
	out := "\t  "
	for _, c := range s {
		out += string(c)
		if c == '\n' {
			out += "\t  "
		}
	}
	return out
}

// packedMask says whether padding-free rows of tokens tokens need a dense
// [T, T] mask for per-document attention, and its element size (the
// entrypoints' compat.packed_attention_mode decides the same at run
// time): flash attention reads boundaries from position ids, and ftc's
// registered attention (transformers 4.50+, attention "auto", "varlen" or
// "loop") needs no mask; otherwise transformers 5 builds a boolean mask
// from the position ids and earlier releases take ftc's additive mask in
// the model dtype.
func (r *Recipe) packedMask(st Stage, tokens int) (int, float64) {
	sp := st.Speed
	m := st.Base()
	if sp == nil || !sp.PaddingFree || m == nil || m.Attention == "flash_attention_2" {
		return 0, 0
	}
	tf := r.Environment.Packages["transformers"]
	if sp.Attention != "mask" && versionAtLeast(tf, 4, 50) {
		return 0, 0
	}
	if versionAtLeast(tf, 5, 0) {
		return tokens, 1
	}
	return tokens, memory.DTypeBytes(m.DType)
}

// ReferenceTokensPerForward bounds the tokens of one forward pass of
// DPO's reference stage (plan.ReferenceTokensPerForward, the entrypoint's
// tokens_per_forward): pairs are batched, padded to the longer of each,
// until the next would pass it, at least one pair.
const ReferenceTokensPerForward = 8192

// EvalBatch is the rows of one forward pass, or of one generate call, of
// an eval stage (evaluate.py's LOSS_BATCH and GENERATE_BATCH).
const EvalBatch = 8

// InferenceInput describes the inference stage a stage runs as one
// process on one GPU, whatever the training topology: a DPO stage's
// reference stage, or an eval stage. It returns the model the stage
// loads, and false for a stage that runs none.
func (r *Recipe) InferenceInput(st Stage) (*Model, memory.Inference, bool) {
	seq := st.Data.MaxLength
	var m *Model
	var in memory.Inference
	switch {
	case st.Method == "dpo":
		m = st.Reference
		if m == nil {
			m = st.Model
		}
		// reference.py: as many pairs as fit the token budget with both
		// answers padded to the longest, at least one; its logits for every
		// token, then one row's log-softmax at a time.
		pairs := max(1, ReferenceTokensPerForward/(2*max(1, seq)))
		in.Rows = 2 * pairs
		in.Tokens = in.Rows * seq
		in.LogitsTokens, in.RowLogitsTokens = in.Tokens, seq
	case st.Method == "eval" && st.Generates():
		m = st.Model
		// evaluate.py's generate: EvalBatch prompts left-padded to the
		// longest; the prompt's forward returns the last token's logits
		// only, and the KV cache grows to prompt + maxNewTokens.
		in.Rows = EvalBatch
		in.Tokens = EvalBatch * seq
		in.LogitsTokens = EvalBatch
		newTokens := 0
		if st.Eval != nil {
			newTokens = st.Eval.MaxNewTokens
		}
		in.Generate = &memory.Rollout{Sequences: EvalBatch, Length: seq + newTokens}
	case st.Method == "eval":
		m = st.Model
		// evaluate.py's loss: EvalBatch rows padded to the longest, logits
		// for every token, one row's answer tokens log-softmaxed at a time.
		in.Rows = EvalBatch
		in.Tokens = EvalBatch * seq
		in.LogitsTokens, in.RowLogitsTokens = in.Tokens, seq
	}
	if m == nil {
		return nil, in, false
	}
	in.Model = memModel(m)
	in.CapacityGiB = r.Hardware.GPU.MemoryGiB
	// The mask of padded rows over the rows' length (generate's prompt
	// forward is its largest: each new token attends through one row).
	var t memory.Training
	r.paddedMask(&t, m, in.Rows, seq)
	in.MaskElements, in.MaskElementBytes, in.MaskNote = t.MaskElements, t.MaskElementBytes, t.MaskNote
	return m, in, true
}

// inferenceMemory reports an inference stage (InferenceInput) whose model
// does not fit its one GPU, at the model it loads.
func (c *checker) inferenceMemory(base string, st Stage) {
	m, in, ok := c.r.InferenceInput(st)
	if !ok || c.r.Hardware.GPU.MemoryGiB == 0 {
		return
	}
	b := memory.EstimateInference(in)
	if b.Fits() {
		return
	}
	what, at := "the eval stage", base+".model"
	if st.Method == "dpo" {
		what = "the reference stage"
		if st.Reference != nil {
			at = base + ".reference"
		}
	}
	d := c.errorf(at, "%s needs about %.1f GiB on its one GPU, more than %.0f%% of the %s's %.1f GiB:\n%s",
		what, b.TotalGiB(), memory.Headroom*100, c.r.Hardware.GPU.Name, b.CapacityGiB, indent(b.String()))
	weights := float64(in.Model.Params) * memory.DTypeBytes(in.Model.DType)
	if weights > b.Usable {
		d.WithHint("%s's weights alone (%.1f GiB) exceed it, and the stage runs as one process on one GPU whatever hardware.strategy: use a GPU with more memory, or a smaller model",
			m.Name(), weights/memory.GiB)
		return
	}
	knob := ", or a lower data.maxLength"
	switch {
	case st.Generates():
		knob = ", or a lower data.maxLength or eval.maxNewTokens"
	case st.Method == "dpo" && 2*st.Data.MaxLength <= ReferenceTokensPerForward:
		// The reference batches pairs up to its token budget: shorter
		// rows make more of them, not fewer tokens.
		knob = ", or a smaller model"
	}
	d.WithHint("the stage runs as one process on one GPU whatever hardware.strategy: use a GPU with more memory%s", knob)
}
