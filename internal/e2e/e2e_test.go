package e2e

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/internal/registrytest"
	"github.com/ftc-dev/ftc/runtime/cas"
	rexec "github.com/ftc-dev/ftc/runtime/exec"
)

var ftcBin, trainerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ftc-e2e-bin")
	if err != nil {
		panic(err)
	}
	ftcBin = filepath.Join(dir, "ftc")
	trainerBin = filepath.Join(dir, "testtrainer")
	for bin, pkg := range map[string]string{ftcBin: "../../cmd/ftc", trainerBin: "../testtrainer"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is a test's world: a copy of the pipeline recipe and a cache.
type env struct {
	t      *testing.T
	recipe string
	cache  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	copyDir(t, "testdata/pipeline", filepath.Join(dir, "recipe"))
	return &env{t: t, recipe: filepath.Join(dir, "recipe", "recipe.cue"), cache: filepath.Join(dir, "cache")}
}

type result struct {
	out  string
	code int
}

// ftc runs the binary with the env's cache and the test trainer.
func (e *env) ftc(extraEnv []string, args ...string) result {
	e.t.Helper()
	cmd := e.cmd(extraEnv, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return result{buf.String(), code}
}

func (e *env) cmd(extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.Command(ftcBin, args...)
	cmd.Env = append(os.Environ(), "FTC_CACHE="+e.cache, "FTC_ENTRYPOINT="+trainerBin, "HF_HUB_OFFLINE=1")
	cmd.Env = append(cmd.Env, extraEnv...)
	return cmd
}

func (e *env) run(extraEnv []string, args ...string) result {
	return e.ftc(extraEnv, append([]string{"run", e.recipe}, args...)...)
}

var countsRE = regexp.MustCompile(`(\d+) cached, (\d+) ran, (\d+) failed`)

func counts(t *testing.T, r result) (cached, ran, failed int) {
	t.Helper()
	m := countsRE.FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("no summary line in:\n%s", r.out)
	}
	fmt.Sscan(m[1], &cached)
	fmt.Sscan(m[2], &ran)
	fmt.Sscan(m[3], &failed)
	return
}

func expect(t *testing.T, r result, code, cached, ran int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d:\n%s", r.code, code, r.out)
	}
	c, n, _ := counts(t, r)
	if c != cached || n != ran {
		t.Fatalf("%d cached and %d ran, want %d and %d:\n%s", c, n, cached, ran, r.out)
	}
}

func TestPipelineRunsOnceThenIsCached(t *testing.T) {
	e := newEnv(t)
	r := e.run(nil)
	expect(t, r, 0, 0, 4)
	// The report charts the metrics the stages emitted.
	m := regexp.MustCompile(`report: (\S+)`).FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("no report:\n%s", r.out)
	}
	if b, err := os.ReadFile(m[1]); err != nil || !strings.Contains(string(b), "<svg") || !strings.Contains(string(b), "ppo · loss") {
		t.Errorf("report lacks the loss chart of ppo (%v)", err)
	}
	r = e.run(nil)
	expect(t, r, 0, 4, 0)
	// A cached stage's wall time is that of the run that made its entry.
	if m := regexp.MustCompile(`report: (\S+)`).FindStringSubmatch(r.out); m == nil {
		t.Errorf("no report:\n%s", r.out)
	} else if b, err := os.ReadFile(m[1]); err != nil || !strings.Contains(string(b), "when it ran; cached now") {
		t.Errorf("the report of a cached run lacks the stages' wall time when they ran (%v)", err)
	}

	// A PPO hyperparameter reruns PPO only: no GPU time for the reward
	// model or the data.
	r = e.run(nil, "--set", "stages.ppo.ppo.klCoef=0.1")
	expect(t, r, 0, 3, 1)
	if !regexp.MustCompile(`ppo\s+done`).MatchString(r.out) {
		t.Errorf("ppo did not run:\n%s", r.out)
	}
	// A reward-model hyperparameter reruns the reward model and PPO.
	expect(t, e.run(nil, "--set", "stages.rm.training.learningRate=2e-5"), 0, 2, 2)
	// --force reruns one stage.
	expect(t, e.run(nil, "--force", "rm.prepare"), 0, 3, 1)
	// --dry-run runs nothing.
	r = e.run(nil, "--dry-run", "--set", "stages.ppo.ppo.klCoef=0.3")
	if !strings.Contains(r.out, "would run") || r.code != 0 {
		t.Errorf("dry run:\n%s", r.out)
	}
	// ... and records nothing: status still shows the last real run.
	if st := e.ftc(nil, "status"); strings.Contains(st.out, "would run") || !regexp.MustCompile(`ppo\s+(ran|cached)`).MatchString(st.out) {
		t.Errorf("status after the dry run shows the dry run, not the last real run:\n%s", st.out)
	}
	if v := e.ftc(nil, "cache", "verify"); v.code != 0 {
		t.Errorf("cache verify:\n%s", v.out)
	}
}

