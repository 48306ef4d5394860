package plan

import (
	"fmt"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/memory"
)

// Estimate is a stage's memory breakdown and speed.
type Estimate struct {
	// PerGPUGiB is the estimated peak memory of one GPU.
	PerGPUGiB   float64 `json:"perGPUGiB"`
	CapacityGiB float64 `json:"capacityGiB"`
	// Verdict is "fits", "fits with offload" or "does not fit".
	Verdict string `json:"verdict"`
	// Checkpointing is the resolved gradient checkpointing.
	Checkpointing bool `json:"checkpointing"`
	// Inference is set for a stage that runs a model forward without
	// gradients as one process on one GPU (DPO's reference, eval):
	// PerGPUGiB is that GPU's, and it has no checkpointing or speed.
	Inference bool           `json:"inference,omitempty"`
	Parts     []EstimatePart `json:"parts"`
	// TokensPerSecond is the estimated training speed over all GPUs.
	TokensPerSecond float64 `json:"tokensPerSecond"`
	// Tokens is the estimated number of tokens trained on (from the data
	// files' sizes, about 4 bytes per token), 0 when unknown.
	Tokens   float64 `json:"tokens,omitempty"`
	Hours    float64 `json:"hours,omitempty"`
	GPUHours float64 `json:"gpuHours,omitempty"`
}

// EstimatePart is one line of the breakdown.
type EstimatePart struct {
	Name string  `json:"name"`
	GiB  float64 `json:"gib"`
	Note string  `json:"note,omitempty"`
}

// bytesPerToken is a rough size of a token in a JSON-lines data file,
// markup included.
const bytesPerToken = 4.0

func estimate(r *config.Recipe, st config.Stage, cfg StageConfig) *Estimate {
	bm := st.Base()
	if bm == nil || r.Hardware.GPU.MemoryGiB == 0 {
		return nil
	}
	ck := cfg.GradientCheckpointing == "on"
	b := memory.Estimate(r.MemoryInput(st, ck))
	h := r.Hardware
	e := &Estimate{
		PerGPUGiB: round1(b.TotalGiB()), CapacityGiB: h.GPU.MemoryGiB, Checkpointing: ck,
		Verdict: b.Verdict(h.Offload.Optimizer || h.Offload.Params),
	}
	for _, p := range b.Parts {
		if p.Bytes > 0 {
			e.Parts = append(e.Parts, EstimatePart{Name: p.Name, GiB: round1(p.Bytes / memory.GiB), Note: p.Note})
		}
	}
	tp := memory.EstimateThroughput(bm.Arch.FLOPsParams(), st.Adapter.Type == "none", ck, st.Data.Packing || st.Method != "sft",
		r.TrainingProcesses(st), h.GPU.BF16TFLOPS)
	e.TokensPerSecond = float64(int(tp.TokensPerSecond))
	switch {
	case cfg.Training.Steps > 0:
		e.Tokens = float64(cfg.Training.Steps) * float64(cfg.Training.GlobalBatch) * float64(st.Data.MaxLength)
	default:
		// Each source's bytes, weighed as the mix weighs its rows.
		var bytes float64
		for _, src := range st.Data.Sources() {
			f := src.Dataset.File
			if f == nil || r.DataBytes[f.Path] <= 0 {
				bytes = 0
				break
			}
			bytes += float64(r.DataBytes[f.Path]) * src.Weight
		}
		e.Tokens = bytes / bytesPerToken * cfg.Training.Epochs
	}
	// Rollouts dominate PPO and GRPO and are not in this model of speed:
	// give them no time estimate rather than a wrong one.
	if e.Tokens > 0 && e.TokensPerSecond > 0 && (st.Method == "sft" || st.Method == "reward") {
		e.Hours = e.Tokens / e.TokensPerSecond / 3600
		e.GPUHours = e.Hours * float64(h.GPUs())
	}
	return e
}

// inferenceEstimate is the estimate of the one-GPU inference stage that
// stage st runs (DPO's reference stage, an eval stage), nil without a
// GPU to compare with.
func inferenceEstimate(r *config.Recipe, st config.Stage) *Estimate {
	_, in, ok := r.InferenceInput(st)
	if !ok || r.Hardware.GPU.MemoryGiB == 0 {
		return nil
	}
	b := memory.EstimateInference(in)
	e := &Estimate{PerGPUGiB: round1(b.TotalGiB()), CapacityGiB: r.Hardware.GPU.MemoryGiB, Verdict: b.Verdict(false), Inference: true}
	for _, p := range b.Parts {
		if p.Bytes > 0 {
			e.Parts = append(e.Parts, EstimatePart{Name: p.Name, GiB: round1(p.Bytes / memory.GiB), Note: p.Note})
		}
	}
	return e
}

