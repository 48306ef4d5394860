package arch

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Facts are the architecture facts of one model, as its config.json
// states them (for a multimodal checkpoint, its text model's).
type Facts struct {
	// ModelType is config.json's model_type, the family.
	ModelType       string
	Layers          int
	Hidden          int
	Intermediate    int
	Heads           int
	KVHeads         int
	HeadDim         int
	Vocab           int
	TiedEmbeddings  bool
	MaxPositions    int
	SlidingWindow   int // 0: none
	Experts         int // 0: a dense model
	ExpertsPerToken int
	ExpertWidth     int
}

// configJSON is the part of a transformers config.json ftc reads. The
// names vary by family; the alternatives are listed where they do.
type configJSON struct {
	ModelType         string          `json:"model_type"`
	TextConfig        json.RawMessage `json:"text_config"`
	NumHiddenLayers   *int            `json:"num_hidden_layers"`
	HiddenSize        *int            `json:"hidden_size"`
	IntermediateSize  *int            `json:"intermediate_size"`
	NumAttentionHeads *int            `json:"num_attention_heads"`
	NumKeyValueHeads  *int            `json:"num_key_value_heads"`
	HeadDim           *int            `json:"head_dim"`
	VocabSize         *int            `json:"vocab_size"`
	TieWordEmbeddings *bool           `json:"tie_word_embeddings"`
	MaxPositions      *int            `json:"max_position_embeddings"`
	SlidingWindow     *int            `json:"sliding_window"`
	UseSlidingWindow  *bool           `json:"use_sliding_window"`
	NumExperts        *int            `json:"num_experts"`
	NumLocalExperts   *int            `json:"num_local_experts"`
	NumExpertsPerTok  *int            `json:"num_experts_per_tok"`
	MoEIntermediate   *int            `json:"moe_intermediate_size"`
}

// FromConfigJSON reads the facts from a config.json. A multimodal
// checkpoint whose language model sits in text_config (Gemma 3 4B and
// larger) gives its text model's facts under its own model_type.
func FromConfigJSON(b []byte) (Facts, error) {
	var c configJSON
	if err := json.Unmarshal(b, &c); err != nil {
		return Facts{}, fmt.Errorf("config.json: %w", err)
	}
	if c.ModelType == "" {
		return Facts{}, fmt.Errorf("config.json has no model_type")
	}
	if len(c.TextConfig) > 0 && string(c.TextConfig) != "null" && c.NumHiddenLayers == nil {
		var t configJSON
		if err := json.Unmarshal(c.TextConfig, &t); err != nil {
			return Facts{}, fmt.Errorf("config.json: text_config: %w", err)
		}
		if c.TieWordEmbeddings != nil && t.TieWordEmbeddings == nil {
			t.TieWordEmbeddings = c.TieWordEmbeddings
		}
		t.ModelType = c.ModelType
		c = t
	}
	var missing []string
	need := func(name string, p *int) int {
		if p == nil || *p <= 0 {
			missing = append(missing, name)
			return 0
		}
		return *p
	}
	f := Facts{
		ModelType:    c.ModelType,
		Layers:       need("num_hidden_layers", c.NumHiddenLayers),
		Hidden:       need("hidden_size", c.HiddenSize),
		Heads:        need("num_attention_heads", c.NumAttentionHeads),
		Vocab:        need("vocab_size", c.VocabSize),
		MaxPositions: need("max_position_embeddings", c.MaxPositions),
	}
	f.KVHeads = f.Heads
	if c.NumKeyValueHeads != nil && *c.NumKeyValueHeads > 0 {
		f.KVHeads = *c.NumKeyValueHeads
	}
	if c.HeadDim != nil && *c.HeadDim > 0 {
		f.HeadDim = *c.HeadDim
	} else if f.Heads > 0 {
		f.HeadDim = f.Hidden / f.Heads
	}
	// transformers' PretrainedConfig defaults tie_word_embeddings to true.
	f.TiedEmbeddings = c.TieWordEmbeddings == nil || *c.TieWordEmbeddings
	if c.SlidingWindow != nil && *c.SlidingWindow > 0 && (c.UseSlidingWindow == nil || *c.UseSlidingWindow) {
		f.SlidingWindow = *c.SlidingWindow
	}
	switch {
	case c.NumExperts != nil && *c.NumExperts > 0:
		f.Experts = *c.NumExperts
	case c.NumLocalExperts != nil && *c.NumLocalExperts > 0:
		f.Experts = *c.NumLocalExperts
	}
	if f.Experts > 0 {
		f.ExpertsPerToken = need("num_experts_per_tok", c.NumExpertsPerTok)
		if c.MoEIntermediate != nil && *c.MoEIntermediate > 0 {
			f.ExpertWidth = *c.MoEIntermediate
		} else {
			f.ExpertWidth = need("intermediate_size", c.IntermediateSize)
		}
		if c.IntermediateSize != nil {
			f.Intermediate = *c.IntermediateSize
		}
	} else {
		f.Intermediate = need("intermediate_size", c.IntermediateSize)
	}
	if len(missing) > 0 {
		return Facts{}, fmt.Errorf("config.json (model_type %q) lacks %s", c.ModelType, strings.Join(missing, ", "))
	}
	return f, nil
}

