package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/internal/needs"
	"github.com/ftc-dev/ftc/internal/pyenvtest"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/compiler/load"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/internal/slurmtest"
	"github.com/ftc-dev/ftc/runtime/backend"
)

// TestSlurm runs ftc's Slurm backend against a real single-host Slurm
// cluster (munged, slurmctld and two slurmd "nodes" with fake GPUs, see
// internal/slurmtest): DDP with torch on one node and on two, a failing
// job, a cancelled job, a requeued job, a job that reaches its time limit
// mid-stage and resumes after requeueing itself, a generation server started
// before its trainers, sbatch --test-only for every example, and `ftc
// run --backend slurm` on the test pipeline.
func TestSlurm(t *testing.T) {
	c := slurmtest.Start(t, slurmtest.Options{})
	t.Run("DDP", func(t *testing.T) { testSlurmDDP(t, c, false) })
	t.Run("MultiNodeDDP", func(t *testing.T) { testSlurmDDP(t, c, true) })
	t.Run("Failure", func(t *testing.T) { testSlurmFailure(t, c) })
	t.Run("Cancel", func(t *testing.T) { testSlurmCancel(t, c) })
	t.Run("Requeue", func(t *testing.T) { testSlurmRequeue(t, c) })
	t.Run("Preemption", func(t *testing.T) { testSlurmPreemption(t, c) })
	t.Run("GenerationServer", func(t *testing.T) { testSlurmServer(t, c) })
	t.Run("GenerationServerTwoNodes", func(t *testing.T) { testSlurmServerTwoNodes(t, c) })
	t.Run("PlannedScript", func(t *testing.T) { testSlurmPlannedScript(t, c) })
	t.Run("ExamplesTestOnly", func(t *testing.T) { testSlurmExamples(t, c) })
	t.Run("FtcRun", func(t *testing.T) { testSlurmFtcRun(t, c) })
	if ids, err := c.Queue(); err != nil || len(ids) > 0 {
		t.Errorf("jobs left in the queue after the tests: %v %v", ids, err)
	}
}

func slurmBackend(c *slurmtest.Cluster, partition string) backend.Slurm {
	return backend.Slurm{
		Settings: config.Slurm{Partition: partition, Time: "00:10:00", Container: "none"},
		Env:      c.Env,
		Poll:     100 * time.Millisecond, MaxPoll: 500 * time.Millisecond,
		Grace: 30 * time.Second,
	}
}

// syncBuffer is a job's Output that a test may read while the job runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runJob runs job through b, bounded in time.
func runJob(t *testing.T, b backend.Slurm, job backend.Job, limit time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	err := b.Run(ctx, job)
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatalf("job %s did not end within %s:\n%v", job.Name, limit, job.Output)
	}
	return err
}

// planStage plans the Slurm test recipe with overrides and returns its
// training stage.
func planStage(t *testing.T, sets ...string) *plan.Stage {
	t.Helper()
	var ovs []load.Override
	for _, s := range sets {
		o, err := load.ParseOverride(s)
		if err != nil {
			t.Fatal(err)
		}
		ovs = append(ovs, o)
	}
	p, diags, err := compiler.Plan("testdata/slurm/recipe.cue", ovs)
	if err != nil {
		t.Fatalf("planning the Slurm test recipe: %v\n%v", err, diags)
	}
	for _, s := range p.Stages {
		if s.Kind != "prepare" {
			return s
		}
	}
	t.Fatal("no training stage")
	return nil
}

// torchArgv stands the test tools in for ftc's: the torchrun shim for
// torchrun, the DDP check for "-m ftc.entry" (as exec's Entrypoint option
// replaces the entrypoint), every torchrun option as ftc planned it.
func torchArgv(t *testing.T, argv []string) []string {
	t.Helper()
	shim, _ := filepath.Abs("testdata/slurm/torchrun_shim.py")
	check, _ := filepath.Abs("testdata/slurm/ddp_check.py")
	if len(argv) == 0 || argv[0] != "torchrun" {
		t.Fatalf("planned launcher is not torchrun: %q", argv)
	}
	out := []string{pyenvtest.Python(t, "pinned-2025q1"), shim}
	for i := 1; i < len(argv); i++ {
		if argv[i] == "-m" && i+1 < len(argv) && argv[i+1] == launch.Entrypoint {
			out = append(out, check)
			i++
			continue
		}
		out = append(out, argv[i])
	}
	return out
}

