package config

import "fmt"

// CPUError is a --cpu that OnCPU refuses, with the reason.
type CPUError struct {
	Reason string
}

func (e *CPUError) Error() string { return "--cpu: " + e.Reason }

// OnCPU returns r as run on CPUs instead of GPUs (ftc run --cpu, ftc plan
// --cpu): every training stage keeps its process layout (one process per
// GPU the recipe names, after --gpus), its batch and every setting, and
// trains with torch's CPU device. It is the one place that decides --cpu;
// r is not modified.
//
// The device is part of every training stage's key (compiler/plan): a CPU
// run's outputs are never found by a GPU run, nor the other way round.
//
// It refuses what no library can run on a CPU: FSDP (accelerate does not
// shard across CPU processes), a vLLM generation server, flash-attention
// kernels and bitsandbytes' 8-bit optimizers (CUDA kernels only).
func (r *Recipe) OnCPU() (*Recipe, error) {
	if r.CPU {
		return r, nil
	}
	fail := func(format string, args ...any) (*Recipe, error) {
		return nil, &CPUError{Reason: fmt.Sprintf(format, args...)}
	}
	if r.Hardware.Strategy == "fsdp" {
		return fail("strategy fsdp: accelerate does not shard across CPU processes (it would train unsharded, as ddp): run it with --set hardware.strategy=ddp")
	}
	for _, name := range r.SortedStageNames() {
		st := r.Stages[name]
		if st.GRPO != nil && st.GRPO.Generation.Engine == "vllm" {
			return fail("stage %s generates with a vLLM server, which runs on GPUs only: set stages.%s.grpo.generation.engine to \"transformers\"", name, name)
		}
		models := []*Model{st.Model, st.Policy, st.Reference, st.Reward, st.Value}
		for _, rw := range st.Rewards {
			models = append(models, rw.Model)
		}
		for _, m := range models {
			if m != nil && m.Attention == "flash_attention_2" {
				return fail("stage %s loads %s with attention flash_attention_2, a CUDA kernel: set its attention to \"sdpa\"", name, m.Name())
			}
		}
		switch st.Training.Optimizer {
		case "adamw-8bit", "paged-adamw-8bit":
			return fail("stage %s's optimizer %s is bitsandbytes' CUDA kernel: set stages.%s.training.optimizer to \"adamw\"", name, st.Training.Optimizer, name)
		}
	}
	rr := *r
	rr.CPU = true
	return &rr, nil
}
