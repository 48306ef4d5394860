package config

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ftc-dev/ftc/compiler/arch"
	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/libknobs"
)

// ModelFacts are the architectures ftc.lock holds, read from each
// model's config.json at its pinned commit: by the model reference as a
// recipe writes it (repo and revision, a branch or a commit) and by
// repo and commit.
type ModelFacts map[HubRef]ModelFact

// ModelFact is one model's config.json facts.
type ModelFact struct {
	// At is "REPO@COMMIT", the config.json the facts were read from.
	At    string
	Facts arch.Facts
}

// modelSite is a model field of the recipe with its path.
type modelSite struct {
	path string
	m    *Model
	// derived is a stage output, whose architecture is its base model's.
	derived bool
}

// modelSites lists every Hub model of the recipe with its path, in order.
func (r *Recipe) modelSites() []modelSite {
	var out []modelSite
	for _, name := range sortedKeys(r.Stages) {
		st := r.Stages[name]
		base := "stages." + name
		for _, f := range []struct {
			field string
			m     *Model
		}{{"model", st.Model}, {"policy", st.Policy}, {"reference", st.Reference}, {"reward", st.Reward}, {"value", st.Value}} {
			if f.m != nil && (f.m.Repo != "" || f.m.Path != "") {
				out = append(out, modelSite{path: base + "." + f.field, m: f.m, derived: f.m.From != nil})
			}
		}
		for i := range st.Rewards {
			if m := st.Rewards[i].Model; m != nil && (m.Repo != "" || m.Path != "") {
				out = append(out, modelSite{path: fmt.Sprintf("%s.rewards.%d.model", base, i), m: m, derived: m.From != nil})
			}
		}
		if st.Method != "eval" { // an evaluation trains no model
			out = append(out, modelSite{path: base + ".output", m: &st.Output, derived: true})
		}
		r.Stages[name] = st
	}
	return out
}

// resolveArchs gives every model its architecture: the recipe's, checked
// against config.json where ftc.lock has its facts, or else the lock's.
// Families in ftc's table fill what a hand-written architecture leaves
// out. It reports false when some model has none, so that the checks
// that need one do not run.
func (r *Recipe) resolveArchs(file string, facts ModelFacts, diags *diag.List) bool {
	ok := r.checkModelSources(diags)
	missing := map[string]bool{}
	for _, s := range r.modelSites() {
		m := s.m
		if m.Repo != "" && m.Path != "" {
			continue // checkModelSources said so
		}
		fact, have := facts[HubRef{Kind: "model", Repo: m.Repo, Revision: m.Revision}]
		if m.IsLocal() {
			// A local model's config.json is in its directory, read at
			// decode time: a missing one is an error even with arch, since
			// transformers loads the directory by it.
			if fact, have = r.localFact(s, diags); !have {
				ok = false
				continue
			}
		}
		if m.Arch.Family != "" {
			if have {
				r.checkArchAgainst(s, fact, diags)
			}
			r.fillArch(s, diags)
			continue
		}
		if !have {
			ok = false
			if !s.derived && !missing[s.path] {
				missing[s.path] = true
				diags.Errorf(r.Pos.At(s.path), s.path, "model %s@%s has no architecture: ftc.lock has no config.json facts for it", m.Repo, m.Revision).
					WithHint("run `ftc lock %s` where the Hub is reachable (HF_ENDPOINT names a mirror), or give arch: a preset of \"ftc.dev/stdlib/models\" or the facts by hand", filepath.Base(file))
			}
			continue
		}
		f := fact.Facts
		fam, known := arch.Lookup(f.ModelType)
		if !known {
			ok = false
			if !s.derived {
				diags.Errorf(r.Pos.At(s.path), s.path, "model %s is a %q model (its config.json model_type), which ftc does not know; it knows %s", m.Name(), f.ModelType, arch.Known()).
					WithHint("give the architecture by hand: arch: {family: %q, layers: %d, hidden: %d, intermediate: %d, heads: %d, kvHeads: %d, vocab: %d, tiedEmbeddings: %t, maxPositions: %d, linearModules: [...], decoderLayer: \"...\"}",
						f.ModelType, f.Layers, f.Hidden, max(f.Intermediate, f.ExpertWidth), f.Heads, f.KVHeads, f.Vocab, f.TiedEmbeddings, f.MaxPositions)
			}
			continue
		}
		m.Arch = Architecture{
			Family: f.ModelType, Tokenizer: fam.Tokenizer, Layers: f.Layers, Hidden: f.Hidden, Intermediate: f.Intermediate,
			Heads: f.Heads, KVHeads: f.KVHeads, HeadDim: f.HeadDim, Vocab: f.Vocab, TiedEmbeddings: f.TiedEmbeddings,
			Params: f.Params(), ActiveParams: f.ActiveParams(), MaxPositions: f.MaxPositions, SlidingWindow: f.SlidingWindow,
			Experts: f.Experts, ExpertsPerToken: f.ExpertsPerToken, ExpertWidth: f.ExpertWidth,
			LinearModules: fam.LinearModulesAt(r.Environment.Packages["transformers"]), DecoderLayer: fam.DecoderLayer, FromConfig: fact.At,
		}
	}
	return ok
}

// facts is a hand-written architecture in config.json's terms.
func (a *Architecture) facts() arch.Facts {
	hd := a.HeadDim
	if hd == 0 {
		hd = a.Hidden / a.Heads
	}
	return arch.Facts{ModelType: a.Family, Layers: a.Layers, Hidden: a.Hidden, Intermediate: a.Intermediate, Heads: a.Heads,
		KVHeads: a.KVHeads, HeadDim: hd, Vocab: a.Vocab, TiedEmbeddings: a.TiedEmbeddings, MaxPositions: a.MaxPositions,
		SlidingWindow: a.SlidingWindow, Experts: a.Experts, ExpertsPerToken: a.ExpertsPerToken, ExpertWidth: a.ExpertWidth}
}

