package runner

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/compiler/plan"
)

func graph() *plan.Plan {
	return &plan.Plan{Recipe: "r", Stages: []*plan.Stage{
		{Name: "rm.prepare", Kind: plan.KindPrepare},
		{Name: "rm", Kind: plan.KindReward, Inputs: []plan.Input{{Role: "train", Stage: "rm.prepare"}}},
		{Name: "sft.prepare", Kind: plan.KindPrepare},
		{Name: "sft", Kind: plan.KindSFT, Inputs: []plan.Input{{Role: "train", Stage: "sft.prepare"}}},
		{Name: "sft.export", Kind: plan.KindExport, Inputs: []plan.Input{{Role: "model", Stage: "sft"}}},
		{Name: "ppo", Kind: plan.KindPPO, Inputs: []plan.Input{{Role: "policy", Stage: "sft"}, {Role: "reward", Stage: "rm"}}},
	}}
}

func names(p *plan.Plan) []string {
	var out []string
	for _, s := range p.Stages {
		out = append(out, s.Name)
	}
	return out
}

func TestUpToKeepsWhatAStageReadsInPlanOrder(t *testing.T) {
	p := graph()
	if got, want := names(UpTo(p, "sft.export")), []string{"sft.prepare", "sft", "sft.export"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sft.export: %v, want %v", got, want)
	}
	if got := names(UpTo(p, "ppo")); len(got) != 5 || got[4] != "ppo" {
		t.Errorf("ppo: %v", got)
	}
	if len(p.Stages) != 6 {
		t.Error("UpTo changed the plan it was given")
	}
}

func TestCheckStageNamesRefusesATypo(t *testing.T) {
	o := Options{Force: []string{"sft"}, Restart: []string{"*"}}
	if err := o.checkStageNames(graph()); err != nil {
		t.Fatal(err)
	}
	o.Force = []string{"sfft"}
	err := o.checkStageNames(graph())
	if err == nil || !strings.HasPrefix(err.Error(), `--force sfft: the recipe has no stage "sfft"`) || !strings.Contains(err.Error(), "sft") {
		t.Fatalf("typo: %v", err)
	}
	o.Force, o.Restart = nil, []string{"rmm"}
	if err := o.checkStageNames(graph()); err == nil || !strings.HasPrefix(err.Error(), "--restart rmm") {
		t.Fatalf("restart typo: %v", err)
	}
}

func TestValidateIsAUsageError(t *testing.T) {
	for _, c := range []struct {
		o    Options
		cpu  bool
		want string
	}{
		{Options{Backend: "local", PrepareOn: "host"}, false, ""},
		{Options{Backend: "slurm", PrepareOn: "cluster"}, false, ""},
		{Options{Backend: "local", PrepareOn: "moon"}, false, `--prepare-on "moon"`},
		{Options{Backend: "local", PrepareOn: "cluster"}, false, "only --backend slurm submits"},
		{Options{Backend: "kubernetes", PrepareOn: "cluster"}, false, "the kubernetes backend runs only"},
		{Options{Backend: "slurm", PrepareOn: "host"}, true, "--cpu: --backend slurm"},
	} {
		err := c.o.Validate(c.cpu)
		if c.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", c.o, err)
			}
			continue
		}
		var ue UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want a usage error with %q", c.o, err, c.want)
		}
	}
}

func TestCheckTopology(t *testing.T) {
	two := config.Hardware{Nodes: 2, GPUsPerNode: 4, Target: "slurm"}
	o := Options{Backend: "local"}
	if err := o.CheckTopology(two, false); err != nil {
		t.Errorf("no training stage: %v", err)
	}
	err := o.CheckTopology(two, true)
	if err == nil || !strings.Contains(err.Error(), "2 nodes × 4 GPUs per node = 8 GPUs (target slurm), and the local backend (the default of --backend) runs on this machine only: run it with --backend slurm") {
		t.Errorf("two nodes locally: %v", err)
	}
	o = Options{Backend: "docker", BackendSet: true, GPUs: 8, GPUsSet: true}
	if err := o.CheckTopology(two, true); err == nil || !strings.HasPrefix(err.Error(), "--gpus 8: ") || !strings.Contains(err.Error(), "--backend docker runs") {
		t.Errorf("--gpus 8 on docker: %v", err)
	}
	if err := (&Options{Backend: "slurm"}).CheckTopology(two, true); err != nil {
		t.Errorf("slurm: %v", err)
	}
	if err := (&Options{Backend: "kubernetes"}).CheckTopology(two, true); err == nil || !strings.Contains(err.Error(), `this recipe's target is "slurm"`) {
		t.Errorf("kubernetes on a slurm target: %v", err)
	}
}

