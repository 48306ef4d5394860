package plan

import (
	"fmt"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/ident"
	"github.com/ftc-dev/ftc/compiler/key"
	"github.com/ftc-dev/ftc/compiler/launch"
)

// prepareVersion is the version of the prepare key material.
//
// 2: the entrypoints' digest.
const prepareVersion = 2

// PrepareConfig is what the prepare entrypoint reads: how to turn one
// dataset into tokenized rows for one kind of consumer.
type PrepareConfig struct {
	// Consumer is the method the rows are shaped for.
	Consumer       string          `json:"consumer"`
	Backend        string          `json:"backend,omitempty"`
	CompletionOnly bool            `json:"completionOnly,omitempty"`
	Dataset        DatasetConfig   `json:"dataset"`
	Tokenizer      TokenizerConfig `json:"tokenizer"`
	MaxLength      int             `json:"maxLength"`
	OverLength     string          `json:"overLength"`
	Packing        bool            `json:"packing"`
	MaxPrompt      int             `json:"maxPromptLength,omitempty"`
	EvalFraction   float64         `json:"evalFraction,omitempty"`
	Seed           *int64          `json:"seed,omitempty"`
}

// DatasetConfig identifies the rows and their shape.
type DatasetConfig struct {
	Format  string            `json:"format"`
	Prompt  string            `json:"prompt,omitempty"`
	Columns map[string]string `json:"columns,omitempty"`
	Source  Source            `json:"source"`
	// Encoding, Config and Split say how to read the source.
	Encoding string `json:"encoding,omitempty"`
	Config   string `json:"config,omitempty"`
	Split    string `json:"split,omitempty"`
}

// TokenizerConfig names the tokenizer: the base model's, whatever stage
// trained the weights, since training does not change it.
type TokenizerConfig struct {
	Repo               string `json:"repo"`
	Revision           string `json:"revision"`
	ChatTemplate       string `json:"chatTemplate,omitempty"`
	ChatTemplateSHA256 string `json:"chatTemplateSHA256,omitempty"`
}

type prepareMaterial struct {
	Kind        string        `json:"kind"`
	Config      PrepareConfig `json:"config"`
	Environment key.Key       `json:"environment"`
	Entrypoints string        `json:"entrypoints"`
}

// prepareInputs returns the data inputs of st, adding the prepare stages
// that produce them. Two consumers whose prepare keys agree share one
// stage.
func (b *builder) prepareInputs(st config.Stage) ([]Input, error) {
	var inputs []Input
	add := func(role, suffix string, d config.Dataset, evalFraction float64) error {
		ps, err := b.prepare(st, d, evalFraction, st.Name+"."+suffix)
		if err != nil {
			return err
		}
		inputs = append(inputs, Input{Role: role, Stage: ps.Name, Key: ps.Key})
		return nil
	}
	if len(st.Data.Mix) == 0 {
		if err := add("train", "prepare", st.Data.Train, st.Data.EvalFraction); err != nil {
			return nil, err
		}
	}
	// A mix prepares each source on its own: its key holds neither the
	// weights nor the other sources, so changing a weight or adding a
	// source finds every prepared source already cached.
	for i, src := range st.Data.Mix {
		if err := add(MixRole(i), "prepare."+src.Dataset.Name, src.Dataset, st.Data.EvalFraction); err != nil {
			return nil, err
		}
	}
	if st.Data.Eval != nil {
		if err := add("eval", "prepare-eval", *st.Data.Eval, 0); err != nil {
			return nil, err
		}
	}
	return inputs, nil
}

// MixRole is the input role of source i of a stage's mix.
func MixRole(i int) string { return fmt.Sprintf("train.%d", i) }

