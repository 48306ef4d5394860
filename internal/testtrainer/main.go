// Command testtrainer stands in for ftc's Python entrypoints in tests of
// the runtime. It is a fixture, not a trainer: it reads the stage file the
// way the real entrypoints do, writes metrics, checkpoints (manifest last)
// and outputs, resumes from the checkpoint it is given, and crashes on
// request.
//
// Behaviour is controlled by environment variables:
//
//	FTC_TEST_CRASH_AT=k      exit 3 after step k (once its checkpoint, if any, is written)
//	FTC_TEST_CRASH_KILL=1    with CRASH_AT: SIGKILL itself instead of exiting
//	FTC_TEST_STEP_DELAY=10ms sleep per step
//	FTC_TEST_OUTPUT_MB=n     write n MiB of output (in 4 files)
//	FTC_TEST_RANDOM_OUTPUT=1 make the output differ on every run
//	FTC_TEST_TERM_AT=k       send itself SIGTERM after step k
//
// SIGTERM is honoured as the real entrypoints do (stdlib/python/ftc/preempt.py):
// at the next step boundary the trainer saves a checkpoint of that step
// (manifest last), writes preempted.json into its run directory and exits
// 75; past the stage file's graceSeconds it exits 75 without one. It resumes
// from the newest complete checkpoint in its checkpoints directory when
// that is newer than resumeFrom (a requeued Slurm job reruns its stage file
// unchanged). The output's trajectory.txt chains every step trained, so a
// resumed run that skipped or repeated a step ends with another one.
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// exitPreempted and preemptedMarker are runtime/exec's ExitPreempted and
// PreemptedMarker.
const (
	exitPreempted   = 75
	preemptedMarker = "preempted.json"
)

