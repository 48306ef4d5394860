package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/internal/pyenvtest"
	"github.com/ftc-dev/ftc/runtime/cas"
)

// qwen7Revision is the Hub commit stdlib pins Qwen2.5-7B-Instruct to.
const qwen7Revision = "a09a35458c702b33eeacc393d103063234e8bc28"

// TestQuickStartOnCPU is the README's quick start as a newcomer types it,
// on a machine like CI's (no GPU), with an example as it is committed:
//
//	ftc env create examples/sft-trl-single/recipe.cue   # the lock's closure, hash-checked
//	ftc env check --cpu examples/sft-trl-single/recipe.cue
//	ftc run --cpu examples/sft-trl-single/recipe.cue    # prepare, then LoRA SFT with trl
//	ftc run --cpu examples/sft-trl-single/recipe.cue    # again: fully cached
//
// Nothing of ftc's Python is installed: the stages import the entrypoints
// ftc materialises, in the environment ftc env create made, which ftc run
// finds by itself. The wheels come from scripts/pyvenv.sh's wheelhouse (PyPI's
// files, hash-checked) standing in for PyPI: the install is the same,
// and downloading several GB again would only cost CI time. A tiny Qwen2
// with random weights sits where the Hub cache holds the pinned
// Qwen2.5-7B-Instruct (no Hub here). A GPU run of the same recipe is refused
// before any stage starts: no CUDA here, and --cpu outputs are keyed as
// CPU runs, so they could not stand in for it anyway.
func TestQuickStartOnCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: makes a Python environment of several GB")
	}
	const profile = "pinned-2025q1"
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// The wheelhouse holds the profile's closure, of which the example's
	// lock is a part; the test environment's interpreter builds the tiny
	// model.
	py := pyenvtest.Python(t, profile)
	lap := stopwatch(t)

	dir := t.TempDir()
	copyDir(t, filepath.Join(repo, "examples", "sft-trl-single"), filepath.Join(dir, "recipe"))
	hf := filepath.Join(dir, "hf")
	snapshot := filepath.Join(hf, "hub", "models--Qwen--Qwen2.5-7B-Instruct", "snapshots", qwen7Revision)
	tinyQwen2(t, snapshot, 4096, py)

	e := &env{t: t, recipe: filepath.Join(dir, "recipe", "recipe.cue"), cache: filepath.Join(dir, "cache")}
	// The real entrypoints, no interpreter named: ftc finds the
	// environment it made.
	newcomer := []string{"FTC_ENTRYPOINT=", "HF_HOME=" + hf, "PYTHONPATH=", "PIP_CONFIG_FILE=/dev/null"}

	r := e.ftc(newcomer, "env", "create", "--wheels", pyenvtest.Wheelhouse(), e.recipe)
	made := regexp.MustCompile(`environment (\S+) \(made now\): profile ` + profile + `, Python 3\.11[.0-9]*, (\d+) package\(s\) from ftc\.lock, hash-checked`).FindStringSubmatch(r.out)
	if r.code != 0 || made == nil || !strings.Contains(r.out, "ftc run and ftc env check use it when --python is not given") {
		t.Fatalf("ftc env create: exit %d\n%s", r.code, tailString(r.out, 6000))
	}
	venv := made[1]
	if !strings.HasPrefix(venv, e.cache+string(os.PathSeparator)) {
		t.Errorf("the environment %s is not in the cache %s", venv, e.cache)
	}
	lap("ftc env create (" + made[2] + " packages)")
	r = e.ftc(newcomer, "env", "create", "--wheels", pyenvtest.Wheelhouse(), e.recipe)
	if r.code != 0 || !strings.Contains(r.out, "environment "+venv+" (already made)") {
		t.Fatalf("ftc env create again: exit %d\n%s", r.code, tailString(r.out, 3000))
	}

	// The check a run makes, alone: the profile's versions, no CUDA row.
	r = e.ftc(newcomer, "env", "check", "--cpu", e.recipe)
	if r.code != 0 || !regexp.MustCompile(`(?m)^\s*torch\s+2\.5\.0\s+2\.5\.0`).MatchString(r.out) || strings.Contains(r.out, "CUDA") {
		t.Fatalf("ftc env check --cpu: exit %d\n%s", r.code, r.out)
	}

	// Without --cpu the recipe wants a GPU: refused before any stage.
	r = e.run(newcomer)
	if r.code != 1 || !strings.Contains(r.out, "the run needs 1 GPU(s), but "+venv+"/bin/python can use none") || !strings.Contains(r.out, "ftc run --cpu") {
		t.Fatalf("a GPU run without a GPU: exit %d\n%s", r.code, r.out)
	}
	if store, err := cas.Open(filepath.Join(e.cache, "cas")); err == nil {
		if acts, _ := store.Actions(); len(acts) > 0 {
			t.Errorf("a refused run stored %d stage(s) in the cache", len(acts))
		}
	}

	r = e.run(newcomer, "--cpu")
	expect(t, r, 0, 0, 2)
	if !strings.Contains(r.out, "environment: "+venv+" (ftc env create, from ftc.lock)") {
		t.Errorf("ftc run did not say it used the environment ftc env create made:\n%s", r.out)
	}
	for _, f := range []string{"adapter_model.safetensors", "adapter_config.json", "ftc-output.json"} {
		if !outputFileQuiet(e, "sft", f) {
			t.Errorf("the cached output of sft has no %s:\n%s", f, r.out)
		}
	}
	lap("ftc run --cpu (prepare, LoRA SFT with trl)")
	expect(t, e.run(newcomer, "--cpu"), 0, 2, 0)
	lap("ftc run --cpu again (cached)")
}