func (b *builder) prepare(st config.Stage, d config.Dataset, evalFraction float64, name string) (*Stage, error) {
	bm := st.Base()
	tok := b.baseSource(bm)
	consumer := Consumer(st.Method, d.Format)
	if st.Method == "eval" {
		// An evaluation's rows are shaped as the method that reads such
		// data shapes them, so they are the same cache entry.
		consumer = "sft"
		if d.Format == "prompt" {
			consumer = "grpo"
		}
	}
	cfg := PrepareConfig{
		Consumer:   consumer,
		Dataset:    b.datasetConfig(d),
		Tokenizer:  TokenizerConfig{Repo: bm.Repo, Revision: tok.Pin},
		MaxLength:  st.Data.MaxLength,
		OverLength: st.Data.OverLength,
		Packing:    st.Data.Packing,
	}
	if bm.ChatTemplate != "" {
		cfg.Tokenizer.ChatTemplate = bm.ChatTemplate
		cfg.Tokenizer.ChatTemplateSHA256 = b.r.Files[bm.ChatTemplate].SHA256
	}
	if st.Method == "sft" {
		cfg.Backend = st.Backend
		cfg.CompletionOnly = st.CompletionOnly == nil || *st.CompletionOnly
	}
	if consumer == "sft" && st.Method == "eval" {
		// The loss of the answers, as SFT trains them by default.
		cfg.Backend, cfg.CompletionOnly = "trl", true
	}
	if g, ok := st.Rollouts(); ok {
		cfg.MaxPrompt = g.MaxPromptLength
	}
	if evalFraction > 0 {
		// The split is drawn with the seed; without a split the seed
		// changes nothing here and stays out of the key.
		seed := b.r.Seed
		if st.Training.Seed != nil {
			seed = *st.Training.Seed
		}
		cfg.EvalFraction, cfg.Seed = evalFraction, &seed
	}

	mat := prepareMaterial{Kind: "prepare", Config: cfg, Environment: b.env, Entrypoints: entrypointsDigest()}
	// A file's path is where it is, not what it is: only its digest counts.
	if mat.Config.Dataset.Source.Kind == "file" {
		mat.Config.Dataset.Source.Ref = ""
	}
	mat.Config.Tokenizer.ChatTemplate = ""
	k, err := key.Of(key.DomainStage, prepareVersion, mat)
	if err != nil {
		return nil, err
	}
	if ps, ok := b.byKey[k]; ok {
		return ps, nil
	}
	src := cfg.Dataset.Source
	inputs := []Input{{Role: "dataset", Source: &src}, {Role: "tokenizer", Source: tok}}
	if in, ok := b.chatTemplate(bm); ok {
		inputs = append(inputs, in)
	}
	ps := &Stage{
		Name:      name,
		Kind:      "prepare",
		Key:       k,
		ResumeKey: k,
		Inputs:    inputs,
		Config:    cfg,
		Launch:    launch.Prepare(),
	}
	b.byKey[k] = ps
	b.stages = append(b.stages, ps)
	return ps, nil
}

func (b *builder) datasetConfig(d config.Dataset) DatasetConfig {
	dc := DatasetConfig{Format: d.Format, Columns: d.Columns}
	if d.Format == "preference" {
		dc.Prompt = d.Prompt
	}
	if len(dc.Columns) == 0 {
		dc.Columns = nil
	}
	switch {
	case d.File != nil:
		dc.Source = Source{Kind: "file", Ref: d.File.Path, Pin: "sha256:" + d.File.SHA256, Pinned: true}
		dc.Encoding = b.r.Encoding(d)
	case d.Hub != nil:
		dc.Source = Source{Kind: "hub-dataset", Ref: d.Hub.Repo, Pin: d.Hub.Revision, Pinned: ident.IsCommit(d.Hub.Revision)}
		dc.Config, dc.Split = d.Hub.Config, d.Hub.Split
	}
	return dc
}

// Consumer is the prepare consumer of a training method on data of a
// format: the shape of the rows it reads. ORPO and SimPO read DPO's
// (prompt, chosen and rejected token ids), so the three share one prepare
// stage and its cache entry when the rest of the prepare key agrees; RLOO
// reads GRPO's prompts. KTO on preference pairs (vet admits them only with
// kto: unpairPreferences: true) reads DPO's pairs too, and its entrypoint
// makes each a desirable and an undesirable row; KTO on
// "unpaired-preference" data reads rows of its own shape (prompt and
// completion token ids and a label), consumer "kto". The format decides
// only KTO's consumer: every other method reads one kind of data.
func Consumer(method, format string) string {
	switch method {
	case "kto":
		if format == "unpaired-preference" {
			return "kto"
		}
		return "dpo"
	case "orpo", "simpo":
		return "dpo"
	case "rloo":
		return "grpo"
	}
	return method
}
