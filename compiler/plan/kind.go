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
	KindExport  Kind = "export"
)

// Valid reports whether k is one of the kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindPrepare, KindSFT, KindReward, KindPPO, KindGRPO, KindExport:
		return true
	}
	return false
}

// Training reports whether a stage of kind k trains (on the GPUs, or the
// CPUs with --cpu) rather than running one CPU process.
func (k Kind) Training() bool { return k.Valid() && k != KindPrepare && k != KindExport }
