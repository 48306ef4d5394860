package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/internal/needs"

	"sigs.k8s.io/yaml"

	"github.com/ftc-dev/ftc/internal/cli"
)

// Values with shell metacharacters in every recipe field (and flag) that
// reaches a script ftc writes. None may run: each stays one literal word.
const (
	hostileIfname    = "eth0\"; touch PWNED; echo \"$(touch PWNED)`touch PWNED` * 'x'"
	hostileIfnameNL  = hostileIfname + "\ntouch PWNED"
	hostileHCA       = "mlx5'; touch PWNED; '\\"
	hostilePartition = "$(touch PWNED);gpu*"
	hostileAccount   = "`touch PWNED`"
	hostileQOS       = "; touch PWNED &"
	// --image: a reference by digest (no white space) whose name is hostile.
	hostileImage = "reg.example/$(touch${IFS}PWNED);x*`touch${IFS}PWNED`@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func cueString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSpace(b.String())
}

func hostileRecipe(ifname, hardware string) string {
	return `package recipe

import (
	"ftc.dev/stdlib/gpus"
	"ftc.dev/stdlib/models"
	"ftc.dev/stdlib/profiles"
)

apiVersion: "ftc.dev/v1alpha1"
name:       "hostile"
environment: profiles.Pinned2025Q1
hardware: {
	gpu: gpus.H100_80G
	nccl: {socketIfname: ` + cueString(ifname) + `, ibHCA: ` + cueString(hostileHCA) + `}
` + hardware + `
}
datasets: chat: {
	file: {path: "chat.jsonl", sha256: "a7aa437ed5ff3d9284313a0c594960c563614072ad57bdbe171bd19498abe734"}
	format: "messages"
}
stages: sft: {
	method: "sft"
	model:  models.Qwen25_05BInstruct
	data: train: datasets.chat
	training: {epochs: 1, microBatch: 1, globalBatch: 4}
}
`
}

