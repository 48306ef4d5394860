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

	"github.com/ftc-dev/ftc/internal/needs"

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

	// A prepare stage's plan (ftc run --prepare-on cluster): one node,
	// one process, no GPU asked for or handed out.
	s.Plans = map[string]launch.Plan{"sft.prepare": {Nodes: 1, ProcsPerNode: 1, Processes: 1, Argv: []string{"python", "-m", "ftc.entry", "prepare"}}}
	b, err = s.Script(Job{Name: "sft.prepare", Dir: dir, Argv: []string{"python", "-m", "ftc.entry", "prepare", "--config", "stage.json"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#SBATCH --nodes=1\n", "#SBATCH --partition=gpu\n", "python -m ftc.entry prepare --config stage.json\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("prepare script lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "--gpus") {
		t.Errorf("prepare script asks for GPUs:\n%s", b)
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

// The whole batch script, run by bash with stand-ins for srun, scontrol and
// apptainer: a run directory, cache mount, image name and command (from
// --cache, --image, --entrypoint) with shell metacharacters stay literal.
func TestSlurmScriptKeepsPathsAndImageLiteral(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		needs.Missing(t, "bash on PATH")
	}
	root := t.TempDir()
	// #SBATCH --chdir refuses quotes; the cache mount takes them.
	dir := filepath.Join(root, "run $(touch PWNED) `touch PWNED` *")
	cache := filepath.Join(root, "cache;touch PWNED& 'q' \"d\"")
	for _, d := range []string{dir, cache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	image := "reg.example/$(touch${IFS}PWNED);x@sha256:" + strings.Repeat("ab", 32)
	argv := []string{"python", "-c", "import sys; print(sys.argv)", "$(touch PWNED)", "; touch PWNED", "`touch PWNED`"}
	s := Slurm{Settings: config.Slurm{Time: "01:00:00", Container: "apptainer"}, Image: image, Mounts: []string{cache + ":" + cache}}
	b, err := s.Script(Job{Name: "sft", Dir: dir, Argv: argv, GPUs: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "stage.sbatch")
	if err := os.WriteFile(script, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	bin, rec := t.TempDir(), t.TempDir()
	record := "#!/bin/sh\nprintf '%s\\0' \"$@\" > \"$FTC_REC/$(basename \"$0\").argv\"\n"
	fakes := map[string]string{
		"scontrol":  "#!/bin/sh\necho node-1\n",
		"srun":      record + "while [ $# -gt 0 ]; do case $1 in --*) shift;; *) break;; esac; done\nexec \"$@\"\n",
		"apptainer": record + "while [ $# -gt 0 ]; do case $1 in exec|--nv) shift;; --bind|--pwd) shift 2;; *) shift; break;; esac; done\nexec \"$@\"\n",
		"python":    record,
	}
	for n, c := range fakes {
		if err := os.WriteFile(filepath.Join(bin, n), []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "FTC_REC="+rec,
		"SLURM_JOB_NODELIST=node-1", "SLURM_JOB_ID=7", "SLURM_NODEID=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bash %s: %v\n%s", script, err, out)
	}
	for _, d := range []string{root, dir, cache, bin, rec} {
		if _, err := os.Stat(filepath.Join(d, "PWNED")); err == nil {
			t.Fatalf("the batch script ran an injected command (PWNED in %s)", d)
		}
	}
	read := func(prog string) []string {
		b, err := os.ReadFile(filepath.Join(rec, prog+".argv"))
		if err != nil {
			t.Fatalf("%s did not run: %v", prog, err)
		}
		return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	}
	if got := read("python"); strings.Join(got, "\x00") != strings.Join(argv[1:], "\x00") {
		t.Errorf("python ran with %q, want %q", got, argv[1:])
	}
	want := []string{"exec", "--nv", "--bind", dir, "--bind", cache + ":" + cache, "--pwd", dir, "docker://" + image}
	if got := read("apptainer"); strings.Join(got[:len(want)], "\x00") != strings.Join(want, "\x00") {
		t.Errorf("apptainer ran with %q, want %q first", got, want)
	}
}
