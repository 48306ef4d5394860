package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/internal/cli"
	"github.com/ftc-dev/ftc/internal/hubtest"
)

// oneLineModel is a recipe whose model is its Hub repository alone.
const oneLineModel = `package recipe

import (
	"ftc.dev/stdlib/gpus"
	"ftc.dev/stdlib/profiles"
)

apiVersion:  "ftc.dev/v1alpha1"
name:        "one-line-model"
environment: profiles.Pinned2025Q1
hardware: gpu: gpus.H100_80G
datasets: chat: {
	file: {path: "data/chat.jsonl", sha256: "c7fc6d137c7dfd64059425566d7b0a5215799e433a689876f25729b359da7ed9"}
	format: "messages"
}
stages: sft: {
	method: "sft"
	model: repo: "meta-llama/Llama-3.1-8B-Instruct"
	data: {train: datasets.chat, maxLength: 4096, packing: true}
	training: {epochs: 1, microBatch: 2, gradAccum: 8}
}
`

// TestLockReadsArchitectureFromHub is issue 15's acceptance: a recipe
// whose model is only `repo: "meta-llama/Llama-3.1-8B-Instruct"` is
// refused by vet with the command that fixes it; ftc lock, against a
// stand-in Hub, pins the model and records its config.json facts; then
// vet passes and plan estimates memory, offline, from the lock.
func TestLockReadsArchitectureFromHub(t *testing.T) {
	hub := hubtest.New()
	defer hub.Close()
	e := newLockEnv(t, pinnedBase)
	t.Setenv("HF_ENDPOINT", hub.URL)
	t.Setenv("HF_HUB_OFFLINE", "")
	if err := os.WriteFile(e.recipe, []byte(oneLineModel), 0o644); err != nil {
		t.Fatal(err)
	}
	plain := func(args ...string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		code := cli.Run(append(args, e.recipe), &stdout, &stderr)
		return stdout.String(), stderr.String(), code
	}

	_, stderr, code := plain("vet")
	if code != 1 || !strings.Contains(stderr, "stages.sft.model: model meta-llama/Llama-3.1-8B-Instruct@main has no architecture: ftc.lock has no config.json facts for it") ||
		!strings.Contains(stderr, "hint: run `ftc lock recipe.cue` where the Hub is reachable") {
		t.Fatalf("vet before lock: exit %d\n%s", code, stderr)
	}
	if len(hub.Calls()) != 0 {
		t.Fatalf("vet called the Hub: %v", hub.Calls())
	}

	if code := e.ftc("lock", "--wheels", e.wheels); code != 0 {
		t.Fatalf("ftc lock: exit %d\n%s\n%s", code, e.stdout, e.stderr)
	}
	commit := hubtest.Commit("meta-llama/Llama-3.1-8B-Instruct")
	if !strings.Contains(e.stdout, "1 Hub pin(s), 1 architecture(s) added") ||
		!strings.Contains(e.stdout, "  arch meta-llama/Llama-3.1-8B-Instruct@"+commit+": llama, 32 layers, 8.03B parameters\n") {
		t.Errorf("ftc lock output:\n%s", e.stdout)
	}
	lock := e.lockFile()
	for _, want := range []string{
		"\nmodel meta-llama/Llama-3.1-8B-Instruct@main " + commit + "\n",
		"\narch meta-llama/Llama-3.1-8B-Instruct@" + commit + " sha256:",
		" model_type=llama layers=32 hidden=4096 intermediate=14336 heads=32 kv_heads=8 head_dim=128 vocab=128256 tied=false max_positions=131072 sliding_window=0 experts=0 experts_per_token=0 expert_width=0 params=8030261248\n",
		"\npython tiny-hello==1.0 ",
	} {
		if !strings.Contains(lock, want) {
			t.Errorf("ftc.lock lacks %q:\n%s", want, lock)
		}
	}
	calls := len(hub.Calls())

	// Offline from here on: vet and plan read the lock only.
	t.Setenv("HF_HUB_OFFLINE", "1")
	// Clean: the lock pins the model too, so no "not pinned" warning.
	if stdout, stderr, code := plain("vet"); code != 0 || stderr != "" {
		t.Fatalf("vet after lock: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code := plain("plan")
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		"hub-model meta-llama/Llama-3.1-8B-Instruct@main",
		"   mem   ",
		"weights          15.0 GiB  bf16",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, stdout)
		}
	}

	// A second lock has everything: no Hub call.
	t.Setenv("HF_HUB_OFFLINE", "")
	if code := e.ftc("lock", "--wheels", e.wheels); code != 0 || strings.Contains(e.stdout, "architecture(s) added") {
		t.Fatalf("second ftc lock: exit %d\n%s\n%s", code, e.stdout, e.stderr)
	}
	if got := len(hub.Calls()); got != calls {
		t.Errorf("second lock called the Hub: %v", hub.Calls()[calls:])
	}
}

// TestRunReadsArchitectureFromHub: ftc run, where the Hub is reachable,
// needs no ftc lock first for a model given by its repository alone: it
// pins it and reads its config.json, and writes both to ftc.lock with
// its own pins once past its checks (a dry run here). Offline, with no
// lock, vet's refusal names ftc lock.
func TestRunReadsArchitectureFromHub(t *testing.T) {
	hub := hubtest.New()
	defer hub.Close()
	dir := t.TempDir()
	copyTree(t, "../../examples/sft-trl-single", dir)
	recipe := filepath.Join(dir, "recipe.cue")
	os.Remove(filepath.Join(dir, "ftc.lock"))
	if err := os.WriteFile(recipe, []byte(oneLineModel), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, int) {
		var stdout, stderr bytes.Buffer
		code := cli.Run(append(append([]string{"run", "--dry-run", "--cache", filepath.Join(dir, "cache")}, args...), recipe), &stdout, &stderr)
		return stdout.String() + stderr.String(), code
	}
	t.Setenv("HF_ENDPOINT", hub.URL)
	t.Setenv("HF_HUB_OFFLINE", "")
	if out, code := run("--offline"); code != 1 || !strings.Contains(out, "run `ftc lock recipe.cue`") {
		t.Fatalf("offline run without a lock: exit %d\n%s", code, out)
	}
	if out, code := run(); code != 0 || !strings.Contains(out, "[2/2] sft ") {
		t.Fatalf("run: exit %d\n%s", code, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "ftc.lock"))
	commit := hubtest.Commit("meta-llama/Llama-3.1-8B-Instruct")
	if err != nil || !strings.Contains(string(b), "\nmodel meta-llama/Llama-3.1-8B-Instruct@main "+commit+"\n") ||
		!strings.Contains(string(b), "\narch meta-llama/Llama-3.1-8B-Instruct@"+commit+" sha256:") {
		t.Fatalf("ftc.lock (%v):\n%s", err, b)
	}
	// Now offline works: the lock has it all.
	if out, code := run("--offline"); code != 0 {
		t.Fatalf("offline run with the lock: exit %d\n%s", code, out)
	}
}
