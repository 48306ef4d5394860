package launch_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/launch"
)

// testImage is a stage image by digest for the container runtimes.
const testImage = "registry.example.com/ftc/env:pinned-2025q1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

const testKey = "sha256:62e10394929d28d02d0b343cfd6a956175fce64fcd817eb1f5be3eae3cb91c3d"

func hardware(nodes, gpus int, strategy config.Strategy) config.Hardware {
	return config.Hardware{Nodes: nodes, GPUsPerNode: gpus, Strategy: strategy,
		Rendezvous: config.Rendezvous{Port: 29500, Backend: "c10d"}}
}

func sft() config.Stage { return config.Stage{Name: "sft", Method: "sft"} }

// sbatchCases are the golden scripts in testdata/sbatch: one node, several
// nodes (both rendezvous backends), pyxis, apptainer, a GRPO generation
// server and a CPU-only data stage.
func sbatchCases() map[string]launch.SbatchInput {
	multi := hardware(2, 8, "zero3")
	multi.NCCL = config.NCCL{SocketIfname: "eth0", IBHCA: "mlx5", TimeoutMinutes: 60}
	static := hardware(4, 8, "ddp")
	static.Rendezvous.Backend = "static"
	fsdp := hardware(1, 8, "fsdp")
	grpo := config.Stage{Name: "grpo", Method: "grpo", GRPO: &config.GRPO{Generation: config.Generation{
		Engine: "vllm", GPUs: 1, Port: 8000, GroupPort: 51216, MemoryUtilization: 0.9}}}
	run := "/shared/ftc/runs/5f0c2a"
	return map[string]launch.SbatchInput{
		"single-node": {
			Plan: launch.Training(sft(), hardware(1, 2, "ddp"), "62e10394929d", false), Stage: "sft", Key: testKey,
			Slurm: config.Slurm{Time: "04:00:00", Container: "none"}, RunDir: run, GraceSeconds: 120,
		},
		"multi-node": {
			Plan: launch.Training(sft(), multi, "62e10394929d", false), Stage: "sft", Key: testKey,
			Slurm:  config.Slurm{Partition: "gpu", Account: "ml-research", QOS: "high", Time: "1-00:00:00", Container: "none"},
			RunDir: run, Env: map[string]string{"HF_HUB_OFFLINE": "1", "NCCL_DEBUG": "WARN"}, CPUsPerTask: 96,
			GraceSeconds: 300,
		},
		"multi-node-static": {
			Plan: launch.Training(sft(), static, "62e10394929d", false), Stage: "sft", Key: testKey,
			Slurm: config.Slurm{Partition: "gpu", Time: "12:00:00", Container: "none"}, RunDir: run,
		},
		"pyxis": {
			Plan: launch.Training(sft(), multi, "62e10394929d", false), Stage: "sft", Key: testKey,
			Slurm:  config.Slurm{Partition: "gpu", Account: "ml-research", Time: "1-00:00:00", Container: "pyxis"},
			Image:  testImage,
			RunDir: run, Mounts: []string{"/shared/ftc/cache:/shared/ftc/cache"},
		},
		"apptainer": {
			Plan: launch.Training(sft(), fsdp, "62e10394929d", false), Stage: "sft", Key: testKey,
			Slurm:  config.Slurm{Partition: "gpu", Time: "04:00:00", Container: "apptainer"},
			Image:  testImage,
			RunDir: "/shared/ftc runs/5f0c2a", Mounts: []string{"/shared/ftc/cache:/shared/ftc/cache"},
		},
		"grpo-server": {
			Plan: launch.Training(grpo, hardware(1, 8, "ddp"), "62e10394929d", false), Stage: "grpo", Key: testKey,
			Slurm: config.Slurm{Time: "04:00:00", Container: "none"}, RunDir: run,
		},
		"prepare": {
			Plan: launch.Prepare(), Stage: "sft.prepare", Key: testKey,
			Slurm: config.Slurm{Time: "04:00:00", Container: "none"}, RunDir: run,
		},
	}
}

// TestSbatchGolden compares rendered scripts with testdata/sbatch/*.sbatch.
// Refresh with FTC_UPDATE_GOLDEN=1 after a deliberate change.
func TestSbatchGolden(t *testing.T) {
	for name, in := range sbatchCases() {
		t.Run(name, func(t *testing.T) {
			got, err := launch.Sbatch(in)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := launch.Sbatch(in)
			if !bytes.Equal(got, again) {
				t.Fatal("two renderings differ")
			}
			golden(t, filepath.Join("testdata", "sbatch", name+".sbatch"), got)
		})
	}
}

