package plan

import (
	"github.com/ftc-dev/ftc/compiler/config"
)

// referenceVersion is the version of the reference key material.
const referenceVersion = 1

// ReferenceRole is the input role under which a DPO stage reads its
// reference stage's output: one file of log-probabilities per data role
// (ReferenceFile).
const ReferenceRole = "reference-logps"

// ReferenceTokensPerForward bounds the tokens of one forward pass of the
// reference stage: pairs are batched, padded to the longer of each, until
// the next would pass it (at least one pair). It is part of the key, as
// batching moves low-precision results in their last bits; vet's memory
// estimate of the stage reads the same constant.
const ReferenceTokensPerForward = config.ReferenceTokensPerForward

// ReferenceConfig is what the reference entrypoint reads: the model whose
// log-probabilities it computes (input role "model", as a training stage
// names its models) and the prepared preference rows (inputs named by
// Data), for each of which it writes ReferenceFile(role, split) for the
// prepared input's train rows and, where it has them, its eval rows: one
// row per prepared row, in order.
type ReferenceConfig struct {
	Model ModelConfig `json:"model"`
	// Data are the input roles of the prepared rows: "train", or the mix's
	// "train.N", then "eval" when the stage has one.
	Data []string `json:"data"`
	// MaxLength is the prepared rows' bound on prompt + answer tokens.
	MaxLength int `json:"maxLength"`
	// TokensPerForward is ReferenceTokensPerForward.
	TokensPerForward int `json:"tokensPerForward"`
	// Device is "cpu" on a CPU run (fp32 there; the model's dtype on a
	// GPU), so the two are never one cache entry.
	Device string `json:"device,omitempty"`
}

// ReferenceFile is the path, in a reference stage's output, of the
// log-probabilities of split ("train" or "eval") of data role: an Arrow
// IPC stream with float32 columns ref_chosen_logps and ref_rejected_logps.
func ReferenceFile(role, split string) string { return role + "/" + split + ".arrow" }

// reference plans (or finds) the reference stage of DPO stage st over its
// prepared data inputs. Its key holds the reference model, the prepared
// rows' keys, the device and the environment, and nothing of the DPO
// stage's training: two stages whose keys agree share one stage, and a
// later stage finds it cached.
func (b *builder) reference(st config.Stage, data []Input) (*Stage, error) {
	ref := st.Reference
	if ref == nil {
		ref = st.Model
	}
	mc, in := b.model("model", ref)
	cfg := ReferenceConfig{Model: mc, MaxLength: st.Data.MaxLength, TokensPerForward: ReferenceTokensPerForward, Device: device(b.r)}
	inputs := make([]Input, 0, len(data)+1)
	for _, d := range data {
		cfg.Data = append(cfg.Data, d.Role)
		inputs = append(inputs, d)
	}
	inputs = append(inputs, in...)
	keyed := cfg
	keyed.Model.ChatTemplate, keyed.Model.ChatTemplateSHA256 = "", "" // the rows are tokenized already
	k, err := b.configKey(KindReference, referenceVersion, keyed, inputs)
	if err != nil {
		return nil, err
	}
	if rs, ok := b.byKey[k]; ok {
		return rs, nil
	}
	rs, err := b.oneDevice(st.Name+".reference", KindReference, k, inputs, cfg)
	if err != nil {
		return nil, err
	}
	rs.Estimate = inferenceEstimate(b.r, st)
	b.byKey[k] = rs
	b.stages = append(b.stages, rs)
	return rs, nil
}
