package compiler_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/plan"
)

func planGPUs(t *testing.T, file string, gpus int, sets ...string) (*plan.Plan, error) {
	t.Helper()
	p, diags, err := compiler.PlanWith(file, overrides(t, sets...), compiler.Options{Plan: plan.Options{GPUs: gpus}})
	if err != nil && len(diags.Errors()) > 0 {
		return nil, diags
	}
	return p, err
}

func stage(p *plan.Plan, name string) *plan.Stage {
	for _, s := range p.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// TestGPUsKeepTheGlobalBatch plans examples on another number of GPUs
// (ftc plan/run --gpus N): the processes follow, accumulation takes up the
// change and the global batch stays, whether the recipe gives globalBatch
// (sft-ddp) or gradAccum (sft-zero3); the plan says what changed. The
// keys are those of the recipe edited to that count (one decision, the
// same material), and the resume key is the recipe's own: a run
// interrupted on 8 GPUs is found on 4.
func TestGPUsKeepTheGlobalBatch(t *testing.T) {
	for _, c := range []struct {
		example, stage  string
		gpus            int
		accum, wasAccum int
		sets            []string
	}{
		{"sft-ddp", "sft", 4, 4, 2, []string{"hardware.gpusPerNode=4"}},
		{"sft-ddp", "sft", 1, 16, 2, []string{"hardware.gpusPerNode=1"}},
		{"sft-ddp", "sft", 16, 1, 2, []string{"hardware.gpusPerNode=16"}},
		{"sft-zero3", "sft", 4, 8, 4, []string{"hardware.gpusPerNode=4", "stages.sft.training.gradAccum=8"}},
	} {
		file := "../examples/" + c.example + "/recipe.cue"
		p, err := planGPUs(t, file, c.gpus)
		if err != nil {
			t.Fatalf("%s --gpus %d: %v", c.example, c.gpus, err)
		}
		asWritten, err := planGPUs(t, file, 0)
		if err != nil {
			t.Fatal(err)
		}
		s, was := stage(p, c.stage), stage(asWritten, c.stage)
		cfg := s.Config.(plan.StageConfig)
		if s.Launch.Processes != c.gpus || cfg.Distributed.Processes != c.gpus || cfg.Training.GradAccum != c.accum ||
			cfg.Training.GlobalBatch != was.Config.(plan.StageConfig).Training.GlobalBatch {
			t.Errorf("%s --gpus %d: %d processes, accum %d, global batch %d; want %d, %d, %d", c.example, c.gpus,
				s.Launch.Processes, cfg.Training.GradAccum, cfg.Training.GlobalBatch, c.gpus, c.accum, was.Config.(plan.StageConfig).Training.GlobalBatch)
		}
		if c.gpus > 1 && !strings.Contains(strings.Join(s.Launch.Argv, " "), "--nproc-per-node="+strconv.Itoa(c.gpus)) {
			t.Errorf("%s --gpus %d: launch %v", c.example, c.gpus, s.Launch.Argv)
		}
		rs := p.Rescaled
		if rs == nil || rs.FromGPUs != 8 || rs.ToGPUs != c.gpus || len(rs.Stages) != 1 ||
			rs.Stages[0] != (config.RescaledStage{Stage: c.stage, FromProcesses: 8, ToProcesses: c.gpus, FromGradAccum: c.wasAccum, ToGradAccum: c.accum,
				MicroBatch: cfg.Training.MicroBatch, GlobalBatch: cfg.Training.GlobalBatch}) {
			t.Errorf("%s --gpus %d: rescaled %+v", c.example, c.gpus, rs)
		}
		if asWritten.Rescaled != nil {
			t.Errorf("%s as written says it was rescaled: %+v", c.example, asWritten.Rescaled)
		}
		edited := keysOf(t, file, c.sets...)
		for name, k := range stageKeys(p) {
			if edited[name] != k {
				t.Errorf("%s --gpus %d: stage %s key %s, the recipe edited to %v has %s", c.example, c.gpus, name, k.Short(), c.sets, edited[name].Short())
			}
		}
		if s.Key == was.Key {
			t.Errorf("%s --gpus %d: the key did not change with the process layout", c.example, c.gpus)
		}
		if s.ResumeKey != was.ResumeKey {
			t.Errorf("%s --gpus %d: the resume key changed: a run interrupted on 8 GPUs would not be found", c.example, c.gpus)
		}
		// plan.BuildWith with the option alone gives the same plan.
		r, _, err := compiler.Vet(file, nil)
		if err != nil {
			t.Fatal(err)
		}
		direct, err := plan.BuildWith(r, plan.Options{GPUs: c.gpus})
		if err != nil || stage(direct, c.stage).Key != s.Key || direct.Rescaled == nil {
			t.Errorf("%s: plan.BuildWith(GPUs: %d) differs from vetting with it: %v", c.example, c.gpus, err)
		}
	}
}

// TestGPUsRefused lists what --gpus cannot do, each with its reason: a
// count that cannot keep the global batch (with the nearest that can), a
// multi-node recipe, the single-process strategy, sharding on one GPU,
// a vLLM server that would leave no GPU to train.
func TestGPUsRefused(t *testing.T) {
	for _, c := range []struct {
		example string
		gpus    int
		sets    []string
		want    string
	}{
		{"sft-ddp", 3, nil, "--gpus 3: stage sft's global batch 64 is not a multiple of microBatch 4 × 3 process(es) = 12, so no whole gradient accumulation keeps it; nearest counts that keep every global batch: --gpus 2 or --gpus 4"},
		{"sft-ddp", 32, nil, "nearest counts that keep every global batch: --gpus 16"},
		{"sft-ddp", 0, nil, ""}, // 0 is "not given"
		{"multinode-sft", 8, nil, "--gpus 8: the recipe's hardware is 2 nodes × 8 GPUs per node = 16 GPUs; --gpus rescales a one-node recipe only"},
		{"sft-trl-single", 2, nil, "--gpus 2: strategy single runs one process; --gpus rescales a data-parallel strategy (ddp, fsdp, zero2, zero3): add --set hardware.strategy=ddp"},
		{"sft-zero3", 1, nil, "--gpus 1: strategy zero3 shards over the GPUs, and one GPU has nothing to shard"},
		{"sft-zero3", 3, nil, "nearest counts that keep every global batch: --gpus 2 or --gpus 4"},
		{"sft-ddp", -1, nil, "--gpus -1: want at least 1 GPU"},
	} {
		_, err := planGPUs(t, "../examples/"+c.example+"/recipe.cue", c.gpus, c.sets...)
		var re *config.RescaleError
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s --gpus %d: %v", c.example, c.gpus, err)
		case c.want != "" && (!errors.As(err, &re) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s --gpus %d: got %v, want a RescaleError with %q", c.example, c.gpus, err, c.want)
		}
	}
}