// fakeBin holds stand-ins for the programs the scripts start: each records
// its argv and environment (NUL-separated) under $FTC_REC; srun and
// apptainer then run the command they were given.
func fakeBin(t *testing.T) string {
	bin := t.TempDir()
	record := `#!/bin/sh
n=$(basename "$0")
printf '%s\0' "$@" > "$FTC_REC/$n.argv"
env -0 > "$FTC_REC/$n.env"
`
	files := map[string]string{
		"torchrun":   record,
		"python":     record,
		"accelerate": record,
		"scontrol":   "#!/bin/sh\necho node-1\n",
		"srun": record + `while [ $# -gt 0 ]; do case $1 in --*) shift;; *) break;; esac; done
exec "$@"
`,
		"apptainer": record + `while [ $# -gt 0 ]; do case $1 in exec|--nv) shift;; --bind|--pwd) shift 2;; *) shift; break;; esac; done
exec "$@"
`,
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(bin, n), []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

// runScript runs a written script in a fresh directory with the fakes
// first on PATH and returns the directory of recordings. It fails the test
// if the script injected a command (a PWNED file anywhere it ran).
func runScript(t *testing.T, shell []string, script string, env ...string) string {
	t.Helper()
	bin, rec, dir := fakeBin(t), t.TempDir(), t.TempDir()
	cmd := exec.Command(shell[0], append(shell[1:], script)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"PATH=" + bin + ":" + os.Getenv("PATH"), "FTC_REC=" + rec}, env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", strings.Join(shell, " "), script, err, out)
	}
	for _, d := range []string{dir, rec, filepath.Dir(script)} {
		if _, err := os.Stat(filepath.Join(d, "PWNED")); err == nil {
			t.Fatalf("%s ran an injected command:\n%s", script, out)
		}
	}
	return rec
}

func argv(t *testing.T, rec, prog string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rec, prog+".argv"))
	if err != nil {
		t.Fatalf("%s did not run: %v", prog, err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func envOf(t *testing.T, rec, prog, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rec, prog+".env"))
	if err != nil {
		t.Fatalf("%s did not run: %v", prog, err)
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	t.Fatalf("%s ran without %s", prog, name)
	return ""
}

func plan(t *testing.T, recipe string, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "recipe.cue"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	chat := `{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "chat.jsonl"), []byte(chat), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	if rc := cli.Run(append([]string{"plan", "-o", out, filepath.Join(dir, "recipe.cue")}, args...), &stdout, &stderr); rc != 0 {
		t.Fatalf("ftc plan: status %d\n%s", rc, stderr.String())
	}
	return out
}

// bashN checks every script under dir parses.
func bashN(t *testing.T, dir string) []string {
	t.Helper()
	var scripts []string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && (strings.HasSuffix(p, ".sh") || strings.HasSuffix(p, ".sbatch")) {
			scripts = append(scripts, p)
			if out, err := exec.Command("bash", "-n", p).CombinedOutput(); err != nil {
				t.Errorf("bash -n %s: %v\n%s", p, err, out)
			}
		}
		return nil
	})
	return scripts
}

func checkTrainer(t *testing.T, rec, prog, ifname string, want ...string) {
	t.Helper()
	if got := envOf(t, rec, prog, "NCCL_SOCKET_IFNAME"); got != ifname {
		t.Errorf("%s ran with NCCL_SOCKET_IFNAME %q, want %q", prog, got, ifname)
	}
	if got := envOf(t, rec, prog, "NCCL_IB_HCA"); got != hostileHCA {
		t.Errorf("%s ran with NCCL_IB_HCA %q, want %q", prog, got, hostileHCA)
	}
	got := strings.Join(argv(t, rec, prog), " ")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s ran with %q, want it to hold %q", prog, got, w)
		}
	}
}

func TestLaunchScriptKeepsRecipeValuesLiteral(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		needs.Missing(t, "bash on PATH")
	}
	out := plan(t, hostileRecipe(hostileIfnameNL, `	gpusPerNode: 2
	strategy: "ddp"`))
	if n := len(bashN(t, out)); n != 2 {
		t.Fatalf("%d scripts written, want launch.sh for sft.prepare and sft", n)
	}
	for _, sh := range [][]string{{"sh"}, {"bash"}} {
		rec := runScript(t, sh, filepath.Join(out, "sft", "launch.sh"))
		checkTrainer(t, rec, "torchrun", hostileIfnameNL, "--nproc-per-node=2 -m ftc.entry sft --config stage.json")
	}
}

func TestSbatchKeepsRecipeValuesLiteral(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		needs.Missing(t, "bash on PATH")
	}
	slurm := func(container string) string {
		return `	nodes: 2
	gpusPerNode: 2
	strategy: "ddp"
	target: "slurm"
	slurm: {partition: ` + cueString(hostilePartition) + `, account: ` + cueString(hostileAccount) +
			`, qos: ` + cueString(hostileQOS) + `, container: "` + container + `"}`
	}
	slurmEnv := []string{"SLURM_JOB_NODELIST=node-[1-2]", "SLURM_JOB_ID=7", "SLURM_NODEID=1"}
	wantArgv := []string{"--rdzv-endpoint=node-1:29500", "--nnodes=2 --nproc-per-node=2"}

	t.Run("none", func(t *testing.T) {
		out := plan(t, hostileRecipe(hostileIfname, slurm("none")))
		bashN(t, out)
		sb := filepath.Join(out, "sft", "stage.sbatch")
		b, err := os.ReadFile(sb)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{`#SBATCH --partition="` + hostilePartition + `"`, `#SBATCH --account="` + hostileAccount + `"`, `#SBATCH --qos="` + hostileQOS + `"`} {
			if !strings.Contains(string(b), d+"\n") {
				t.Errorf("stage.sbatch lacks %s", d)
			}
		}
		rec := runScript(t, []string{"bash"}, sb, slurmEnv...)
		checkTrainer(t, rec, "torchrun", hostileIfname, wantArgv...)
		rec = runScript(t, []string{"sh"}, filepath.Join(out, "sft", "launch.sh"), "FTC_MASTER_ADDR=node-1", "FTC_NODE_RANK=1")
		checkTrainer(t, rec, "torchrun", hostileIfname, append(wantArgv, "--rdzv-id=")...)
	})
	t.Run("pyxis", func(t *testing.T) {
		out := plan(t, hostileRecipe(hostileIfname, slurm("pyxis")), "--image", hostileImage)
		bashN(t, out)
		rec := runScript(t, []string{"bash"}, filepath.Join(out, "sft", "stage.sbatch"), slurmEnv...)
		checkTrainer(t, rec, "torchrun", hostileIfname, wantArgv...)
		name, digest, _ := strings.Cut(hostileImage, "@")
		reg, repo, _ := strings.Cut(name, "/")
		want := "--container-image=" + reg + "#" + repo + ":" + digest
		if got := argv(t, rec, "srun"); !contains(got, want) {
			t.Errorf("srun ran with %q, want %q among them", got, want)
		}
	})
	t.Run("apptainer", func(t *testing.T) {
		out := plan(t, hostileRecipe(hostileIfname, slurm("apptainer")), "--image", hostileImage)
		bashN(t, out)
		rec := runScript(t, []string{"bash"}, filepath.Join(out, "sft", "stage.sbatch"), slurmEnv...)
		checkTrainer(t, rec, "torchrun", hostileIfname, wantArgv...)
		if got := argv(t, rec, "apptainer"); !contains(got, "docker://"+hostileImage) {
			t.Errorf("apptainer ran with %q, want %q among them", got, "docker://"+hostileImage)
		}
	})
}

func TestKubernetesCommandKeepsValuesLiteral(t *testing.T) {
	out := plan(t, hostileRecipe(hostileIfname, `	nodes: 2
	gpusPerNode: 2
	strategy: "ddp"
	target: "kubernetes"`), "--image", hostileImage)
	b, err := os.ReadFile(filepath.Join(out, "sft", "kubernetes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var job struct {
		Spec struct {
			PyTorchReplicaSpecs map[string]struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Command []string
							Env     []struct{ Name, Value string }
						}
					}
				}
			} `json:"pytorchReplicaSpecs"`
		}
	}
	if err := yaml.Unmarshal(b, &job); err != nil {
		t.Fatal(err)
	}
	for role, spec := range job.Spec.PyTorchReplicaSpecs {
		c := spec.Template.Spec.Containers[0]
		if len(c.Command) != 3 || c.Command[0] != "/bin/sh" || c.Command[1] != "-c" {
			t.Fatalf("%s command %q", role, c.Command)
		}
		script := filepath.Join(t.TempDir(), "command.sh")
		if err := os.WriteFile(script, []byte(c.Command[2]), 0o644); err != nil {
			t.Fatal(err)
		}
		env := []string{"MASTER_ADDR=master-0", "RANK=1"}
		for _, e := range c.Env {
			env = append(env, e.Name+"="+e.Value)
		}
		rec := runScript(t, []string{"sh"}, script, env...)
		checkTrainer(t, rec, "torchrun", hostileIfname, "--rdzv-endpoint=master-0:29500")
		if got := envOf(t, rec, "torchrun", "FTC_NODE_RANK"); got != "1" {
			t.Errorf("FTC_NODE_RANK = %q", got)
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
