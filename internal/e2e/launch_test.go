package e2e

import (
	"fmt"
	"net"
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
			env := []string{"PATH=" + fakes + ":" + os.Getenv("PATH"), "FTC_TEST_LAUNCH_LOG=" + log, "FTC_TEST_TRAINER=" + trainerBin, "FTC_ENTRYPOINT=", "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7", "FTC_TEST_PROBE=" + fakeProbe("pinned-2025q1", 8, nil)}
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
			// A --gpus that cannot keep the global batch (8 = microBatch 1 ×
			// 8 processes) is refused with the nearest counts that can.
			r = e.run(env, "--set", "hardware.gpusPerNode=8", "--set", "hardware.strategy="+strategy, "--gpus", "3")
			if r.code != 2 || !strings.Contains(r.out, "--gpus 3: stage ppo's global batch 8 is not a multiple of microBatch 1 × 3 process(es) = 3") ||
				!strings.Contains(r.out, "nearest counts that keep every global batch: --gpus 2 or --gpus 4") {
				t.Errorf("--gpus 3:\n%s", r.out)
			}
		})
	}
}

// TestGPUsRescaleTheDDPExample runs examples/sft-ddp, written for one node
// of 8 GPUs (globalBatch 64 = microBatch 4 × accumulation 2 × 8), with
// --gpus 4: the fake torchrun starts 4 ranks on the first 4 visible GPUs,
// the trainer is given accumulation 4 and the same global batch, and the
// run says so before it starts.
func TestGPUsRescaleTheDDPExample(t *testing.T) {
	fakes, _ := filepath.Abs("testdata/fakelaunchers")
	dir := t.TempDir()
	copyDir(t, "../../examples/sft-ddp", filepath.Join(dir, "recipe"))
	e := &env{t: t, recipe: filepath.Join(dir, "recipe", "recipe.cue"), cache: filepath.Join(dir, "cache")}
	log := filepath.Join(t.TempDir(), "launch.log")
	env := []string{"PATH=" + fakes + ":" + os.Getenv("PATH"), "FTC_TEST_LAUNCH_LOG=" + log, "FTC_TEST_TRAINER=" + trainerBin, "FTC_ENTRYPOINT=", "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7"}
	python := filepath.Join(fakes, "python")

	r := e.run(append(env, "FTC_TEST_PROBE="+fakeProbe("pinned-2025q1", 4, nil)), "--offline", "--python", python, "--gpus", "4")
	expect(t, r, 0, 0, 2)
	t.Logf("ftc run --gpus 4:\n%s", r.out)
	for _, w := range []string{
		"--gpus 4: 8 → 4 GPU(s) (strategy ddp); each stage keeps its global batch, gradient accumulation takes up the change\n" +
			"  sft: global batch 64 = micro 4 × accum 4 × 4 process(es), was accum 2 × 8 process(es)\n",
	} {
		if !strings.Contains(r.out, w) || strings.Index(r.out, w) > strings.Index(r.out, "sft.prepare") {
			t.Errorf("the run does not say first what --gpus changed (%q):\n%s", w, r.out)
		}
	}
	b, _ := os.ReadFile(log)
	for _, w := range []string{"torchrun --nnodes=1 --nproc-per-node=4 -m ftc.entry sft --config stage.json", "CUDA_VISIBLE_DEVICES=0,1,2,3\n"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("launcher log lacks %q:\n%s", w, b)
		}
	}
	var ranks []string
	for i := 0; i < 8; i++ {
		if s, ok := readOutput(e, "sft", fmt.Sprintf("ranks/rank-%d", i)); ok && s == "4" {
			ranks = append(ranks, fmt.Sprint(i))
		}
	}
	if strings.Join(ranks, ",") != "0,1,2,3" {
		t.Errorf("ranks of a world of 4 that ran: %v, want 0,1,2,3", ranks)
	}
	if got := outputFile(t, e, "sft", "batch.txt"); got != "processes 4 microBatch 4 gradAccum 4 globalBatch 64\n" {
		t.Errorf("on 4 GPUs the trainer was given %q, want accumulation 4 for the same global batch", got)
	}
}

// TestGenerationServerStartsFirst runs a GRPO stage with a vLLM server on
// one of two GPUs: the server (a fake trl that listens on the port) starts
// first on GPU 0, the trainers start on GPU 1 only once it listens, and
// the server is stopped afterwards.
func TestGenerationServerStartsFirst(t *testing.T) {
	fakes, _ := filepath.Abs("testdata/fakelaunchers")
	dir := t.TempDir()
	copyDir(t, "testdata/grpo", filepath.Join(dir, "recipe"))
	e := &env{t: t, recipe: filepath.Join(dir, "recipe", "recipe.cue"), cache: filepath.Join(dir, "cache")}
	log := filepath.Join(t.TempDir(), "launch.log")
	port := freePortForTest(t)
	env := []string{"PATH=" + fakes + ":" + os.Getenv("PATH"), "FTC_TEST_LAUNCH_LOG=" + log, "FTC_TEST_TRAINER=" + trainerBin, "FTC_ENTRYPOINT=", "CUDA_VISIBLE_DEVICES=4,5", "FTC_TEST_PROBE=" + fakeProbe("current-2026", 2, nil)}
	r := e.run(env, "--gpus", "2", "--python", filepath.Join(fakes, "python"), "--set", fmt.Sprintf("stages.grpo.grpo.generation.port=%d", port))
	expect(t, r, 0, 0, 2)
	b, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "trl vllm-serve --model Qwen/Qwen2.5-0.5B-Instruct --revision 7ae557604adf67be50417f59c2c2f167def9a775") ||
		!strings.Contains(lines[0], fmt.Sprintf("--port %d", port)) || !strings.HasSuffix(lines[0], "CUDA_VISIBLE_DEVICES=4") {
		t.Fatalf("the server did not start first, on the first GPU, with the policy's weights:\n%s", b)
	}
	if !strings.Contains(string(b), "torchrun --nnodes=1 --nproc-per-node=1") || !strings.Contains(string(b), "CUDA_VISIBLE_DEVICES=5") {
		t.Fatalf("the trainers did not run on the other GPU:\n%s", b)
	}
	// The server was stopped: nothing listens on its port any more.
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		c.Close()
		t.Fatal("the generation server is still running")
	}
}

func freePortForTest(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
