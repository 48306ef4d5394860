package plan

import (
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/key"
	"github.com/ftc-dev/ftc/compiler/launch"
)

// exportVersion is the version of the export key material.
const exportVersion = 1

// ExportConfig is what the export entrypoint reads: the trained model
// (input role "model", on the base named by Model) and the form to write
// it in.
type ExportConfig struct {
	// Form is "adapter", "merged" or "full".
	Form string `json:"form"`
	// DType is the precision of merged or full weights ("bf16").
	DType string `json:"dtype"`
	// Model is the trained model: its base (repo at revision, the input
	// role "base") and what the weights in the input role "model" are.
	Model ModelConfig `json:"model"`
}

type exportMaterial struct {
	Kind        string          `json:"kind"`
	Config      ExportConfig    `json:"config"`
	Inputs      []inputMaterial `json:"inputs"`
	Environment key.Key         `json:"environment"`
	Entrypoints string          `json:"entrypoints"`
	Platform    string          `json:"platform"`
}

// CPUOnly reports whether the stage runs as one CPU process on the
// machine running ftc (data preparation, export), not on the GPUs.
func (s *Stage) CPUOnly() bool { return !s.Kind.Training() }

// OnCPU reports whether the stage uses no GPU: CPUOnly, or a training
// stage run on CPUs (--cpu).
func (s *Stage) OnCPU() bool { return s.CPUOnly() || s.Device == "cpu" }

// export plans the export stage of st ("<stage>.export") when the recipe
// asks for one. It reads the training stage's output and the base model,
// so it is keyed by the training stage's key: asking again is a hit.
func (b *builder) export(st config.Stage, trained *Stage) (*Stage, error) {
	e := st.Export
	if e == nil {
		return nil, nil
	}
	bm := st.Base()
	base := b.baseSource(bm)
	mc := ModelConfig{Repo: bm.Repo, Revision: base.Pin, DType: e.DType, Attention: bm.Attention, Family: bm.Arch.Family,
		Input: "model", Kind: st.Output.WeightsKind(), Adapter: st.Adapter.Type}
	if bm.ChatTemplate != "" {
		mc.ChatTemplate = bm.ChatTemplate
		mc.ChatTemplateSHA256 = b.r.Files[bm.ChatTemplate].SHA256
	}
	cfg := ExportConfig{Form: e.Form, DType: e.DType, Model: mc}
	inputs := []Input{
		{Role: "model", Stage: trained.Name, Key: trained.Key},
		{Role: "base", Source: base},
	}
	if in, ok := b.chatTemplate(bm); ok {
		inputs = append(inputs, in)
	}
	mat := exportMaterial{Kind: "export", Config: cfg, Environment: b.env, Entrypoints: entrypointsDigest(), Platform: Platform}
	mat.Config.Model.ChatTemplate = "" // a file's name is not its content
	mat.Inputs = material("export", StageConfig{}, inputs, b.env).Inputs
	k, err := key.Of(key.DomainStage, exportVersion, mat)
	if err != nil {
		return nil, err
	}
	return &Stage{
		Name:      st.Name + ".export",
		Kind:      KindExport,
		Key:       k,
		ResumeKey: k,
		Inputs:    inputs,
		Config:    cfg,
		Launch:    launch.Export(),
	}, nil
}