type stageFile struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Key    string `json:"key"`
	Config struct {
		Training struct {
			Steps       int `json:"steps"`
			MicroBatch  int `json:"microBatch"`
			GradAccum   int `json:"gradAccum"`
			GlobalBatch int `json:"globalBatch"`
		} `json:"training"`
		Cadence struct {
			SaveEvery int `json:"saveEvery"`
		} `json:"cadence"`
	} `json:"config"`
	Inputs map[string]struct {
		Path string `json:"path"`
		Repo string `json:"repo"`
	} `json:"inputs"`
	Output      string `json:"output"`
	Checkpoints string `json:"checkpoints"`
	ResumeFrom  string `json:"resumeFrom"`
	Metrics     string `json:"metrics"`
	World       struct {
		Processes int    `json:"processes"`
		Strategy  string `json:"strategy"`
	} `json:"world"`
	GraceSeconds int `json:"graceSeconds"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testtrainer:", err)
		os.Exit(1)
	}
}

func run() error {
	path := os.Getenv("FTC_STAGE_CONFIG")
	for i, a := range os.Args {
		if a == "--config" && i+1 < len(os.Args) {
			path = os.Args[i+1]
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var sf stageFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return err
	}
	fmt.Printf("testtrainer: stage %s (%s), %d process(es)\n", sf.Name, sf.Kind, sf.World.Processes)
	// Under a (fake) multi-process launcher, ranks other than 0 only say
	// they ran; rank 0 does the stage's work, as trainers save on rank 0.
	if rank := os.Getenv("RANK"); rank != "" && rank != "0" {
		dir := filepath.Join(sf.Output, "ranks")
		os.MkdirAll(dir, 0o755)
		return os.WriteFile(filepath.Join(dir, "rank-"+rank), []byte(os.Getenv("WORLD_SIZE")), 0o644)
	}
	if os.Getenv("RANK") == "0" {
		dir := filepath.Join(sf.Output, "ranks")
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, "rank-0"), []byte(os.Getenv("WORLD_SIZE")), 0o644); err != nil {
			return err
		}
	}

	// Every input must be readable; the output records their digests so
	// tests can see that the right data arrived.
	var inputs []string
	for role, in := range sf.Inputs {
		if in.Path == "" {
			inputs = append(inputs, role+" "+in.Repo)
			continue
		}
		d, err := digestTree(in.Path)
		if err != nil {
			return fmt.Errorf("input %s: %w", role, err)
		}
		inputs = append(inputs, role+" "+d)
	}
	sort.Strings(inputs)

	steps := sf.Config.Training.Steps
	if steps == 0 {
		steps = 6
	}
	if sf.Kind == "prepare" {
		steps = 1
	}
	save := sf.Config.Cadence.SaveEvery
	if save == 0 {
		save = 2
	}
	start := 1
	trajectory := "start"
	var term atomic.Bool
	training := sf.Kind == "sft" || sf.Kind == "reward" || sf.Kind == "ppo" || sf.Kind == "grpo" || sf.Kind == "rloo" || sf.Kind == "dpo" || sf.Kind == "orpo" || sf.Kind == "simpo" || sf.Kind == "kto"
	if training {
		if err := os.Remove(preemptedMarker); err != nil && !os.IsNotExist(err) {
			return err
		}
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		go func() {
			<-sigs
			grace := time.Duration(max(sf.GraceSeconds, 1)) * time.Second
			fmt.Printf("testtrainer: SIGTERM: saving a checkpoint at the next step boundary (grace %s)\n", grace)
			term.Store(true)
			time.AfterFunc(grace, func() {
				fmt.Println("testtrainer: no checkpoint within the grace period")
				os.WriteFile(preemptedMarker, []byte(`{"step": null, "checkpoint": null}`), 0o644)
				os.Exit(exitPreempted)
			})
		}()
	}
	if newest, step := newestCheckpoint(sf.Checkpoints); newest != "" && newest != filepath.Clean(sf.ResumeFrom) {
		if given := stepOf(sf.ResumeFrom); sf.ResumeFrom == "" || step > given {
			fmt.Printf("testtrainer: %s (step %d) is newer than resumeFrom %q\n", newest, step, sf.ResumeFrom)
			sf.ResumeFrom = newest
		}
	}
	if sf.ResumeFrom != "" {
		var st struct {
			Step       int
			Trajectory string
		}
		b, err := os.ReadFile(filepath.Join(sf.ResumeFrom, "state.json"))
		if err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return err
		}
		start = st.Step + 1
		if st.Trajectory != "" {
			trajectory = st.Trajectory
		}
		fmt.Printf("testtrainer: resumed from step %d\n", st.Step)
		if err := os.WriteFile(filepath.Join(sf.Output, "resumed_from"), []byte(strconv.Itoa(st.Step)), 0o644); err != nil {
			return err
		}
	}
	crashAt, _ := strconv.Atoi(os.Getenv("FTC_TEST_CRASH_AT"))
	termAt, _ := strconv.Atoi(os.Getenv("FTC_TEST_TERM_AT"))
	delay, _ := time.ParseDuration(os.Getenv("FTC_TEST_STEP_DELAY"))

	metrics, err := os.OpenFile(sf.Metrics, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer metrics.Close()
	for step := start; step <= steps; step++ {
		time.Sleep(delay)
		fmt.Fprintf(metrics, "{\"step\": %d, \"loss\": %.4f, \"tokens_per_s\": 1000}\n", step, 2.0/float64(step+1))
		h := sha256.Sum256([]byte(fmt.Sprintf("%s %d", trajectory, step)))
		trajectory = hex.EncodeToString(h[:])
		stopping := term.Load()
		if sf.Kind != "prepare" && (step%save == 0 || stopping) {
			if err := checkpoint(sf, step, trajectory); err != nil {
				return err
			}
		}
		if stopping {
			m := fmt.Sprintf(`{"step": %d, "checkpoint": "step-%d", "exitCode": %d}`, step, step, exitPreempted)
			if err := os.WriteFile(preemptedMarker, []byte(m), 0o644); err != nil {
				return err
			}
			fmt.Printf("testtrainer: preempted: checkpoint of step %d saved\n", step)
			os.Exit(exitPreempted)
		}
		if step == termAt {
			syscall.Kill(os.Getpid(), syscall.SIGTERM)
		}
		if step == crashAt {
			fmt.Printf("testtrainer: crashing after step %d as asked\n", step)
			if os.Getenv("FTC_TEST_CRASH_KILL") == "1" {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
			os.Exit(3)
		}
	}
	if training {
		if err := os.WriteFile(filepath.Join(sf.Output, "trajectory.txt"), []byte(trajectory+"\n"), 0o644); err != nil {
			return err
		}
	}
	return writeOutput(sf, inputs)
}

// newestCheckpoint is the complete checkpoint with the highest step under
// dir ("" when none).
func newestCheckpoint(dir string) (string, int) {
	ents, _ := os.ReadDir(dir)
	best, bestStep := "", -1
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "ftc-checkpoint.json"))
		if err != nil {
			continue
		}
		var m struct {
			Step     int
			Complete bool
		}
		if json.Unmarshal(b, &m) == nil && m.Complete && m.Step > bestStep {
			best, bestStep = filepath.Join(dir, e.Name()), m.Step
		}
	}
	return best, bestStep
}

func stepOf(ckpt string) int {
	if ckpt == "" {
		return -1
	}
	b, err := os.ReadFile(filepath.Join(ckpt, "ftc-checkpoint.json"))
	if err != nil {
		return -1
	}
	var m struct{ Step int }
	if json.Unmarshal(b, &m) != nil {
		return -1
	}
	return m.Step
}

// checkpoint writes the state first and the manifest last: a checkpoint
// without its manifest is incomplete.
func checkpoint(sf stageFile, step int, trajectory string) error {
	dir := filepath.Join(sf.Checkpoints, fmt.Sprintf("step-%d", step))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(fmt.Sprintf(`{"Step": %d, "Trajectory": %q}`, step, trajectory)), 0o644); err != nil {
		return err
	}
	m := fmt.Sprintf(`{"step": %d, "worldSize": %d, "strategy": %q, "complete": true}`, step, sf.World.Processes, sf.World.Strategy)
	return os.WriteFile(filepath.Join(dir, "ftc-checkpoint.json"), []byte(m), 0o644)
}

func writeOutput(sf stageFile, inputs []string) error {
	var in string
	for _, l := range inputs {
		in += l + "\n"
	}
	if err := os.WriteFile(filepath.Join(sf.Output, "inputs.txt"), []byte(in), 0o644); err != nil {
		return err
	}
	model := fmt.Sprintf("model of %s\n%s", sf.Key, in)
	if os.Getenv("FTC_TEST_RANDOM_OUTPUT") == "1" {
		var nonce [16]byte
		rand.Read(nonce[:])
		model += hex.EncodeToString(nonce[:])
	}
	if err := os.WriteFile(filepath.Join(sf.Output, "model.bin"), []byte(model), 0o644); err != nil {
		return err
	}
	// What devices the stage was given: tests of GPU passthrough read it.
	var devs string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CUDA_VISIBLE_DEVICES=") || strings.HasPrefix(kv, "FTC_FAKE_GPU") {
			devs += kv + "\n"
		}
	}
	if err := os.WriteFile(filepath.Join(sf.Output, "devices.txt"), []byte(devs), 0o644); err != nil {
		return err
	}
	// The batch arithmetic the stage was given, against the processes it
	// ran in: tests of --gpus read it.
	t := sf.Config.Training
	batch := fmt.Sprintf("processes %d microBatch %d gradAccum %d globalBatch %d\n", sf.World.Processes, t.MicroBatch, t.GradAccum, t.GlobalBatch)
	if err := os.WriteFile(filepath.Join(sf.Output, "batch.txt"), []byte(batch), 0o644); err != nil {
		return err
	}
	mb, _ := strconv.Atoi(os.Getenv("FTC_TEST_OUTPUT_MB"))
	if mb > 0 {
		seed := sha256.Sum256([]byte(model))
		for i := 0; i < 4; i++ {
			if err := writeBulk(filepath.Join(sf.Output, fmt.Sprintf("shard-%d.bin", i)), int64(mb)<<20/4, seed, i); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeBulk writes n pseudo-random bytes derived from seed.
func writeBulk(path string, n int64, seed [32]byte, i int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	block := sha256.Sum256(append(seed[:], byte(i)))
	buf := make([]byte, 0, 1<<16)
	for int64(len(buf)) < 1<<16 {
		block = sha256.Sum256(block[:])
		buf = append(buf, block[:]...)
	}
	for n > 0 {
		w := min(n, int64(len(buf)))
		if _, err := f.Write(buf[:w]); err != nil {
			return err
		}
		n -= w
	}
	return nil
}

// digestTree hashes a file or every file under a directory.
func digestTree(root string) (string, error) {
	h := sha256.New()
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, _ := filepath.Rel(root, p)
		io.WriteString(h, rel+"\x00")
		_, err = io.Copy(h, f)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:16], err
}
