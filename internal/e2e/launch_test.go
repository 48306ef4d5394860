package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGPUsRunTheLauncherWithThatManyProcesses runs a 1×8 recipe with
// --gpus 8 for each multi-process strategy. The launchers are fakes
// (testdata/fakelaunchers: torchrun and accelerate are not installable
// here) that record their command line and start one test-trainer rank per
// process; the real torchrun runs in the Slurm tests.
func TestGPUsRunTheLauncherWithThatManyProcesses(t *testing.T) {
	fakes, _ := filepath.Abs("testdata/fakelaunchers")
	for strategy, want := range map[string][]string{
		"ddp":   {"torchrun --nnodes=1 --nproc-per-node=8 -m ftc.entry reward --config stage.json", "file trainer_args.json present"},
		"zero3": {"torchrun --nnodes=1 --nproc-per-node=8 -m ftc.entry reward --config stage.json", "file ds_config.json present"},
		"fsdp":  {"accelerate launch --config_file accelerate.yaml --num_processes 8 --num_machines 1 -m ftc.entry reward --config stage.json", "config accelerate.yaml present"},
	} {
		t.Run(strategy, func(t *testing.T) {
			e := newEnv(t)
			log := filepath.Join(t.TempDir(), "launch.log")
			env := []string{"PATH=" + fakes + ":" + os.Getenv("PATH"), "FTC_TEST_LAUNCH_LOG=" + log, "FTC_TEST_TRAINER=" + trainerBin, "FTC_ENTRYPOINT=", "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7"}
			set := []string{"--set", "hardware.gpusPerNode=8", "--set", "hardware.strategy=" + strategy, "--gpus", "8", "--python", filepath.Join(fakes, "python")}
			r := e.run(env, set...)
			expect(t, r, 0, 0, 4)
			b, _ := os.ReadFile(log)
			for _, w := range append(want, "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7") {
				if !strings.Contains(string(b), w) {
					t.Errorf("launcher log lacks %q:\n%s", w, b)
				}
			}
			// Eight ranks ran and wrote into the committed output.
			for _, stage := range []string{"rm", "ppo"} {
				ranks := 0
				for i := 0; i < 8; i++ {
					if outputFileQuiet(e, stage, "ranks/rank-"+string(rune('0'+i))) {
						ranks++
					}
				}
				if ranks != 8 {
					t.Errorf("%s: %d of 8 ranks ran", stage, ranks)
				}
			}
			// A --gpus that disagrees with the recipe names both.
			r = e.run(env, "--set", "hardware.gpusPerNode=8", "--set", "hardware.strategy="+strategy, "--gpus", "4")
			if r.code != 2 || !strings.Contains(r.out, "--gpus 4 conflicts with the recipe's hardware.gpusPerNode 8") {
				t.Errorf("conflicting --gpus:\n%s", r.out)
			}
		})
	}
}