// TestSbatchExamples renders every example's stages, with the recipe's
// Slurm settings where it has them, into testdata/sbatch/examples. The
// scripts name no run directory: they are what a plan would ship, to be
// submitted from the stage's run directory.
func TestSbatchExamples(t *testing.T) {
	recipes, err := filepath.Glob("../../examples/*/recipe.cue")
	if err != nil || len(recipes) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, r := range recipes {
		name := filepath.Base(filepath.Dir(r))
		t.Run(name, func(t *testing.T) {
			p, diags, err := compiler.Plan(r, nil)
			if err != nil {
				t.Fatalf("%v\n%v", err, diags)
			}
			cfg, _, err := compiler.Vet(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			settings := config.Slurm{Time: "04:00:00", Container: "none"}
			if cfg.Hardware.Slurm != nil {
				settings = *cfg.Hardware.Slurm
			}
			var ar txtar.Archive
			ar.Comment = []byte("Batch scripts of example " + name + ", one per stage (FTC_UPDATE_GOLDEN=1 refreshes).\n")
			for _, s := range p.Stages {
				grace := 0
				if !s.CPUOnly() {
					grace = cfg.Hardware.Preemption.GraceSeconds // as plan.files does
				}
				b, err := launch.Sbatch(launch.SbatchInput{
					GraceSeconds: grace,
					Plan:         s.Launch, Stage: s.Name, Key: string(s.Key), Slurm: settings, Image: testImage,
				})
				if err != nil {
					t.Fatalf("stage %s: %v", s.Name, err)
				}
				ar.Files = append(ar.Files, txtar.File{Name: s.Name + ".sbatch", Data: b})
			}
			golden(t, filepath.Join("testdata", "sbatch", "examples", name+".txtar"), txtar.Format(&ar))
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if os.Getenv("FTC_UPDATE_GOLDEN") != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with FTC_UPDATE_GOLDEN=1 to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s changed (-golden +got); if deliberate, refresh with FTC_UPDATE_GOLDEN=1:\n%s", path, diff)
	}
}

// TestSbatchRules checks what every script must say, whatever the case.
func TestSbatchRules(t *testing.T) {
	for name, in := range sbatchCases() {
		b, err := launch.Sbatch(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s := string(b)
		for _, want := range []string{
			"#!/bin/bash\n", "#SBATCH --ntasks-per-node=1\n", "#SBATCH --requeue\n", "set -euo pipefail\n",
			`FTC_MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | sed -n 1p)`,
			`export FTC_NODE_RANK="$SLURM_NODEID"`, `bash -c "$ftc_node"`,
		} {
			if !strings.Contains(s, want) {
				t.Errorf("%s: script lacks %q", name, want)
			}
		}
		// Directives come before the first command, or sbatch ignores them.
		head, _, _ := strings.Cut(s, "set -euo")
		if strings.Count(head, "#SBATCH") != strings.Count(s, "#SBATCH") {
			t.Errorf("%s: an #SBATCH line after the first command", name)
		}
		// Every node runs one launcher: srun starts one task per node.
		if !strings.Contains(s, "--ntasks-per-node=1 ") {
			t.Errorf("%s: srun does not start one task per node", name)
		}
		// The multi-node argv's per-node references expand on the node and
		// nowhere else.
		if in.Plan.Nodes > 1 && !strings.Contains(s, `"$FTC_MASTER_ADDR"`) && !strings.Contains(s, `"$FTC_NODE_RANK"`) {
			t.Errorf("%s: multi-node command does not refer to the rendezvous", name)
		}
		if in.Slurm.Container != "none" && !strings.Contains(s, "sha256:0123456789abcdef") {
			t.Errorf("%s: image not pinned by digest", name)
		}
	}
}

func TestSbatchRefuses(t *testing.T) {
	base := sbatchCases()["single-node"]
	for name, mut := range map[string]func(*launch.SbatchInput){
		"relative run dir":     func(in *launch.SbatchInput) { in.RunDir = "runs/x" },
		"run dir with a colon": func(in *launch.SbatchInput) { in.RunDir = "/runs/a:b" },
		"pyxis without image":  func(in *launch.SbatchInput) { in.Slurm.Container = "pyxis" },
		"image by tag": func(in *launch.SbatchInput) {
			in.Slurm.Container = "apptainer"
			in.Image = "registry.example.com/ftc/env:latest"
		},
		"unknown runtime":   func(in *launch.SbatchInput) { in.Slurm.Container = "docker" },
		"quote in a path":   func(in *launch.SbatchInput) { in.RunDir = `/runs/"x"` },
		"bad variable name": func(in *launch.SbatchInput) { in.Env = map[string]string{"A-B": "1"} },
		"line break":        func(in *launch.SbatchInput) { in.Env = map[string]string{"A": "1\n2"} },
		"empty command":     func(in *launch.SbatchInput) { in.Plan.Argv = nil },
		"bad mount": func(in *launch.SbatchInput) {
			in.Slurm.Container = "apptainer"
			in.Image = testImage
			in.Mounts = []string{"cache"}
		},
	} {
		in := base
		mut(&in)
		if _, err := launch.Sbatch(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSbatchQuotesArgv(t *testing.T) {
	in := sbatchCases()["single-node"]
	in.Plan.Argv = []string{"python", "-c", "print('$HOME; rm -rf /')", "--rank=$FTC_NODE_RANK", "$FTC_NODE_RANKS-$FTC_NODE_RANK", "--at=${FTC_MASTER_ADDR}:1"}
	b, err := launch.Sbatch(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `exec python -c 'print('\''$HOME; rm -rf /'\'')' --rank="$FTC_NODE_RANK" '$FTC_NODE_RANKS-'"$FTC_NODE_RANK" --at="$FTC_MASTER_ADDR":1` + "\n"
	if !strings.Contains(string(b), want) {
		t.Errorf("argv quoted as\n%s\nwant a line\n%s", b, want)
	}
}
