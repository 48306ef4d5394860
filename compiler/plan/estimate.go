package plan

import (
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
	Checkpointing bool           `json:"checkpointing"`
	Parts         []EstimatePart `json:"parts"`
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
	tp := memory.EstimateThroughput(bm.Arch.Params, st.Adapter.Type == "none", ck, st.Data.Packing || st.Method != "sft",
		r.TrainingProcesses(st), h.GPU.BF16TFLOPS)
	e.TokensPerSecond = float64(int(tp.TokensPerSecond))
	switch {
	case cfg.Training.Steps > 0:
		e.Tokens = float64(cfg.Training.Steps) * float64(cfg.Training.GlobalBatch) * float64(st.Data.MaxLength)
	case st.Data.Train.File != nil && r.DataBytes[st.Data.Train.File.Path] > 0:
		e.Tokens = float64(r.DataBytes[st.Data.Train.File.Path]) / bytesPerToken * cfg.Training.Epochs
	}
	// Rollouts dominate PPO and GRPO and are not in this model of speed:
	// give them no time estimate rather than a wrong one.
	if e.Tokens > 0 && e.TokensPerSecond > 0 && (st.Method == "sft" || st.Method == "reward") {
		e.Hours = e.Tokens / e.TokensPerSecond / 3600
		e.GPUHours = e.Hours * float64(h.GPUs())
	}
	return e
}

func round1(f float64) float64 { return float64(int(f*10+0.5)) / 10 }