func TestGPUListHonoursCUDAVisibleDevices(t *testing.T) {
	h := config.Hardware{Nodes: 1, GPUsPerNode: 2}
	t.Setenv("CUDA_VISIBLE_DEVICES", "")
	if got, err := GPUList(0, false, h); err != nil || !reflect.DeepEqual(got, []int{0, 1}) {
		t.Errorf("recipe's count: %v %v", got, err)
	}
	t.Setenv("CUDA_VISIBLE_DEVICES", "3,5,7")
	if got, err := GPUList(3, true, h); err != nil || !reflect.DeepEqual(got, []int{3, 5, 7}) {
		t.Errorf("--gpus 3: %v %v", got, err)
	}
	if _, err := GPUList(4, true, h); err == nil || !strings.Contains(err.Error(), "CUDA_VISIBLE_DEVICES lists 3") {
		t.Errorf("--gpus 4 of 3 visible: %v", err)
	}
}

func TestBackendNeedsAnImageForContainers(t *testing.T) {
	for _, b := range []string{"docker", "podman"} {
		if _, err := (&Options{Backend: b}).backend(); err == nil || !strings.Contains(err.Error(), "give --image") {
			t.Errorf("%s without --image: %v", b, err)
		}
	}
	if _, err := (&Options{Backend: "lxc"}).backend(); err == nil || !strings.HasPrefix(err.Error(), `--backend "lxc"`) {
		t.Errorf("unknown backend: %v", err)
	}
}

func TestFindExport(t *testing.T) {
	p := graph()
	if s, err := FindExport(p, ""); err != nil || s.Name != "sft.export" {
		t.Errorf("the only export: %v %v", s, err)
	}
	if s, err := FindExport(p, "sft"); err != nil || s.Name != "sft.export" {
		t.Errorf("sft: %v %v", s, err)
	}
	if _, err := FindExport(p, "rm"); err == nil || err.Error() != `stage "rm" has no export (stages with one: sft)` {
		t.Errorf("rm: %v", err)
	}
	p.Stages = p.Stages[:4]
	if _, err := FindExport(p, ""); err == nil || !strings.Contains(err.Error(), "exports no model") {
		t.Errorf("none: %v", err)
	}
}

func TestWritePlanFilesRemovesStaleJobFiles(t *testing.T) {
	dir := t.TempDir()
	p := &plan.Plan{Recipe: "r", Hardware: plan.Hardware{Target: "slurm"}, Stages: []*plan.Stage{
		{Name: "sft", Kind: plan.KindSFT, Key: "sha256:00", Launch: launch.Plan{Argv: []string{"python", "-m", launch.Entrypoint}},
			Files: map[string]string{"trainer_args.json": "{}\n"}},
	}}
	if err := os.MkdirAll(filepath.Join(dir, "sft"), 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "sft", launch.SbatchFile)
	os.WriteFile(stale, []byte("#!/bin/sh\n"), 0o644)
	if err := WritePlanFiles(dir, p); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"plan.json", "sft/stage-config.json", "sft/trainer_args.json", "sft/" + launch.ScriptFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("a job file of an earlier plan survived: %v", err)
	}
	if m := JobFilesMissingImage(p); !reflect.DeepEqual(m.Sbatch, []string{"sft"}) || m.Kubernetes != nil {
		t.Errorf("missing image: %+v", m)
	}
}
