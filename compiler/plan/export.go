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

// configMaterial is what the key of a stage with a config type of its
// own hashes (export, reference, eval): the fields of a training stage's
// material, with that config (its file names emptied by the caller).
type configMaterial struct {
	Kind        string          `json:"kind"`
	Config      any             `json:"config"`
	Inputs      []inputMaterial `json:"inputs"`
	Environment key.Key         `json:"environment"`
	Entrypoints string          `json:"entrypoints"`
	Platform    string          `json:"platform"`
}

// configKey is the key of a stage of kind with config cfg (already
// stripped of file names) and inputs.
func (b *builder) configKey(kind Kind, version int, cfg any, inputs []Input) (key.Key, error) {
	mat := configMaterial{Kind: string(kind), Config: cfg, Environment: b.env, Entrypoints: entrypointsDigest(), Platform: Platform,
		Inputs: material(string(kind), StageConfig{}, inputs, b.env).Inputs}
	return key.Of(key.DomainStage, version, mat)
}

// oneDevice is a stage that runs one process on one device of the
// training hardware (reference, eval), with its target's job files.
func (b *builder) oneDevice(name string, kind Kind, k key.Key, inputs []Input, cfg any) (*Stage, error) {
	s := &Stage{
		Name:      name,
		Kind:      kind,
		Key:       k,
		ResumeKey: k,
		Inputs:    inputs,
		Config:    cfg,
		Launch:    launch.OneDevice(string(kind), b.r.CPU),
		Device:    device(b.r),
	}
	var err error
	if s.Files, err = b.jobFiles(name, s); err != nil {
		return nil, err
	}
	return s, nil
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
	keyed := cfg
	keyed.Model.ChatTemplate = "" // a file's name is not its content
	k, err := b.configKey(KindExport, exportVersion, keyed, inputs)
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