func needTorch(t *testing.T) {
	t.Helper()
	py := pyenvtest.Python(t, "pinned-2025q1")
	if out, err := exec.Command(py, "-c", "import torch.distributed as d; assert d.is_gloo_available()").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot run gloo: %v\n%s", py, err, out)
	}
}

// testSlurmDDP plans the test recipe (1 node × 2 GPUs, or 2 nodes × 1),
// renders its sbatch through the backend and runs two torch processes
// that train with DDP over gloo and check their gradients agree.
func testSlurmDDP(t *testing.T, c *slurmtest.Cluster, multi bool) {
	needTorch(t)
	port := slurmtest.FreePort(t)
	sets := []string{"hardware.gpusPerNode=2", fmt.Sprintf("hardware.rendezvous.port=%d", port)}
	partition := c.Partition
	if multi {
		sets = []string{"hardware.nodes=2", fmt.Sprintf("hardware.rendezvous.port=%d", port)}
		partition = c.MultiPartition
		// The rendezvous is on the first node by name; here both nodes
		// are this host, under its own name.
		if _, err := net.LookupHost(c.Nodes[0]); err != nil {
			needs.Missing(t, "the first node's name %s to resolve (%v): it is the rendezvous address", c.Nodes[0], err)
		}
	}
	st := planStage(t, sets...)
	b := slurmBackend(c, partition)
	b.Plans = map[string]launch.Plan{st.Name: st.Launch}
	dir := t.TempDir()
	out := &syncBuffer{}
	job := backend.Job{
		Name: st.Name, Dir: dir, Argv: torchArgv(t, st.Launch.Argv),
		// torchrun's scratch directories go to the run directory.
		Env:  []string{"FTC_STAGE_CONFIG=" + launch.StageConfigFile, "TMPDIR=" + dir},
		GPUs: st.Launch.GPUs, Output: out,
	}
	start := time.Now()
	if err := runJob(t, b, job, 3*time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	log := out.String()
	t.Logf("DDP job (multi-node %v) took %s; its output:\n%s", multi, time.Since(start).Round(time.Millisecond), log)
	script, err := os.ReadFile(filepath.Join(dir, backend.SlurmScriptFile))
	if err != nil {
		t.Fatal(err)
	}
	for rank := 0; rank < 2; rank++ {
		node, gpus := 0, "0,1"
		if multi {
			node, gpus = rank, "0"
		}
		want := regexp.MustCompile(fmt.Sprintf(`rank=%d world=2 node=\d gpus=%s allreduce=3.0 grads_synced=True data_differs=True params_in_sync=True`, rank, gpus))
		if !want.MatchString(log) {
			t.Errorf("rank %d did not report synchronised gradients with GPUs %s:\n%s", rank, gpus, log)
		}
		if multi && !strings.Contains(log, fmt.Sprintf("world=2 node=%d gpus=0", node)) {
			t.Errorf("no rank ran as node %d:\n%s", node, log)
		}
	}
	for _, want := range []string{"#SBATCH --nodes=" + map[bool]string{false: "1", true: "2"}[multi], "#SBATCH --gpus-per-node=" + map[bool]string{false: "2", true: "1"}[multi]} {
		if !strings.Contains(string(script), want+"\n") {
			t.Errorf("the script lacks %q:\n%s", want, script)
		}
	}
	if multi && !strings.Contains(string(script), `--rdzv-endpoint="$FTC_MASTER_ADDR":`) {
		t.Errorf("the multi-node script does not meet on FTC_MASTER_ADDR:\n%s", script)
	}
}

func testSlurmFailure(t *testing.T, c *slurmtest.Cluster) {
	out := &syncBuffer{}
	err := runJob(t, slurmBackend(c, c.Partition), backend.Job{
		Name: "fails", Dir: t.TempDir(), Argv: []string{"bash", "-c", "echo going down; exit 7"}, Output: out,
	}, time.Minute)
	var ee *backend.ExitError
	if !errors.As(err, &ee) || ee.Code != 7 {
		t.Fatalf("got %v, want exit status 7:\n%s", err, out)
	}
	if !strings.Contains(err.Error(), "FAILED") || !strings.Contains(out.String(), "going down") {
		t.Errorf("error %q, output:\n%s", err, out)
	}
}

// jobID reads the job ID the backend recorded in a run directory.
func jobID(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "slurm.jobid"))
	return strings.TrimSpace(string(b))
}

