package compiler_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/plan"
)

func planOpts(t *testing.T, file string, opts plan.Options, sets ...string) (*plan.Plan, error) {
	t.Helper()
	p, diags, err := compiler.PlanWith(file, overrides(t, sets...), compiler.Options{Plan: opts})
	if err != nil && len(diags.Errors()) > 0 {
		return nil, diags
	}
	return p, err
}

// TestCPUIsInTheTrainingKeys plans examples with --cpu: data preparation
// is the same work on either device and keeps its key; every training
// stage gets a key (and a resume key) of its own, so a CPU run's outputs
// are never found by a GPU run, nor its checkpoints resumed there; the
// export stage follows its training stage. The processes and batch are
// the recipe's, torch is shown no GPU, the stage config and the trainer
// arguments say cpu, and the GPU plan does not mention a device at all
// (its keys are what they were before --cpu existed: the examples'
// goldens did not move).
func TestCPUIsInTheTrainingKeys(t *testing.T) {
	for example, sets := range map[string][]string{
		// QLoRA's paged 8-bit optimizer is CUDA's only.
		"sft-export": {`stages.sft.training.optimizer="adamw"`},
		"sft-ddp":    nil, "sft-zero2": nil, "rlhf-ppo": nil,
	} {
		file := "../examples/" + example + "/recipe.cue"
		gpu, err := planOpts(t, file, plan.Options{}, sets...)
		if err != nil {
			t.Fatal(err)
		}
		cpu, err := planOpts(t, file, plan.Options{CPU: true}, sets...)
		if err != nil {
			t.Fatalf("%s --cpu: %v", example, err)
		}
		if cpu.Hardware.Device != "cpu" || gpu.Hardware.Device != "" {
			t.Errorf("%s: hardware device %q (cpu) and %q (gpu)", example, cpu.Hardware.Device, gpu.Hardware.Device)
		}
		for i, c := range cpu.Stages {
			g := gpu.Stages[i]
			if c.Name != g.Name {
				t.Fatalf("%s: stage %d is %s on the CPU and %s on GPUs", example, i, c.Name, g.Name)
			}
			if c.CPUOnly() {
				if c.Kind == "prepare" && c.Key != g.Key {
					t.Errorf("%s: %s has another key on the CPU: %s, %s", example, c.Name, c.Key, g.Key)
				}
				if c.Kind == "export" && c.Key == g.Key {
					t.Errorf("%s: %s reads a CPU-trained model under the GPU key", example, c.Name)
				}
				continue
			}
			if c.Key == g.Key || c.ResumeKey == g.ResumeKey {
				t.Errorf("%s: %s has the GPU run's key or resume key on the CPU", example, c.Name)
			}
			if !c.OnCPU() || g.OnCPU() || c.Device != "cpu" {
				t.Errorf("%s: %s OnCPU %v (cpu plan), %v (gpu plan), device %q", example, c.Name, c.OnCPU(), g.OnCPU(), c.Device)
			}
			if v, ok := c.Launch.Env["CUDA_VISIBLE_DEVICES"]; !ok || v != "" || len(c.Launch.GPUs) != 0 {
				t.Errorf("%s: %s launches with env %v and GPUs %v on the CPU", example, c.Name, c.Launch.Env, c.Launch.GPUs)
			}
			if _, ok := g.Launch.Env["CUDA_VISIBLE_DEVICES"]; ok {
				t.Errorf("%s: %s hides the GPUs on a GPU run", example, c.Name)
			}
			if c.Launch.Processes != g.Launch.Processes || strings.Join(c.Launch.Argv, " ") != strings.Join(g.Launch.Argv, " ") {
				t.Errorf("%s: %s starts %v (%d processes) on the CPU, %v (%d) on GPUs", example, c.Name, c.Launch.Argv, c.Launch.Processes, g.Launch.Argv, g.Launch.Processes)
			}
			cfg, _ := json.Marshal(c.Config)
			gcfg, _ := json.Marshal(g.Config)
			if !strings.Contains(string(cfg), `"distributed":{"device":"cpu",`) || strings.Contains(string(gcfg), `"device"`) {
				t.Errorf("%s: %s stage config\n cpu %s\n gpu %s", example, c.Name, cfg, gcfg)
			}
			if ta, ok := c.Files["trainer_args.json"]; ok && !strings.Contains(ta, `"use_cpu": true`) {
				t.Errorf("%s: %s trainer_args.json does not say use_cpu:\n%s", example, c.Name, ta)
			}
			if ta, ok := g.Files["trainer_args.json"]; ok && strings.Contains(ta, "use_cpu") {
				t.Errorf("%s: %s GPU trainer_args.json says use_cpu:\n%s", example, c.Name, ta)
			}
		}
	}
}

// TestCPUWithGPUsRescalesFirst: --gpus 1 --cpu runs a DDP recipe as one
// CPU process with the global batch kept, and its key is neither the
// 8-process CPU run's nor the one-GPU run's.
func TestCPUWithGPUsRescalesFirst(t *testing.T) {
	file := "../examples/sft-ddp/recipe.cue"
	one, err := planOpts(t, file, plan.Options{GPUs: 1, CPU: true})
	if err != nil {
		t.Fatal(err)
	}
	eight, err := planOpts(t, file, plan.Options{CPU: true})
	if err != nil {
		t.Fatal(err)
	}
	oneGPU, err := planOpts(t, file, plan.Options{GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := stage(one, "sft")
	if s.Launch.Processes != 1 || s.Device != "cpu" || one.Rescaled == nil || one.Rescaled.Stages[0].ToGradAccum != 16 {
		t.Fatalf("--gpus 1 --cpu: %d processes, device %q, rescaled %+v", s.Launch.Processes, s.Device, one.Rescaled)
	}
	if s.Key == stage(eight, "sft").Key || s.Key == stage(oneGPU, "sft").Key {
		t.Error("--gpus 1 --cpu shares a key with --cpu or with --gpus 1")
	}
	if s.ResumeKey != stage(eight, "sft").ResumeKey {
		t.Error("a CPU run interrupted on 8 processes is not found on 1 (the resume key leaves the layout out)")
	}
}

// TestCPURefused: what no library runs on a CPU is refused with the
// reason and the setting to change, as a flag error (exit 2), not the
// recipe's.
func TestCPURefused(t *testing.T) {
	for _, c := range []struct {
		example string
		sets    []string
		want    string
	}{
		{"sft-fsdp", nil, "--cpu: strategy fsdp: accelerate does not shard across CPU processes"},
		{"grpo-ddp", nil, "generates with a vLLM server, which runs on GPUs only"},
		{"grpo-ddp", []string{`stages.grpo.grpo.generation.engine="transformers"`, `stages.grpo.model.attention="flash_attention_2"`}, "with attention flash_attention_2, a CUDA kernel: set its attention to \"sdpa\""},
		{"sft-trl-single", []string{`stages.sft.training.optimizer="paged-adamw-8bit"`}, "optimizer paged-adamw-8bit is bitsandbytes' CUDA kernel"},
	} {
		_, err := planOpts(t, "../examples/"+c.example+"/recipe.cue", plan.Options{CPU: true}, c.sets...)
		var ce *config.CPUError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v --cpu: got %v, want a CPUError with %q", c.example, c.sets, err, c.want)
		}
	}
}
