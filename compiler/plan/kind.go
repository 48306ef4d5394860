package plan

// Kind is what a stage does: prepare data, train with one of the methods,
// or export a trained model. It names the entrypoint (python -m ftc.entry
// KIND) and is part of every key.
type Kind string

// The stage kinds.
const (
	KindPrepare Kind = "prepare"
	KindSFT     Kind = "sft"
	KindReward  Kind = "reward"
	KindPPO     Kind = "ppo"
	KindGRPO    Kind = "grpo"
	KindRLOO    Kind = "rloo"
	KindExport  Kind = "export"
	KindDPO     Kind = "dpo"
	KindORPO    Kind = "orpo"
	KindSimPO   Kind = "simpo"
	KindKTO     Kind = "kto"
	// KindReference computes a reference model's log-probabilities of the
	// chosen and rejected answers of prepared preference pairs, for DPO.
	// It runs on one device of the training hardware.
	KindReference Kind = "reference"
	// KindEval evaluates a model on one device: loss and perplexity, or
	// scores of generated answers.
	KindEval Kind = "eval"
)

// Valid reports whether k is one of the kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindPrepare, KindSFT, KindReward, KindPPO, KindGRPO, KindRLOO, KindExport, KindDPO, KindORPO, KindSimPO, KindKTO, KindReference, KindEval:
		return true
	}
	return false
}

// Training reports whether a stage of kind k runs on the training
// devices (the GPUs, or the CPUs with --cpu) rather than as one CPU
// process: every training kind, the reference forward pass and eval.
func (k Kind) Training() bool { return k.Valid() && k != KindPrepare && k != KindExport }