// fillArch completes a hand-written architecture from the family table.
func (r *Recipe) fillArch(s modelSite, diags *diag.List) {
	a := &s.m.Arch
	f := a.facts()
	if a.Experts > 0 && (a.ExpertsPerToken == 0 || a.ExpertWidth == 0) && !s.derived {
		diags.Errorf(r.Pos.At(s.path+".arch.experts"), s.path+".arch.experts", "a mixture of experts needs expertsPerToken and expertWidth too")
	}
	a.HeadDim = f.HeadDim
	if a.Params == 0 {
		a.Params = f.Params()
	}
	a.ActiveParams = a.Params
	if a.Experts > 0 {
		a.ActiveParams = a.Params - (f.Params() - f.ActiveParams())
	}
	fam, known := arch.Lookup(a.Family)
	if !known {
		if len(a.LinearModules) == 0 && !s.derived {
			diags.Errorf(r.Pos.At(s.path+".arch"), s.path+".arch.linearModules", "family %q is not in ftc's table (%s): list the linear module names LoRA can target", a.Family, arch.Known()).
				WithHint("e.g. linearModules: [\"q_proj\", \"k_proj\", \"v_proj\", \"o_proj\", \"gate_proj\", \"up_proj\", \"down_proj\"]")
		}
		if a.Tokenizer == "" {
			a.Tokenizer = a.Family
		}
		return
	}
	if a.Tokenizer == "" {
		a.Tokenizer = fam.Tokenizer
	}
	if len(a.LinearModules) == 0 {
		a.LinearModules = fam.LinearModulesAt(r.Environment.Packages["transformers"])
	}
	if a.DecoderLayer == "" {
		a.DecoderLayer = fam.DecoderLayer
	}
}

// checkArchAgainst refuses a written architecture that contradicts the
// model's config.json, fact by fact, at the fact.
func (r *Recipe) checkArchAgainst(s modelSite, fact ModelFact, diags *diag.List) {
	if s.derived {
		return // its base model is checked
	}
	a, f := &s.m.Arch, fact.Facts
	type cmp struct {
		field, key string
		got, want  any
	}
	hd := a.HeadDim
	if hd == 0 {
		hd = a.Hidden / a.Heads
	}
	l := []cmp{
		{"family", "model_type", a.Family, f.ModelType},
		{"layers", "num_hidden_layers", a.Layers, f.Layers},
		{"hidden", "hidden_size", a.Hidden, f.Hidden},
		{"heads", "num_attention_heads", a.Heads, f.Heads},
		{"kvHeads", "num_key_value_heads", a.KVHeads, f.KVHeads},
		{"headDim", "head_dim", hd, f.HeadDim},
		{"vocab", "vocab_size", a.Vocab, f.Vocab},
		{"tiedEmbeddings", "tie_word_embeddings", a.TiedEmbeddings, f.TiedEmbeddings},
		{"maxPositions", "max_position_embeddings", a.MaxPositions, f.MaxPositions},
		{"experts", "num_experts", a.Experts, f.Experts},
	}
	if f.Experts == 0 {
		l = append(l, cmp{"intermediate", "intermediate_size", a.Intermediate, f.Intermediate})
	} else {
		l = append(l, cmp{"expertsPerToken", "num_experts_per_tok", a.ExpertsPerToken, f.ExpertsPerToken},
			cmp{"expertWidth", "moe_intermediate_size", a.ExpertWidth, f.ExpertWidth})
	}
	for _, c := range l {
		if fmt.Sprint(c.got) == fmt.Sprint(c.want) {
			continue
		}
		p := s.path + ".arch." + c.field
		e := diags.Errorf(r.Pos.At(p), p, "arch.%s %v contradicts the config.json of %s (%s %v)", c.field, c.got, fact.At, c.key, c.want)
		if s.m.IsLocal() {
			e.WithHint("the config.json in the model's directory is the model's own: fix the architecture (or the preset), or leave arch out to take it from there")
		} else {
			e.WithHint("the config.json read by `ftc lock` is the model's own: fix the architecture (or the preset), or leave arch out to take it from the lock")
		}
	}
}

// familySupport refuses a model whose family the profile's transformers
// does not have yet.
func (c *checker) familySupport(base string, m *Model) {
	fam, ok := arch.Lookup(m.Arch.Family)
	if !ok {
		return
	}
	v := c.r.Environment.Packages["transformers"]
	if v == "" || libknobs.Compare(v, fam.MinTransformers) >= 0 {
		return
	}
	d := c.errorf(base, "%s is a %s model, which transformers %s does not have (it came in %s)", m.Name(), fam.ModelType, v, fam.MinTransformers)
	var with []string
	for _, p := range libknobs.Stock {
		if libknobs.Compare(p.Versions["transformers"], fam.MinTransformers) >= 0 {
			with = append(with, fmt.Sprintf("profiles.%s (transformers %s)", p.Name, p.Versions["transformers"]))
		}
	}
	sort.Strings(with)
	if len(with) > 0 {
		d.WithHint("use a profile with transformers %s or later: %s", fam.MinTransformers, strings.Join(with, ", "))
	}
}

// FLOPsParams is the parameter count that costs compute per token: all
// of them, but only the active experts of a mixture of experts.
func (a *Architecture) FLOPsParams() int64 {
	if a.ActiveParams > 0 {
		return a.ActiveParams
	}
	return a.Params
}