// Params is the parameter count of a causal LM with these facts: the
// embedding (and an untied LM head), per layer the attention projections
// (with q/k/v biases and q/k norms where the family has them), the MLP
// or the experts and their router, the layer norms, and the final norm.
// An unknown family is counted as a Llama-shaped model.
func (f Facts) Params() int64 {
	fam, _ := Lookup(f.ModelType)
	h, hd := int64(f.Hidden), int64(f.HeadDim)
	q, kv := int64(f.Heads)*hd, int64(f.KVHeads)*hd
	attn := h*q + 2*h*kv + q*h
	if fam.QKVBias {
		attn += q + 2*kv
	}
	if fam.QKNorm {
		attn += 2 * hd
	}
	var mlp int64
	if f.Experts > 0 {
		mlp = int64(f.Experts)*3*h*int64(f.ExpertWidth) + h*int64(f.Experts)
	} else {
		mlp = 3 * h * int64(f.Intermediate)
	}
	norms := int64(2)
	if fam.NormsPerLayer > 0 {
		norms = int64(fam.NormsPerLayer)
	}
	layer := attn + mlp + norms*h
	embed := int64(f.Vocab) * h
	n := embed + int64(f.Layers)*layer + h
	if !f.TiedEmbeddings {
		n += embed
	}
	return n
}

// ActiveParams is the parameter count one token passes through: for a
// mixture of experts, only ExpertsPerToken experts of each layer.
func (f Facts) ActiveParams() int64 {
	if f.Experts == 0 {
		return f.Params()
	}
	idle := int64(f.Layers) * int64(f.Experts-f.ExpertsPerToken) * 3 * int64(f.Hidden) * int64(f.ExpertWidth)
	return f.Params() - idle
}

// fields are the facts' names in ftc.lock, in the order they are written.
var fields = []string{"model_type", "layers", "hidden", "intermediate", "heads", "kv_heads", "head_dim", "vocab",
	"tied", "max_positions", "sliding_window", "experts", "experts_per_token", "expert_width"}

func (f *Facts) ints() map[string]*int {
	return map[string]*int{
		"layers": &f.Layers, "hidden": &f.Hidden, "intermediate": &f.Intermediate, "heads": &f.Heads,
		"kv_heads": &f.KVHeads, "head_dim": &f.HeadDim, "vocab": &f.Vocab, "max_positions": &f.MaxPositions,
		"sliding_window": &f.SlidingWindow, "experts": &f.Experts, "experts_per_token": &f.ExpertsPerToken,
		"expert_width": &f.ExpertWidth,
	}
}

// String writes the facts as NAME=VALUE words in a fixed order, with the
// computed parameter count last (params=N): the form ftc.lock keeps.
func (f Facts) String() string {
	ints := f.ints()
	var w []string
	for _, k := range fields {
		switch k {
		case "model_type":
			w = append(w, k+"="+f.ModelType)
		case "tied":
			w = append(w, k+"="+strconv.FormatBool(f.TiedEmbeddings))
		default:
			w = append(w, k+"="+strconv.Itoa(*ints[k]))
		}
	}
	w = append(w, "params="+strconv.FormatInt(f.Params(), 10))
	return strings.Join(w, " ")
}

// Parse reads the words String writes. The params word is for the
// reader of the lock: the count is computed again from the facts.
func Parse(words []string) (Facts, error) {
	var f Facts
	ints := f.ints()
	seen := map[string]bool{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || seen[k] {
			return Facts{}, fmt.Errorf("%q: want NAME=VALUE, each name once", w)
		}
		seen[k] = true
		switch k {
		case "model_type":
			f.ModelType = v
		case "tied":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Facts{}, fmt.Errorf("%q: want true or false", w)
			}
			f.TiedEmbeddings = b
		case "params":
		default:
			p, ok := ints[k]
			if !ok {
				return Facts{}, fmt.Errorf("%q: unknown fact (known: %s, params)", w, strings.Join(fields, ", "))
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return Facts{}, fmt.Errorf("%q: want a count", w)
			}
			*p = n
		}
	}
	var missing []string
	for _, k := range fields {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return Facts{}, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	return f, nil
}