func TestStageOutputsReachTheirConsumers(t *testing.T) {
	e := newEnv(t)
	expect(t, e.run(nil), 0, 0, 4)
	store, err := cas.Open(filepath.Join(e.cache, "cas"))
	if err != nil {
		t.Fatal(err)
	}
	acts, _ := store.Actions()
	files := map[string]string{} // stage → inputs.txt
	for _, a := range acts {
		tr, err := store.ReadTree(a.Outputs["output"])
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range tr.Entries {
			if en.Path == "inputs.txt" {
				b, _ := store.ReadBlob(en.Digest)
				files[a.Name] = string(b)
			}
		}
	}
	// The test trainer lists "role digest-or-repo" for each input.
	ppo := files["ppo"]
	roles := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(ppo), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			roles[f[0]] = f[1]
		}
	}
	for _, want := range []string{"train", "policy", "reference", "reward", "value"} {
		if roles[want] == "" {
			t.Errorf("ppo got no %s input:\n%s", want, ppo)
		}
	}
	if roles["policy"] != "Qwen/Qwen2.5-0.5B-Instruct" {
		t.Errorf("policy input = %q, want the Hub repo", roles["policy"])
	}
	if roles["reward"] != roles["value"] || len(roles["reward"]) != 16 {
		t.Errorf("reward and value should be the reward stage's output directory: %q %q", roles["reward"], roles["value"])
	}
	if !strings.Contains(files["rm"], "train ") {
		t.Errorf("rm got no train input:\n%s", files["rm"])
	}
}

func TestCrashedStageResumesFromLastCheckpoint(t *testing.T) {
	e := newEnv(t)
	// ppo checkpoints every 2 steps; it crashes after step 5, so the
	// newest complete checkpoint is step 4.
	r := e.run([]string{"FTC_TEST_CRASH_AT=5"})
	if r.code != 1 || !strings.Contains(r.out, "FAILED") {
		t.Fatalf("want a failed run:\n%s", r.out)
	}
	// Make an incomplete checkpoint newer than step 4 — no manifest — as a
	// crash in the middle of saving leaves. It must be ignored.
	runs, _ := filepath.Glob(filepath.Join(e.cache, "runs", "*", "checkpoints"))
	if len(runs) != 1 { // rm crashed; ppo, which reads it, never started
		t.Fatalf("want one run directory with checkpoints, got %v", runs)
	}
	for _, ck := range runs {
		os.MkdirAll(filepath.Join(ck, "step-6"), 0o755)
		os.WriteFile(filepath.Join(ck, "step-6", "state.json"), []byte(`{"Step": 6}`), 0o644)
	}
	r = e.run(nil)
	if r.code != 0 || !regexp.MustCompile(`rm\s+resuming\s+from step 4`).MatchString(r.out) {
		t.Fatalf("want rm to resume from step 4:\n%s", r.out)
	}
	expect(t, r, 0, 2, 2)
}

func TestKilledTrainerResumes(t *testing.T) {
	e := newEnv(t)
	r := e.run([]string{"FTC_TEST_CRASH_AT=3", "FTC_TEST_CRASH_KILL=1"})
	if r.code == 0 {
		t.Fatalf("want a failed run:\n%s", r.out)
	}
	r = e.run(nil)
	if !strings.Contains(r.out, "resuming   from step 2") {
		t.Fatalf("want a resume from step 2:\n%s", r.out)
	}
	expect(t, r, 0, 2, 2)
}

