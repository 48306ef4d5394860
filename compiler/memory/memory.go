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
	// HeadDim is one head's width; 0 means Hidden / Heads.
	HeadDim int
	// SlidingWindow is the attention window of the SlidingLayers layers
	// that have one (0: none); their KV cache holds at most that many
	// tokens.
	SlidingWindow, SlidingLayers int
	// Experts, ExpertsPerToken and ExpertWidth describe a mixture of
	// experts (Experts 0: a dense MLP of Intermediate): every expert is
	// in memory, ExpertsPerToken of them run for each token.
	Experts, ExpertsPerToken, ExpertWidth int
}

// headDim is the width of one attention head.
func (m Model) headDim() int {
	if m.HeadDim > 0 {
		return m.HeadDim
	}
	return m.Hidden / m.Heads
}

// qDim is the width of the query projection (and of o_proj's input).
func (m Model) qDim() int { return m.Heads * m.headDim() }

// kvDim is the width of the key (or value) projection.
func (m Model) kvDim() int { return m.KVHeads * m.headDim() }

// mlpWidth is the MLP width one token passes through: the dense
// intermediate, or its experts' together.
func (m Model) mlpWidth() int {
	if m.Experts > 0 {
		return m.ExpertsPerToken * m.ExpertWidth
	}
	return m.Intermediate
}

// linear is one linear module of a layer: in and out widths, and how
// many of it a layer has (the experts of a mixture).
type linear struct {
	in, out, count int64
}

// linears are a layer's linear modules by name: attention, MLP (each
// expert's, and the router "gate", in a mixture of experts), and the
// fused names some families use (Phi-3's qkv_proj and gate_up_proj).
// canonical lists those "all linear layers" means, each weight once.
func (m Model) linears() (map[string]linear, []string) {
	h, q, kv := int64(m.Hidden), int64(m.qDim()), int64(m.kvDim())
	i, n := int64(m.Intermediate), int64(1)
	if m.Experts > 0 {
		i, n = int64(m.ExpertWidth), int64(m.Experts)
	}
	l := map[string]linear{
		"q_proj": {h, q, 1}, "k_proj": {h, kv, 1}, "v_proj": {h, kv, 1}, "o_proj": {q, h, 1},
		"gate_proj": {h, i, n}, "up_proj": {h, i, n}, "down_proj": {i, h, n},
		"qkv_proj": {h, q + 2*kv, 1}, "gate_up_proj": {h, 2 * i, n},
	}
	canonical := []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
	if m.Experts > 0 {
		l["gate"] = linear{h, int64(m.Experts), 1}
		canonical = append(canonical, "gate")
	}
	return l, canonical
}

// LinearParams counts the parameters of the linear layers named in
// modules (all of them when modules is nil).
func (m Model) LinearParams(modules []string) int64 {
	l, canonical := m.linears()
	if modules == nil {
		modules = canonical
	}
	var n int64
	for _, name := range modules {
		if x, ok := l[name]; ok {
			n += x.in * x.out * x.count
		}
	}
	return n * int64(m.Layers)
}

// CountParams computes the parameter count from the architecture: token
// embedding, attention with q/k/v biases, SwiGLU MLP, RMSNorms and (unless
// tied) the LM head.
func (m Model) CountParams() int64 {
	h, q, kv, v := int64(m.Hidden), int64(m.qDim()), int64(m.kvDim()), int64(m.Vocab)
	perLayer := m.LinearParams(nil)/int64(m.Layers) + q + 2*kv + 2*h
	n := v*h + perLayer*int64(m.Layers) + h
	if !m.TiedEmbeddings {
		n += v * h
	}
	return n
}

// LoRAParams counts the adapter parameters of rank r on modules (every
// expert of a mixture gets its own adapter).
func (m Model) LoRAParams(r int, modules []string) int64 {
	l, canonical := m.linears()
	if modules == nil {
		modules = canonical
	}
	var n int64
	for _, name := range modules {
		if x, ok := l[name]; ok {
			n += int64(r) * (x.in + x.out) * x.count
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
// step says its phase, and the total says how the phases combine (when
// every part is held, as in an inference stage's, it is their sum).
func (b Breakdown) String() string {
	var s strings.Builder
	phased := false
	for _, p := range b.Parts {
		if p.Bytes == 0 {
			continue
		}
		phased = phased || p.Phase != PhaseHeld
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
	fmt.Fprintf(&s, "%-16s %7.1f GiB of %.1f GiB (%.0f%% usable)", "total", b.Total/GiB, b.CapacityGiB, Headroom*100)
	if phased {
		s.WriteString(": held + max(rollout, backward + max(loss, layer), step)")
	}
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