// waitOutput waits until out shows want.
func waitOutput(t *testing.T, out *syncBuffer, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %s:\n%s", want, limit, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testSlurmCancel(t *testing.T, c *slurmtest.Cluster) {
	dir := t.TempDir()
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- slurmBackend(c, c.Partition).Run(ctx, backend.Job{
			Name: "cancelled", Dir: dir, Argv: []string{"bash", "-c", "echo started; exec sleep 300"}, Output: out,
		})
	}()
	waitOutput(t, out, "started", time.Minute)
	id := jobID(dir)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled:\n%s", err, out)
		}
	case <-time.After(time.Minute):
		t.Fatalf("Run did not return within a minute of the cancellation:\n%s", out)
	}
	ids, err := c.Queue()
	if err != nil || strings.Contains(" "+strings.Join(ids, " ")+" ", " "+id+" ") {
		t.Errorf("job %s still queued after cancel: %v %v", id, ids, err)
	}
	if st := c.Run(t, "scontrol", "show", "job", "--oneliner", id); !strings.Contains(st, "JobState=CANCELLED") {
		t.Errorf("job %s not cancelled: %s", id, st)
	}
}

// testSlurmRequeue requeues a running job (as a node failure or a
// preemption would): the backend follows the new attempt, which succeeds,
// and the output of both attempts reaches the job's Output.
func testSlurmRequeue(t *testing.T, c *slurmtest.Cluster) {
	dir := t.TempDir()
	out := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- slurmBackend(c, c.Partition).Run(ctx, backend.Job{
			Name: "requeued", Dir: dir, Output: out,
			Argv: []string{"bash", "-c", `if [ "${SLURM_RESTART_COUNT:-0}" = 0 ]; then echo first attempt; exec sleep 300; fi; echo second attempt`},
		})
	}()
	waitOutput(t, out, "first attempt", time.Minute)
	id := jobID(dir)
	c.Run(t, "scontrol", "requeue", id)
	// A requeued job waits two minutes before it may start again; let
	// it start now, once it is pending.
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out.String(), "second attempt") && time.Now().Before(deadline) {
		if st, _ := c.Command("squeue", "--noheader", "--jobs="+id, "--format=%T").Output(); strings.TrimSpace(string(st)) == "PENDING" {
			_ = c.Command("scontrol", "update", "JobId="+id, "StartTime=now").Run()
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatalf("requeued job: %v\n%s", err, out)
	}
	log := out.String()
	t.Logf("requeued job's output:\n%s", log)
	for _, want := range []string{"first attempt", "requeued", "second attempt", "attempt 2", "COMPLETED"} {
		if !strings.Contains(log, want) {
			t.Errorf("output lacks %q:\n%s", want, log)
		}
	}
}