func TestRetriesResume(t *testing.T) {
	e := newEnv(t)
	// Each attempt crashes at step 3 unless it resumed past it; with one
	// retry the second attempt resumes from step 2 and crashes again at 3,
	// so the run fails; the point is the retry resumed.
	r := e.run([]string{"FTC_TEST_CRASH_AT=3"}, "--retries", "1")
	if !strings.Contains(r.out, "attempt 2 of 2") || !strings.Contains(r.out, "resuming   from step 2") {
		t.Fatalf("want a resumed retry:\n%s", r.out)
	}
}

func TestRestartDiscardsCheckpoints(t *testing.T) {
	e := newEnv(t)
	e.run([]string{"FTC_TEST_CRASH_AT=5"})
	r := e.run(nil, "--restart")
	if strings.Contains(r.out, "resuming") {
		t.Fatalf("--restart resumed:\n%s", r.out)
	}
	expect(t, r, 0, 2, 2)
}

func TestTopologyChangeRefusedForShardedCheckpoints(t *testing.T) {
	e := newEnv(t)
	// ZeRO-3 on one GPU is refused by vet unless it offloads (nothing to
	// shard otherwise), so both topologies offload the optimizer.
	zero3 := []string{"--set", "hardware.strategy=zero3", "--set", "hardware.offload.optimizer=true"}
	r := e.run([]string{"FTC_TEST_CRASH_AT=5"}, append(zero3, "--set", "hardware.gpusPerNode=2", "--gpus", "2")...)
	if r.code == 0 {
		t.Fatalf("want a crash:\n%s", r.out)
	}
	// --gpus 1 rescales the recipe to one GPU: its sharded checkpoints
	// cannot be resumed there either, and the run says why.
	r = e.run(nil, append(zero3, "--set", "hardware.gpusPerNode=2", "--gpus", "1")...)
	if r.code == 0 || !strings.Contains(r.out, "--gpus 1: 2 → 1 GPU(s) (strategy zero3)") ||
		!strings.Contains(r.out, "zero3 checkpoints are sharded over 2 processes, this run has 1") {
		t.Fatalf("want --gpus 1 to refuse to resume:\n%s", r.out)
	}
	one := append(zero3, "--set", "hardware.gpusPerNode=1", "--gpus", "1")
	r = e.run(nil, one...)
	if r.code == 0 || !strings.Contains(r.out, "zero3 checkpoints are sharded over 2 processes, this run has 1") {
		t.Fatalf("want a refused resume:\n%s", r.out)
	}
	expect(t, e.run(nil, append(one, "--restart")...), 0, 2, 2)
}

func TestConcurrentRunsRunEachStageOnce(t *testing.T) {
	e := newEnv(t)
	slow := []string{"FTC_TEST_STEP_DELAY=40ms"}
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = e.run(slow)
		}()
	}
	wg.Wait()
	total := 0
	for _, r := range res {
		if r.code != 0 {
			t.Fatalf("a concurrent run failed:\n%s", r.out)
		}
		c, n, _ := counts(t, r)
		if c+n != 4 {
			t.Fatalf("run did not account for 4 stages:\n%s", r.out)
		}
		total += n
	}
	if total != 4 {
		t.Fatalf("stages ran %d times in all, want 4 (each once):\n%s\n---\n%s", total, res[0].out, res[1].out)
	}
	// Both see the same outputs: a third run is fully cached.
	expect(t, e.run(nil), 0, 4, 0)
}

