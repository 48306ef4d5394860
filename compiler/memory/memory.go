package memory

import (
	"fmt"
	"strings"
)

// GiB is 2^30 bytes.
const GiB = 1 << 30

// Model is what the estimate needs of an architecture.
type Model struct {
	Layers, Hidden, Intermediate, Heads, KVHeads, Vocab int
	TiedEmbeddings                                      bool
	Params                                              int64
	DType                                               string // bf16, fp16, fp32
}

// headDim is the width of one attention head.
func (m Model) headDim() int { return m.Hidden / m.Heads }

// kvDim is the width of the key (or value) projection.
func (m Model) kvDim() int { return m.KVHeads * m.headDim() }

// LinearParams counts the parameters of the linear layers named in
// modules (all seven when modules is nil).
func (m Model) LinearParams(modules []string) int64 {
	h, i, kv := int64(m.Hidden), int64(m.Intermediate), int64(m.kvDim())
	sizes := map[string]int64{
		"q_proj": h * h, "k_proj": h * kv, "v_proj": h * kv, "o_proj": h * h,
		"gate_proj": h * i, "up_proj": h * i, "down_proj": i * h,
	}
	var n int64
	for name, s := range sizes {
		if modules == nil || contains(modules, name) {
			n += s
		}
	}
	return n * int64(m.Layers)
}

// CountParams computes the parameter count from the architecture: token
// embedding, attention with q/k/v biases, SwiGLU MLP, RMSNorms and (unless
// tied) the LM head.
func (m Model) CountParams() int64 {
	h, kv, v := int64(m.Hidden), int64(m.kvDim()), int64(m.Vocab)
	perLayer := m.LinearParams(nil)/int64(m.Layers) + h + 2*kv + 2*h
	n := v*h + perLayer*int64(m.Layers) + h
	if !m.TiedEmbeddings {
		n += v * h
	}
	return n
}

// LoRAParams counts the adapter parameters of rank r on modules.
func (m Model) LoRAParams(r int, modules []string) int64 {
	h, i, kv := int64(m.Hidden), int64(m.Intermediate), int64(m.kvDim())
	dims := map[string]int64{
		"q_proj": h + h, "k_proj": h + kv, "v_proj": h + kv, "o_proj": h + h,
		"gate_proj": h + i, "up_proj": h + i, "down_proj": i + h,
	}
	var n int64
	for name, d := range dims {
		if modules == nil || contains(modules, name) {
			n += int64(r) * d
		}
	}
	return n * int64(m.Layers)
}

// DTypeBytes is the size of one element of dtype d ("fp32", else 2 bytes
// for bf16 and fp16).
func DTypeBytes(d string) float64 {
	switch d {
	case "fp32":
		return 4
	default:
		return 2
	}
}

// Loss says how a stage's loss reads the logits; see LossBytes.
type Loss string

const (
	// LossPlain is transformers' cross-entropy over full fp32 logits.
	LossPlain Loss = ""
	// LossChunked is ftc's chunked cross-entropy (speed.chunkedLoss).
	LossChunked Loss = "chunked"
	// LossLogps is trl's per-token log-probabilities (PPO, GRPO).
	LossLogps Loss = "logps"
	// LossNone is a head without vocabulary logits (a reward model).
	LossNone Loss = "none"
)

// Training is one trained model's settings.
type Training struct {
	Model Model
	// Adapter is "none", "lora" or "qlora".
	Adapter     string
	LoRARank    int
	LoRADropout float64
	// Targets are the LoRA target modules (nil: all linear layers).
	Targets []string
	// Optimizer is "adamw", "adamw-8bit", "paged-adamw-8bit" or "sgd".
	Optimizer string
	// ForeachOptimizer says AdamW runs torch's foreach implementation
	// (a temporary the size of its state) rather than the fused one ftc
	// asks for.
	ForeachOptimizer bool
	// GradAccum is the number of micro batches per optimizer step; above
	// 1 the gradients are held through the forward and backward passes.
	GradAccum int
	// TokensPerMicroBatch is the tokens of one micro batch as the model
	// sees them: rows × the longest row, since padding (the Trainer's
	// dynamic padding pads each batch to its longest row) costs the same
	// memory as tokens. Use the longest a row can be, not the mean.
	TokensPerMicroBatch int
	// Rows is the sequences of one micro batch (for eager attention's
	// per-sequence score matrices); 0 when unknown.
	Rows int
	// Attention is the kernel: "sdpa", "flash_attention_2" or "eager".
	Attention     string
	Checkpointing bool
	// LogitsTokens are the tokens whose vocabulary logits exist at once
	// (all for SFT; one chunk with the chunked loss; completions for RL;
	// none for a reward model), and Loss how the loss reads them.
	LogitsTokens int
	Loss         Loss
	// MaskElements is the size of a dense attention mask built for the
	// batch (per-document attention of packed rows, or the 4-D mask of
	// padded rows), of MaskElementBytes each, described by MaskNote; 0
	// when attention needs none.
	MaskElements     int64
	MaskElementBytes float64
	MaskNote         string
}