// testSlurmServer runs a plan with a generation server: the server gets
// the first GPU of the allocation and starts first; the trainer gets the
// others and starts once the server listens; the server is stopped when
// the trainer ends.
func testSlurmServer(t *testing.T, c *slurmtest.Cluster) {
	port := slurmtest.FreePort(t)
	p := launch.Plan{
		Launcher: "bash", Nodes: 1, ProcsPerNode: 2, Processes: 2, GPUs: []int{1, 2},
		Argv: []string{"bash", "-c", fmt.Sprintf(`echo "trainer sees $CUDA_VISIBLE_DEVICES"; exec 3<>/dev/tcp/127.0.0.1/%d && echo "server was listening"`, port)},
		Server: &launch.Server{
			Argv: []string{"bash", "-c", fmt.Sprintf(`echo "server sees $CUDA_VISIBLE_DEVICES $SERVER_FLAG"; exec /usr/bin/python3 -m http.server --bind 127.0.0.1 %d`, port)},
			GPUs: []int{0}, Ports: []int{port}, Env: map[string]string{"SERVER_FLAG": "on"},
		},
	}
	b := slurmBackend(c, c.Partition)
	b.Plans = map[string]launch.Plan{"grpo": p}
	out := &syncBuffer{}
	if err := runJob(t, b, backend.Job{Name: "grpo", Dir: t.TempDir(), Argv: p.Argv, Output: out}, time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	log := out.String()
	for _, want := range []string{"server sees 0 on", "trainer sees 1,2", "server was listening"} {
		if !strings.Contains(log, want) {
			t.Errorf("output lacks %q:\n%s", want, log)
		}
	}
	if strings.Index(log, "server sees") > strings.Index(log, "trainer sees") {
		t.Errorf("the trainer started before the server:\n%s", log)
	}
}

// testSlurmExamples renders every example's stages with the test
// cluster's partitions and has sbatch --test-only validate them. Every
// example fits: the test nodes offer 8 GPUs and 128 CPUs each, and there
// are two of them.
func testSlurmExamples(t *testing.T, c *slurmtest.Cluster) {
	recipes, err := filepath.Glob("../../examples/*/recipe.cue")
	if err != nil || len(recipes) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	const image = "registry.example.com/ftc/env@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, r := range recipes {
		name := filepath.Base(filepath.Dir(r))
		t.Run(name, func(t *testing.T) {
			cfg, diags, err := compiler.Vet(r, nil)
			if err != nil {
				t.Fatalf("%v\n%v", err, diags)
			}
			p, err := plan.Build(cfg)
			if err != nil {
				t.Fatal(err)
			}
			settings := config.Slurm{Time: "04:00:00", Container: "none"}
			if cfg.Hardware.Slurm != nil {
				settings = *cfg.Hardware.Slurm
			}
			for _, s := range p.Stages {
				gpus := len(s.Launch.GPUs)
				if s.Launch.Server != nil {
					gpus += len(s.Launch.Server.GPUs)
				}
				if s.Launch.Nodes > len(c.Nodes) || gpus > c.GPUs || max(gpus, s.Launch.ProcsPerNode, settings.CPUsPerNode) > c.CPUs {
					t.Errorf("stage %s (%d node(s) × %d GPUs) does not fit the test cluster (%d × %d): grow it in internal/slurmtest, or skip here saying why",
						s.Name, s.Launch.Nodes, gpus, len(c.Nodes), c.GPUs)
					continue
				}
				in := launch.SbatchInput{Plan: s.Launch, Stage: s.Name, Key: string(s.Key), Slurm: settings, Image: image, RunDir: t.TempDir()}
				in.Slurm.Partition = c.Partition
				if s.Launch.Nodes > 1 {
					in.Slurm.Partition = c.MultiPartition
				}
				script, err := launch.Sbatch(in)
				if err != nil {
					t.Fatalf("stage %s: %v", s.Name, err)
				}
				path := filepath.Join(in.RunDir, launch.SbatchFile)
				if err := os.WriteFile(path, script, 0o644); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
					t.Errorf("stage %s: bash -n: %v\n%s", s.Name, err, out)
				}
				out, err := c.Command("sbatch", "--test-only", path).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "to start at") {
					t.Errorf("stage %s: sbatch --test-only: %v\n%s\n%s", s.Name, err, out, script)
				}
			}
		})
	}
}

