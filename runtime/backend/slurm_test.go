package backend

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/launch"
)

// The Slurm backend against a real cluster is tested in internal/e2e
// (TestSlurm); these are its pure parts.

func TestSlurmScriptFromJob(t *testing.T) {
	s := Slurm{Settings: config.Slurm{Partition: "gpu", Time: "01:00:00"}}
	dir := t.TempDir()
	b, err := s.Script(Job{Name: "sft", Dir: dir, Argv: []string{"python", "train.py"}, GPUs: []int{4, 5}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#SBATCH --nodes=1\n", "#SBATCH --gpus-per-node=2\n", "#SBATCH --partition=gpu\n",
		"#SBATCH --chdir=" + dir + "\n", "exec python train.py\n", "#SBATCH --job-name=ftc-sft-" + filepath.Base(dir)[:min(12, len(filepath.Base(dir)))]} {
		if !strings.Contains(string(b), want) {
			t.Errorf("script lacks %q:\n%s", want, b)
		}
	}

	// With the stage's plan, its layout wins; the command is the job's.
	s.Plans = map[string]launch.Plan{"sft": {Nodes: 2, ProcsPerNode: 8, GPUs: []int{0, 1, 2, 3, 4, 5, 6, 7},
		Argv: []string{"torchrun", "--nnodes=2"}}}
	b, err = s.Script(Job{Name: "sft", Dir: dir, Argv: []string{"wrapper", "--nnodes=2", "--rdzv-endpoint=$FTC_MASTER_ADDR:29500"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#SBATCH --nodes=2\n", "#SBATCH --gpus-per-node=8\n", `exec wrapper --nnodes=2 --rdzv-endpoint="$FTC_MASTER_ADDR":29500` + "\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("script lacks %q:\n%s", want, b)
		}
	}
	if jobName(b) == "" {
		t.Error("no job name found in the script")
	}
}

func TestSlurmResult(t *testing.T) {
	s := Slurm{}
	var out bytes.Buffer
	if err := s.result(context.Background(), "1", outcome{"COMPLETED", 0, 0}, &out); err != nil {
		t.Errorf("completed: %v", err)
	}
	for _, c := range []struct {
		res  outcome
		code int
		sig  string
	}{
		{outcome{"FAILED", 7, 0}, 7, ""},
		{outcome{"CANCELLED", 0, 15}, -1, "terminated"},
		{outcome{"TIMEOUT", 0, 0}, -1, ""},
		{outcome{"OUT_OF_MEMORY", 0, 9}, -1, "killed"},
	} {
		err := s.result(context.Background(), "42", c.res, &out)
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != c.code || ee.Signal != c.sig || !strings.Contains(err.Error(), c.res.state) {
			t.Errorf("%v: got %v (%+v)", c.res, err, ee)
		}
	}
	// A job cancelled because ftc was interrupted reports the interruption.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.result(ctx, "1", outcome{"CANCELLED", 0, 15}, &out); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled by us: %v", err)
	}
}

func TestCopyNewFollowsGrowthAndTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slurm-1.out")
	var out bytes.Buffer
	if off := copyNew(path, 0, &out); off != 0 {
		t.Fatalf("missing file: offset %d", off)
	}
	os.WriteFile(path, []byte("one\n"), 0o644)
	off := copyNew(path, 0, &out)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("two\n")
	f.Close()
	off = copyNew(path, off, &out)
	if out.String() != "one\ntwo\n" || off != 8 {
		t.Fatalf("got %q at %d", out.String(), off)
	}
	os.WriteFile(path, []byte("3\n"), 0o644) // truncated and rewritten
	off = copyNew(path, off, &out)
	if out.String() != "one\ntwo\n3\n" || off != 2 {
		t.Fatalf("after truncation: %q at %d", out.String(), off)
	}
}

func TestSlurmWithoutSbatch(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Slurm{}.Run(context.Background(), Job{Name: "x", Dir: t.TempDir(), Argv: []string{"true"}, Output: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "sbatch is not installed") {
		t.Fatalf("got %v", err)
	}
}

// TestSlurmNodeCommandRoundTrip runs the node command of a rendered script
// with bash: every argument arrives as planned, and only the per-node
// variables expand.
func TestSlurmNodeCommandRoundTrip(t *testing.T) {
	args := []string{"it's", `a "b" c`, "$HOME", "`id`", "--rank=$FTC_NODE_RANK", "--at=${FTC_MASTER_ADDR}:29500", "#x", "", "ü"}
	b, err := Slurm{}.Script(Job{Name: "x", Dir: t.TempDir(), Argv: append([]string{"printf", `[%s]\n`}, args...)})
	if err != nil {
		t.Fatal(err)
	}
	_, node, ok := strings.Cut(string(b), "<<'FTC_NODE'\n")
	node, _, ok2 := strings.Cut(node, "FTC_NODE\n)")
	if !ok || !ok2 {
		t.Fatalf("no node command in:\n%s", b)
	}
	cmd := exec.Command("bash", "-c", node)
	cmd.Env = append(os.Environ(), "SLURM_NODEID=3", "FTC_MASTER_ADDR=node-a")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := "[it's]\n[a \"b\" c]\n[$HOME]\n[`id`]\n[--rank=3]\n[--at=node-a:29500]\n[#x]\n[]\n[ü]\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}
