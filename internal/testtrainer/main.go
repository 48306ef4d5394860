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
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
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
	if sf.ResumeFrom != "" {
		var st struct{ Step int }
		b, err := os.ReadFile(filepath.Join(sf.ResumeFrom, "state.json"))
		if err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return err
		}
		start = st.Step + 1
		fmt.Printf("testtrainer: resumed from step %d\n", st.Step)
		if err := os.WriteFile(filepath.Join(sf.Output, "resumed_from"), []byte(strconv.Itoa(st.Step)), 0o644); err != nil {
			return err
		}
	}
	crashAt, _ := strconv.Atoi(os.Getenv("FTC_TEST_CRASH_AT"))
	delay, _ := time.ParseDuration(os.Getenv("FTC_TEST_STEP_DELAY"))

	metrics, err := os.OpenFile(sf.Metrics, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer metrics.Close()
	for step := start; step <= steps; step++ {
		time.Sleep(delay)
		fmt.Fprintf(metrics, "{\"step\": %d, \"loss\": %.4f, \"tokens_per_s\": 1000}\n", step, 2.0/float64(step+1))
		if sf.Kind != "prepare" && step%save == 0 {
			if err := checkpoint(sf, step); err != nil {
				return err
			}
		}
		if step == crashAt {
			fmt.Printf("testtrainer: crashing after step %d as asked\n", step)
			if os.Getenv("FTC_TEST_CRASH_KILL") == "1" {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
			os.Exit(3)
		}
	}
	return writeOutput(sf, inputs)
}

// checkpoint writes the state first and the manifest last: a checkpoint
// without its manifest is incomplete.
func checkpoint(sf stageFile, step int) error {
	dir := filepath.Join(sf.Checkpoints, fmt.Sprintf("step-%d", step))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(fmt.Sprintf(`{"Step": %d}`, step)), 0o644); err != nil {
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