// Topology is how the work is spread.
type Topology struct {
	Strategy         string // single, ddp, fsdp, zero2, zero3
	Processes        int
	OffloadOptimizer bool
	OffloadParams    bool
}

// Frozen is an extra model held for inference (a reference or reward
// model).
type Frozen struct {
	Role  string
	Model Model
	// Shared is true when the model costs nothing extra (a LoRA policy's
	// reference is the base model with the adapter disabled).
	Shared bool
	// Tokens are the tokens of one forward pass through it.
	Tokens int
	// Logits are computed over the vocabulary for this many tokens.
	LogitsTokens int
}

// Rollout is the generation a PPO or GRPO step does with the trained
// model.
type Rollout struct {
	Sequences int // sequences generated at once on one GPU
	Length    int // prompt + completion tokens
}

// Input is one stage on one GPU.
type Input struct {
	Train    Training
	Value    *Training // PPO's value model, trained in full
	Frozen   []Frozen
	Rollout  *Rollout
	Topology Topology
	// CapacityGiB is the GPU's memory.
	CapacityGiB float64
}

// Part is one line of a breakdown.
type Part struct {
	Name  string
	Bytes float64
	Note  string
	// Phase is when it is allocated; the total is not the sum of the
	// parts (see peak).
	Phase Phase
}

// Breakdown is the per-GPU estimate of a stage.
type Breakdown struct {
	Parts       []Part
	Total       float64
	CapacityGiB float64
	// Usable is the share of the GPU a plan may fill: the allocator's
	// fragmentation needs the rest.
	Usable float64
	// Unmodelled names what the configuration uses that the estimate
	// does not model; when not empty, the estimate cannot say "fits".
	Unmodelled []string
}

// Headroom is the share of a GPU's memory an estimate may fill: a fixed
// margin for the caching allocator's fragmentation (blocks reserved but
// not allocated), which depends on the order of allocations and is not
// modelled.
const Headroom = 0.92

// Fits reports whether the total is within the usable memory.
func (b Breakdown) Fits() bool { return b.Total <= b.Usable }

// Allocated is the part of the total that torch's caching allocator
// serves, what torch.cuda.max_memory_allocated measures: the total less
// the memory outside it (frameworkBytes).
func (b Breakdown) Allocated() float64 { return b.Total - frameworkBytes }

// TotalGiB is the total in GiB.
func (b Breakdown) TotalGiB() float64 { return b.Total / GiB }

// Verdict says whether the stage fits, for people: "fits" only when
// every term of the configuration is modelled.
func (b Breakdown) Verdict(offload bool) string {
	switch {
	case !b.Fits():
		return "does not fit"
	case len(b.Unmodelled) > 0:
		return "may not fit (not modelled: " + unmodelledNote(b.Unmodelled) + ")"
	case offload:
		return "fits with offload"
	}
	return "fits"
}

var phaseNames = [phases]string{PhaseRollout: "rollout", PhaseBackward: "backward", PhaseLoss: "loss", PhaseLayer: "layer", PhaseStep: "step"}

// String renders the breakdown as lines; each part not held through the
// step says its phase, and the total says how the phases combine.
func (b Breakdown) String() string {
	var s strings.Builder
	for _, p := range b.Parts {
		if p.Bytes == 0 {
			continue
		}
		fmt.Fprintf(&s, "%-16s %7.1f GiB", p.Name, p.Bytes/GiB)
		note := p.Note
		if p.Phase != PhaseHeld {
			note = strings.TrimPrefix(note+" ["+phaseNames[p.Phase]+"]", " ")
		}
		if note != "" {
			s.WriteString("  " + note)
		}
		s.WriteByte('\n')
	}
	fmt.Fprintf(&s, "%-16s %7.1f GiB of %.1f GiB (%.0f%% usable): held + max(rollout, backward + max(loss, layer), step)", "total", b.Total/GiB, b.CapacityGiB, Headroom*100)
	if len(b.Unmodelled) > 0 {
		fmt.Fprintf(&s, "\nnot modelled: %s", unmodelledNote(b.Unmodelled))
	}
	return s.String()
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