func round1(f float64) float64 { return float64(int(f*10+0.5)) / 10 }

// Steps is what a training stage will train: its batch, as the topology
// makes it, its steps and its tokens per step. Counts estimated from the
// data's size are marked ≈ when printed.
type Steps struct {
	GlobalBatch int `json:"globalBatch"`
	MicroBatch  int `json:"microBatch"`
	GradAccum   int `json:"gradAccum"`
	// Processes is the data-parallel world the batch is spread over.
	Processes int `json:"processes"`
	// FixedGlobal is set when the recipe gives training.globalBatch:
	// gradAccum then follows the process count. Otherwise the global batch
	// grows with the processes.
	FixedGlobal bool `json:"fixedGlobalBatch"`
	// Examples is the training rows of one epoch (packed sequences with
	// packing), 0 when unknown.
	Examples      int64 `json:"examples,omitempty"`
	ExamplesExact bool  `json:"examplesExact,omitempty"`
	Packed        bool  `json:"packed,omitempty"`
	// Unit is what an example is: "rows", "packed sequences" or
	// "completions"; "" when the method's steps are not estimated.
	Unit     string  `json:"unit,omitempty"`
	PerEpoch int     `json:"stepsPerEpoch,omitempty"`
	Epochs   float64 `json:"epochs,omitempty"`
	// Total is the optimizer steps of the stage, 0 when unknown.
	Total      int  `json:"totalSteps,omitempty"`
	TotalExact bool `json:"totalExact,omitempty"`
	// TokensPerStep is globalBatch × maxLength: exact with packing, an
	// upper bound without.
	TokensPerStep int64 `json:"tokensPerStep"`
	MaxLength     int   `json:"maxLength"`
}

func steps(r *config.Recipe, st config.Stage, cfg StageConfig) *Steps {
	sp := r.Steps(st)
	s := &Steps{
		GlobalBatch: sp.GlobalBatch, MicroBatch: sp.MicroBatch, GradAccum: sp.GradAccum, Processes: sp.World,
		FixedGlobal: st.Training.GlobalBatch > 0 && st.Training.GradAccum == 0,
		Examples:    sp.Examples, ExamplesExact: sp.ExamplesExact, Packed: sp.Packed, Unit: sp.Unit, PerEpoch: sp.PerEpoch,
		Total: sp.Total, TotalExact: sp.TotalExact, TokensPerStep: sp.TokensPerStep, MaxLength: st.Data.MaxLength,
	}
	if st.Training.Steps == 0 {
		s.Epochs = cfg.Training.Epochs
	}
	return s
}

func about(exact bool) string {
	if exact {
		return ""
	}
	return "≈"
}

// BatchLine says how the global batch is made, and what the topology does
// to it.
func (s *Steps) BatchLine() string {
	l := fmt.Sprintf("global batch %d = micro %d × accum %d × %d process(es)", s.GlobalBatch, s.MicroBatch, s.GradAccum, s.Processes)
	switch {
	case s.FixedGlobal && s.Processes > 1:
		l += fmt.Sprintf(" (accum %d follows from globalBatch for %d processes)", s.GradAccum, s.Processes)
	case !s.FixedGlobal && s.Processes > 1:
		l += fmt.Sprintf(" (%d× the batch of one process: set training.globalBatch to keep it across topologies)", s.Processes)
	}
	return l
}

// StepsLine says how many optimizer steps the stage takes.
func (s *Steps) StepsLine() string {
	switch {
	case s.Epochs == 0 && s.Total > 0:
		return fmt.Sprintf("%d (training.steps)", s.Total)
	case s.Unit == "":
		return fmt.Sprintf("%g epoch(s), steps not estimated for this method", s.Epochs)
	case s.PerEpoch == 0:
		return fmt.Sprintf("%g epoch(s) of data whose size vet did not read", s.Epochs)
	}
	what := s.Unit
	return fmt.Sprintf("%s%d = %s%d per epoch (%s%d %s / %d) × %g epoch(s)",
		about(s.TotalExact), s.Total, about(s.ExamplesExact), s.PerEpoch, about(s.ExamplesExact), s.Examples, what, s.GlobalBatch, s.Epochs)
}

// TokensLine gives the tokens of one step.
func (s *Steps) TokensLine() string {
	if s.Packed {
		return fmt.Sprintf("%d tokens per step (global batch %d × maxLength %d, packed)", s.TokensPerStep, s.GlobalBatch, s.MaxLength)
	}
	return fmt.Sprintf("at most %d tokens per step (global batch %d × maxLength %d)", s.TokensPerStep, s.GlobalBatch, s.MaxLength)
}
