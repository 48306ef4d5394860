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
	// TokensPerMicroBatch is micro batch × sequence length (the longest a
	// batch can be).
	TokensPerMicroBatch int
	Checkpointing       bool
	// LogitsTokens are the tokens whose vocabulary logits are computed
	// (all for SFT; completions for RL; none for a reward model).
	LogitsTokens int
	// MaskTokens is T when per-document attention of padding-free rows
	// takes a dense [T, T] mask of MaskElementBytes per element (0 when the
	// attention reads document boundaries without one).
	MaskTokens       int
	MaskElementBytes float64
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
}

// Breakdown is the per-GPU estimate of a stage.
type Breakdown struct {
	Parts       []Part
	Total       float64
	CapacityGiB float64
	// Usable is the share of the GPU a plan may fill: the allocator's
	// fragmentation and the estimate's error need the rest.
	Usable float64
}

// Headroom is the share of a GPU's memory an estimate may fill.
const Headroom = 0.92

// Fits reports whether the total is within the usable memory.
func (b Breakdown) Fits() bool { return b.Total <= b.Usable }

// TotalGiB is the total in GiB.
func (b Breakdown) TotalGiB() float64 { return b.Total / GiB }

// Verdict says whether the stage fits, for people.
func (b Breakdown) Verdict(offload bool) string {
	switch {
	case !b.Fits():
		return "does not fit"
	case offload:
		return "fits with offload"
	}
	return "fits"
}

// String renders the breakdown as lines.
func (b Breakdown) String() string {
	var s strings.Builder
	for _, p := range b.Parts {
		if p.Bytes == 0 {
			continue
		}
		fmt.Fprintf(&s, "%-14s %7.1f GiB", p.Name, p.Bytes/GiB)
		if p.Note != "" {
			s.WriteString("  " + p.Note)
		}
		s.WriteByte('\n')
	}
	fmt.Fprintf(&s, "%-14s %7.1f GiB of %.1f GiB (%.0f%% usable)", "total", b.Total/GiB, b.CapacityGiB, Headroom*100)
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