func TestCorruptBlobIsDetectedAndStageRerun(t *testing.T) {
	e := newEnv(t)
	expect(t, e.run(nil), 0, 0, 4)
	// Damage the largest blob (a stage output), keeping its size.
	var target string
	var size int64
	filepath.Walk(filepath.Join(e.cache, "cas", "blobs"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !strings.HasSuffix(p, ".ok") && info.Size() > size {
			target, size = p, info.Size()
		}
		return nil
	})
	os.Chmod(target, 0o644)
	b, _ := os.ReadFile(target)
	b[0] ^= 0xff
	if err := os.WriteFile(target, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if v := e.ftc(nil, "cache", "verify"); v.code == 0 || !strings.Contains(v.out, "corrupt") {
		t.Fatalf("cache verify did not report the damage:\n%s", v.out)
	}
	r := e.run(nil)
	if !strings.Contains(r.out, "corrupt") || r.code != 0 {
		t.Fatalf("the damaged entry was not reported:\n%s", r.out)
	}
	if _, ran, _ := counts(t, r); ran == 0 {
		t.Fatalf("nothing reran:\n%s", r.out)
	}
	if v := e.ftc(nil, "cache", "verify", "--repair"); v.code != 0 && !strings.Contains(v.out, "removed") {
		t.Fatalf("repair:\n%s", v.out)
	}
}

// TestKillDuringCommit kills `ftc run` with SIGKILL at random moments
// while it commits a stage's outputs, 50 times. The cache must never hold
// a partial or corrupt entry, and the next run must complete.
func TestKillDuringCommit(t *testing.T) {
	e := newEnv(t)
	expect(t, e.run(nil), 0, 0, 4)
	rng := rand.New(rand.NewSource(1))
	// The output is large enough that committing it takes a while, and
	// random so every commit writes new blobs.
	big := []string{"FTC_TEST_OUTPUT_MB=24", "FTC_TEST_RANDOM_OUTPUT=1"}
	expect(t, e.run(big, "--force", "ppo"), 0, 3, 1)
	commit := commitDuration(t, e)
	killed, attempts := 0, 0
	// Kill 50 runs inside their commit; a run whose commit ends before
	// the kill lands (a loaded machine) is retried, up to 150 attempts.
	for ; killed < 50 && attempts < 150; attempts++ {
		prev := latestID(e)
		cmd := e.cmd(big, "run", e.recipe, "--force", "ppo")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		// Wait until this run's commit starts, then kill inside it.
		waitForEvent(e, prev, "committing", done)
		at := time.Duration(rng.Int63n(int64(commit)))
		time.Sleep(at)
		select {
		case <-done:
		default:
			cmd.Process.Signal(syscall.SIGKILL)
			killed++
			<-done
		}
		if v := e.ftc(nil, "cache", "verify"); v.code != 0 {
			t.Fatalf("after a kill %v into the commit (attempt %d) the cache is damaged:\n%s", at, attempts, v.out)
		}
	}
	if killed < 50 {
		t.Fatalf("only %d runs of %d were killed during their commit", killed, attempts)
	}
	expect(t, e.run(nil), 0, 4, 0)
	r := e.run(big, "--force", "ppo")
	expect(t, r, 0, 3, 1)
	t.Logf("%d runs (of %d attempts) killed within a %v commit; cache verified clean after each", killed, attempts, commit)
}

// commitDuration reads, from the last run's event log, how long its
// commit took.
func commitDuration(t *testing.T, e *env) time.Duration {
	t.Helper()
	events := latestEvents(e)
	var from, to time.Time
	for _, ev := range events {
		switch {
		case ev.Type == "committing":
			from = ev.Time
		case ev.Type == "done" && ev.Stage == "ppo":
			to = ev.Time
		}
	}
	if from.IsZero() || to.IsZero() {
		t.Fatalf("no commit in the last run's events: %+v", events)
	}
	return to.Sub(from)
}

func latestID(e *env) string {
	id, _ := os.ReadFile(filepath.Join(e.cache, "records", "latest"))
	return strings.TrimSpace(string(id))
}

func latestEvents(e *env) []rexec.Event {
	ev, _ := rexec.ReadEvents(filepath.Join(e.cache, "records", latestID(e), "events.jsonl"))
	return ev
}

// waitForEvent polls the record of the run started after record prev
// until an event of type typ appears, or the process ends.
func waitForEvent(e *env, prev, typ string, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		default:
		}
		if latestID(e) != prev {
			for _, ev := range latestEvents(e) {
				if ev.Type == typ {
					return
				}
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRemoteCache pushes a run's entries to a real registry (Debian's
// docker-registry), wipes the local cache, pulls them back, and runs
// nothing; then does the same through `ftc run --remote`.
func TestRemoteCache(t *testing.T) {
	addr := registrytest.DockerRegistry(t)
	repo := addr + "/team/ftc-cache"
	e := newEnv(t)
	expect(t, e.run(nil), 0, 0, 4)
	// Each transfer says how many bytes it moved and at what rate.
	moved := `: [0-9.]+ (KiB|MiB) in [0-9.]+s, [0-9.]+ (B|KiB|MiB|GiB)/s\n`
	if r := e.ftc(nil, "cache", "push", repo, e.recipe); r.code != 0 || !regexp.MustCompile(`pushed 4 entries to \S+ \(0 already there\)`+moved).MatchString(r.out) {
		t.Fatalf("push:\n%s", r.out)
	}
	if r := e.ftc(nil, "cache", "push", repo, e.recipe); r.code != 0 || !strings.Contains(r.out, "pushed 0 entries") || !strings.Contains(r.out, "4 already there): 0 B in ") {
		t.Fatalf("second push:\n%s", r.out)
	}

	os.RemoveAll(e.cache)
	if r := e.ftc(nil, "cache", "pull", repo, e.recipe); r.code != 0 || !regexp.MustCompile(`pulled 4 entries from \S+ \(.*not in the registry\)`+moved).MatchString(r.out) {
		t.Fatalf("pull:\n%s", r.out)
	}
	if v := e.ftc(nil, "cache", "verify"); v.code != 0 {
		t.Fatalf("verify after pull:\n%s", v.out)
	}
	expect(t, e.run(nil), 0, 4, 0)

	os.RemoveAll(e.cache)
	r := e.run(nil, "--remote", repo)
	if !strings.Contains(r.out, "pulled 4 stage(s)") {
		t.Fatalf("run --remote did not pull:\n%s", r.out)
	}
	expect(t, r, 0, 4, 0)

	// A new stage result is pushed after the run.
	r = e.run(nil, "--remote", repo, "--set", "stages.ppo.ppo.klCoef=0.2")
	expect(t, r, 0, 3, 1)
	if !strings.Contains(r.out, "pushed 1 stage(s)") {
		t.Fatalf("run --remote did not push the new result:\n%s", r.out)
	}
}

// TestInterruptKeepsCheckpoints sends SIGINT (Ctrl-C) while a stage
// trains: the stage stops, nothing is committed for it, and the next run
// resumes from its checkpoint.
func TestInterruptKeepsCheckpoints(t *testing.T) {
	e := newEnv(t)
	// 6 steps of 400 ms, a checkpoint every 2: after the first checkpoint
	// a stage runs 1.6 s more, a wide window for the interrupt.
	cmd := e.cmd([]string{"FTC_TEST_STEP_DELAY=400ms"}, "run", e.recipe)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		m, _ := filepath.Glob(filepath.Join(e.cache, "runs", "*", "checkpoints", "*", "ftc-checkpoint.json"))
		if len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no checkpoint within 60 s:\n%s", buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if err == nil {
		t.Fatalf("an interrupted run exited 0:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "stopped") {
		t.Fatalf("the interrupted stage was not reported as stopped:\n%s", buf.String())
	}
	if v := e.ftc(nil, "cache", "verify"); v.code != 0 {
		t.Fatalf("cache after the interrupt:\n%s", v.out)
	}
	// The local backend stops the stage with SIGTERM, on which the trainer
	// saves a checkpoint at its next step (ftc/preempt.py; the test
	// trainer does the same): any step from the first checkpoint on.
	r := e.run(nil)
	if !regexp.MustCompile(`(rm|ppo)\s+resuming\s+from step [2-5]`).MatchString(r.out) {
		t.Fatalf("the next run did not resume the stopped stage:\n%s\n--- interrupted run:\n%s", r.out, buf.String())
	}
	if r.code != 0 {
		t.Fatalf("resumed run failed:\n%s", r.out)
	}
}

// TestGCKeepsARecipe: gc keeps the entries of a recipe named with --keep
// and removes the rest, and the recipe then runs fully cached.
func TestGCKeepsARecipe(t *testing.T) {
	e := newEnv(t)
	expect(t, e.run(nil), 0, 0, 4)
	expect(t, e.run(nil, "--set", "stages.ppo.ppo.klCoef=0.3"), 0, 3, 1)
	// Another ftc version's entrypoints copy goes too; du counts it first.
	old := filepath.Join(e.cache, "entrypoints", strings.Repeat("0", 64), "ftc")
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(old, "entry.py"), []byte("pass\n"), 0o444)
	if r := e.ftc(nil, "cache", "du"); !regexp.MustCompile(`\d+ entrypoints copies`).MatchString(r.out) {
		t.Fatalf("du does not report the entrypoints copies:\n%s", r.out)
	}
	r := e.ftc(nil, "cache", "gc", "--keep", e.recipe)
	if r.code != 0 || !strings.Contains(r.out, "removed 1 entries") || !strings.Contains(r.out, "removed 1 entrypoints copies") {
		t.Fatalf("gc:\n%s", r.out)
	}
	if _, err := os.Stat(filepath.Dir(old)); !os.IsNotExist(err) {
		t.Fatalf("the other version's entrypoints are still there: %v", err)
	}
	expect(t, e.run(nil), 0, 4, 0)
	expect(t, e.run(nil, "--set", "stages.ppo.ppo.klCoef=0.3"), 0, 3, 1)
}

// TestGCPrunesEnvironmentImages: ftc build's cached environment images
// (OCI layouts under images/env) go when unused for longer than
// --keep-days; du reports them.
func TestGCPrunesEnvironmentImages(t *testing.T) {
	e := newEnv(t)
	env := filepath.Join(e.cache, "images", "env")
	for name, age := range map[string]time.Duration{"old": 40 * 24 * time.Hour, "recent": time.Hour} {
		dir := filepath.Join(env, name)
		if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "blobs", "layer"), make([]byte, 3<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		used := time.Now().Add(-age)
		if err := os.Chtimes(dir, used, used); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.ftc(nil, "cache", "du"); !strings.Contains(r.out, "2 environment images, 6.0 MiB") {
		t.Errorf("du:\n%s", r.out)
	}
	r := e.ftc(nil, "cache", "gc", "--keep-days", "7")
	if r.code != 0 || !strings.Contains(r.out, "removed 1 environment images, freed 3.0 MiB") {
		t.Fatalf("gc:\n%s", r.out)
	}
	if _, err := os.Stat(filepath.Join(env, "old")); err == nil {
		t.Error("the image unused for 40 days is still there")
	}
	if _, err := os.Stat(filepath.Join(env, "recent")); err != nil {
		t.Errorf("the recent image is gone: %v", err)
	}
}

// TestRunThroughADataRoot: `ftc run` refuses a data/ directory linked out
// of the recipe's directory until the place it leads to is declared a data
// root; then the stages find their data there, and since keys come from
// content, everything run with the data inside the directory is cached.
func TestRunThroughADataRoot(t *testing.T) {
	e := newEnv(t)
	expect(t, e.run(nil), 0, 0, 4)

	dir := filepath.Dir(e.recipe)
	volume := filepath.Join(filepath.Dir(dir), "volume")
	if err := os.Rename(filepath.Join(dir, "data"), volume); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(volume, filepath.Join(dir, "data")); err != nil {
		t.Fatal(err)
	}
	r := e.run(nil)
	if r.code != 1 || !strings.Contains(r.out, `leaves the recipe's directory through the symlink data -> `+volume) || countsRE.MatchString(r.out) {
		t.Fatalf("an undeclared escape was run (exit %d):\n%s", r.code, r.out)
	}
	expect(t, e.run(nil, "--data-root", volume), 0, 4, 0)
	// A changed stage reads the data through the root.
	expect(t, e.run(nil, "--data-root", volume, "--force", "rm.prepare"), 0, 3, 1)

	// gc --keep vets the recipe as run does: without the root it refuses
	// (and removes nothing), with it every entry is kept.
	if r := e.ftc(nil, "cache", "gc", "--keep", e.recipe); r.code == 0 {
		t.Fatalf("gc kept a recipe it could not vet:\n%s", r.out)
	}
	if r := e.ftc(nil, "cache", "gc", "--data-root", volume, "--keep", e.recipe); r.code != 0 || !strings.Contains(r.out, "removed 0 entries") {
		t.Fatalf("gc:\n%s", r.out)
	}
	expect(t, e.run(nil, "--data-root", volume), 0, 4, 0)
}
