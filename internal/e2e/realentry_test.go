package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/runtime/cas"
)

// qwen05Revision is the Hub commit stdlib pins Qwen2.5-0.5B-Instruct to.
const qwen05Revision = "7ae557604adf67be50417f59c2c2f167def9a775"

// TestRealEntrypointsTrainOnCPU runs `ftc run` with the real Python
// entrypoints instead of the test trainer: the runtime writes stage.json
// and the plan's trainer_args.json, `python -m ftc.entry` (in the locked
// environment of profile current-2026 that scripts/pyvenv.sh builds, the
// recipe's own profile) prepares
// the chat data with the model's tokenizer and trains it with transformers'
// Trainer on the CPU, and the outputs go to the cache. A tiny Qwen2 with
// random weights sits where the Hub cache would hold the pinned
// Qwen2.5-0.5B-Instruct (no Hub here), so the entrypoints load it exactly
// as they load a real snapshot offline.
func TestRealEntrypointsTrainOnCPU(t *testing.T) {
	rs := realRecipe(t, "realsft")
	e, real := rs.env, rs.extraEnv
	r := e.run(real, "--cpu")
	expect(t, r, 0, 0, 2)

	// The sft stage trained: a finite loss at every step in the metrics
	// the entrypoint wrote and the runtime committed with its logs; its
	// cached output holds full weights, the tokenizer and ftc's manifest.
	store, err := cas.Open(filepath.Join(e.cache, "cas"))
	if err != nil {
		t.Fatal(err)
	}
	acts, _ := store.Actions()
	files := map[string]bool{}
	steps := map[int]float64{}
	var final map[string]any
	for _, a := range acts {
		if a.Name != "sft" {
			continue
		}
		tr, err := store.ReadTree(a.Outputs["output"])
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range tr.Entries {
			files[en.Path] = true
		}
		logs, err := store.ReadTree(a.Outputs["logs"])
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range logs.Entries {
			if en.Path != "metrics.jsonl" {
				continue
			}
			b, err := store.ReadBlob(en.Digest)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("metrics line %q: %v", line, err)
				}
				step, _ := m["step"].(float64)
				if loss, ok := m["loss"].(float64); ok && m["final"] == nil {
					if math.IsNaN(loss) || math.IsInf(loss, 0) {
						t.Errorf("step %v: loss %v", step, loss)
					}
					steps[int(step)] = loss
				}
				if m["final"] == true {
					final = m
				}
			}
		}
	}
	if len(steps) != 6 {
		t.Fatalf("want a loss for each of 6 steps, got %v\n%s", steps, r.out)
	}
	if final == nil || final["chunked_loss"] != true || final["padding_free"] != true || final["step"] != 6.0 {
		t.Errorf("final record of sft: %v", final)
	}
	for _, f := range []string{"model.safetensors", "config.json", "tokenizer_config.json", "ftc-output.json"} {
		if !files[f] {
			t.Errorf("the cached output of sft lacks %s (has %v)", f, files)
		}
	}

	// Cached the second time; a learning rate reruns sft, not prepare.
	expect(t, e.run(real, "--cpu"), 0, 2, 0)
	expect(t, e.run(real, "--cpu", "--set", "stages.sft.training.learningRate=2e-4"), 0, 1, 1)
	// The same recipe planned for GPUs is other keys, and the entrypoint
	// refuses to train it where torch sees no GPU: a CPU run never fills
	// a GPU run's cache entry (prepare, the same work, is shared).
	r = e.run(real)
	if c, n, f := counts(t, r); r.code != 1 || c != 1 || n != 0 || f != 1 || !strings.Contains(r.out, "the plan trains on GPUs, and torch sees no GPU") {
		t.Errorf("a GPU plan on a machine without one: exit %d, %d cached, %d ran, %d failed\n%s", r.code, c, n, f, r.out)
	}
}

// tinyQwen2 makes a Qwen2 with random weights and a small tokenizer
// (bench/gpu/assets.py) in snapshot, where the Hub cache holds a pinned
// model, with python (a command: an interpreter, or scripts/pyvenv.sh run
// PROFILE python): the entrypoints load it as they load a real snapshot
// offline.
// realSetup is a recipe of testdata run through the real entrypoints on
// the CPU, in current-2026's locked environment (scripts/pyvenv.sh), with
// a tiny Qwen2 where the Hub cache would hold Qwen2.5-0.5B-Instruct.
type realSetup struct {
	env *env
	// extraEnv is what ftc's commands need to start the real entrypoints
	// and find the tiny model.
	extraEnv []string
	// dir is the test's directory: recipe/ (the copy of testdata), hf/,
	// cache/.
	dir string
	// python runs the environment's python.
	python []string
}

// realRecipe sets up testdata/name for a run through the real
// entrypoints; -short skips the test.
func realRecipe(t *testing.T, name string) realSetup {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: builds a Python environment (several GB of wheels the first time)")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	const profile = "current-2026"
	pyvenv := filepath.Join(repo, "scripts", "pyvenv.sh")
	if out, err := exec.Command("bash", pyvenv, "ensure", profile).CombinedOutput(); err != nil {
		t.Fatalf("scripts/pyvenv.sh ensure %s: %v\n%s", profile, err, out)
	}
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", name), filepath.Join(dir, "recipe"))
	hf := filepath.Join(dir, "hf")
	snapshot := filepath.Join(hf, "hub", "models--Qwen--Qwen2.5-0.5B-Instruct", "snapshots", qwen05Revision)
	python := []string{"bash", pyvenv, "run", profile, "python"}
	tinyQwen2(t, snapshot, 1024, python...)
	return realSetup{
		env:      &env{t: t, recipe: filepath.Join(dir, "recipe", "recipe.cue"), cache: filepath.Join(dir, "cache")},
		extraEnv: []string{"FTC_ENTRYPOINT=bash " + pyvenv + " entry " + profile, "HF_HOME=" + hf},
		dir:      dir,
		python:   python,
	}
}

func tinyQwen2(t *testing.T, snapshot string, maxPos int, python ...string) {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`
import sys
sys.path.insert(0, sys.argv[2])
import assets
out = sys.argv[1]
tok = assets.build_tokenizer(out, vocab_size=600)
cfg = assets.qwen2_config(tok, hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2, vocab=640, max_pos=%d)
assets.build_model(out, cfg, tok)
`, maxPos)
	args := append(append([]string{}, python[1:]...), "-c", script, snapshot, filepath.Join(repo, "bench", "gpu"))
	if out, err := exec.Command(python[0], args...).CombinedOutput(); err != nil {
		t.Fatalf("building the tiny model: %v\n%s", err, out)
	}
}