// testSlurmPlannedScript submits a path-free script that a plan would
// ship (launch.SbatchFile in the run directory) as it is, when the backend
// has no launch plan for the stage.
func testSlurmPlannedScript(t *testing.T, c *slurmtest.Cluster) {
	dir := t.TempDir()
	script, err := launch.Sbatch(launch.SbatchInput{
		Plan:  launch.Plan{Nodes: 1, ProcsPerNode: 2, GPUs: []int{0, 1}, Argv: []string{"bash", "-c", `echo "planned in $PWD with GPUs $CUDA_VISIBLE_DEVICES"`}},
		Stage: "sft", Key: "sha256:0123456789ab", Slurm: config.Slurm{Partition: c.Partition, Time: "00:05:00"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, launch.SbatchFile), script, 0o644); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	err = runJob(t, slurmBackend(c, "unused"), backend.Job{Name: "sft", Dir: dir, Argv: []string{"false"}, Output: out}, time.Minute)
	if err != nil || !strings.Contains(out.String(), "planned in "+dir+" with GPUs 0,1") {
		t.Fatalf("%v\n%s", err, out)
	}
}

// testSlurmFtcRun runs the test pipeline with `ftc run --backend slurm`:
// data preparation runs here, the training stages are Slurm jobs, and a
// second run is all cached.
func testSlurmFtcRun(t *testing.T, c *slurmtest.Cluster) {
	e := newEnv(t)
	r := e.run(c.Env, "--backend", "slurm")
	expect(t, r, 0, 0, 4)
	if ins := outputFile(t, e, "ppo", "inputs.txt"); !strings.Contains(ins, "reward ") {
		t.Errorf("the reward model did not reach the ppo job:\n%s", ins)
	}
	expect(t, e.run(c.Env, "--backend", "slurm"), 0, 4, 0)
	for _, st := range []string{"rm.prepare", "ppo.prepare"} {
		if log, _ := readStored(e, st, "logs", "stage.log"); strings.Contains(log, "== slurm: submitted") {
			t.Errorf("%s ran on the cluster without --prepare-on cluster:\n%s", st, log)
		}
	}

	// --prepare-on cluster: the prepare stages are Slurm jobs too.
	e = newEnv(t)
	expect(t, e.run(c.Env, "--backend", "slurm", "--prepare-on", "cluster"), 0, 0, 4)
	for _, st := range []string{"rm.prepare", "ppo.prepare"} {
		if log, ok := readStored(e, st, "logs", "stage.log"); !ok || !strings.Contains(log, "== slurm: submitted") {
			t.Errorf("%s did not run as a Slurm job with --prepare-on cluster (found %v):\n%s", st, ok, log)
		}
	}
}

// testSlurmServerTwoNodes: the server starts on the first node only; the
// second node's trainers wait until it listens at $FTC_MASTER_ADDR, then
// reach it there.
func testSlurmServerTwoNodes(t *testing.T, c *slurmtest.Cluster) {
	if _, err := net.LookupHost(c.Nodes[0]); err != nil {
		needs.Missing(t, "the first node's name %s to resolve (%v): it is the server address", c.Nodes[0], err)
	}
	port := slurmtest.FreePort(t)
	p := launch.Plan{
		Launcher: "bash", Nodes: 2, ProcsPerNode: 2, Processes: 4, GPUs: []int{1, 2},
		// Trainers train together for a while (the first node's, when it
		// ends, stops the server): here 5 s after reaching the server.
		Argv: []string{"bash", "-c", fmt.Sprintf(`exec 3<>"/dev/tcp/$FTC_MASTER_ADDR/%d" && echo "trainer on node $FTC_NODE_RANK reached the server" && sleep 5`, port)},
		Server: &launch.Server{
			// Slow to start, as vLLM loading a model is.
			Argv:  []string{"bash", "-c", fmt.Sprintf(`echo "server starts on node $FTC_NODE_RANK"; sleep 3; exec /usr/bin/python3 -m http.server --bind 0.0.0.0 %d`, port)},
			GPUs:  []int{0},
			Ports: []int{port},
		},
	}
	b := slurmBackend(c, c.MultiPartition)
	b.Plans = map[string]launch.Plan{"grpo": p}
	out := &syncBuffer{}
	if err := runJob(t, b, backend.Job{Name: "grpo", Dir: t.TempDir(), Argv: p.Argv, Output: out}, time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	log := out.String()
	if n := strings.Count(log, "server starts on node 0"); n != 1 || strings.Contains(log, "server starts on node 1") {
		t.Errorf("want one server, on node 0:\n%s", log)
	}
	for _, want := range []string{"trainer on node 0 reached the server", "trainer on node 1 reached the server"} {
		if !strings.Contains(log, want) {
			t.Errorf("output lacks %q:\n%s", want, log)
		}
	}
}
