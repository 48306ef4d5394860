package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/internal/needs"

	"github.com/ftc-dev/ftc/runtime/cas"
)

// profileVersions are the stdlib profiles' pins, as a probe of a matching
// interpreter reports them.
var profileVersions = map[string]map[string]string{
	"pinned-2025q1": {"python": "3.11.7", "cuda": "12.4", "torch": "2.5.0+cu124", "datasets": "4.0.0", "transformers": "4.48.2", "trl": "0.16.0",
		"peft": "0.14.0", "accelerate": "1.3.0", "bitsandbytes": "0.47.0", "tokenizers": "0.21.0", "safetensors": "0.5.2", "deepspeed": "0.16.2"},
	"current-2026": {"python": "3.12.3", "cuda": "13.0", "torch": "2.11.0", "datasets": "5.0.1", "transformers": "5.17.0", "trl": "1.9.0",
		"peft": "0.21.0", "accelerate": "1.15.0", "bitsandbytes": "0.50.2", "tokenizers": "0.23.2", "safetensors": "0.8.0", "deepspeed": "0.19.8", "vllm": "0.26.0"},
}

// fakeProbe is the answer the fake python (testdata/fakelaunchers) gives
// the environment probe: the profile's versions, changed by change
// ("" uninstalls), and n H100s.
func fakeProbe(profile string, n int, change map[string]string) string {
	v := map[string]string{}
	for k, x := range profileVersions[profile] {
		v[k] = x
	}
	for k, x := range change {
		v[k] = x
	}
	if v["executable"] == "" {
		v["executable"] = "/fake/python"
	}
	pkgs := map[string]string{}
	for k, x := range v {
		if k != "python" && k != "cuda" && k != "executable" {
			pkgs[k] = x
		}
	}
	var gpus []map[string]any
	for i := 0; i < n; i++ {
		gpus = append(gpus, map[string]any{"name": "NVIDIA H100 80GB HBM3", "memory": int64(85031714816)})
	}
	probe := map[string]any{"python": v["python"], "executable": v["executable"], "packages": pkgs,
		"torch": map[string]any{"version": v["torch"], "cuda": v["cuda"], "available": n > 0, "gpus": gpus}}
	b, _ := json.Marshal(probe)
	return string(b)
}

// cacheEntries lists what a cache holds: action entries, blobs and
// materialised entrypoints.
func cacheEntries(t *testing.T, cache string) (actions, blobs, entrypoints int) {
	t.Helper()
	if store, err := cas.Open(filepath.Join(cache, "cas")); err == nil {
		acts, _ := store.Actions()
		actions = len(acts)
	}
	filepath.Walk(filepath.Join(cache, "cas"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.Contains(p, "blobs") {
			blobs++
		}
		return nil
	})
	ents, _ := os.ReadDir(filepath.Join(cache, "entrypoints"))
	return actions, blobs, len(ents)
}

func planKeys(t *testing.T, e *env) map[string]bool {
	t.Helper()
	r := e.ftc(nil, "plan", "--json", e.recipe)
	var p struct{ Stages []struct{ Key string } }
	if err := json.Unmarshal([]byte(r.out), &p); err != nil {
		t.Fatalf("ftc plan --json: %v\n%s", err, r.out)
	}
	keys := map[string]bool{}
	for _, s := range p.Stages {
		keys[s.Key] = true
	}
	return keys
}

func actionKeys(t *testing.T, e *env) map[string]bool {
	t.Helper()
	store, err := cas.Open(filepath.Join(e.cache, "cas"))
	if err != nil {
		t.Fatal(err)
	}
	acts, _ := store.Actions()
	keys := map[string]bool{}
	for _, a := range acts {
		keys[a.Key] = true
	}
	return keys
}

// TestEnvironmentCheckedBeforeAnyStage runs the pipeline recipe (profile
// pinned-2025q1, one GPU) on the local backend with a fake interpreter: an
// interpreter without the profile's packages is refused with the table and
// the fix, before anything is cached; --allow-env-mismatch runs it and
// keys the outputs by the environment that ran; the matching interpreter
// runs it under the profile's keys. Every stage imports ftc from the
// entrypoints ftc materialised once, read-only, in the cache.
func TestEnvironmentCheckedBeforeAnyStage(t *testing.T) {
	fakes, _ := filepath.Abs("testdata/fakelaunchers")
	e := newEnv(t)
	imports := filepath.Join(t.TempDir(), "imports.log")
	base := []string{"FTC_ENTRYPOINT=", "FTC_TEST_TRAINER=" + trainerBin, "FTC_TEST_IMPORT_LOG=" + imports, "CUDA_VISIBLE_DEVICES="}
	withProbe := func(probe string) []string { return append(append([]string{}, base...), "FTC_TEST_PROBE="+probe) }
	python := []string{"--python", filepath.Join(fakes, "python")}
	// The probed interpreter's directory holds a python3 that notes it
	// ran: the stages' PATH starts there.
	realPython, err := exec.LookPath("python3")
	if err != nil {
		needs.Missing(t, "python3 on PATH")
	}
	bin := t.TempDir()
	ranFromBin := filepath.Join(t.TempDir(), "bin.log")
	os.WriteFile(filepath.Join(bin, "python3"), []byte("#!/bin/sh\necho x >>"+ranFromBin+"\nexec "+realPython+" \"$@\"\n"), 0o755)
	wrong := fakeProbe("pinned-2025q1", 1, map[string]string{"torch": "1.13.0a0+gitunknown", "transformers": "", "python": "3.12.1", "executable": filepath.Join(bin, "python")})

	// Refused: the table of wanted and found, and the command that fixes it.
	r := e.run(withProbe(wrong), python...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", r.code, r.out)
	}
	for _, row := range [][]string{
		{"python", "3.11", "3.12.1", "DIFFERS"},
		{"torch", "2.5.0", "1.13.0a0+gitunknown", "DIFFERS"},
		{"transformers", "4.48.2", "not installed", "DIFFERS"},
		{"trl", "0.16.0", "0.16.0"},
		{"GPUs", "1", "1 visible"},
	} {
		if !hasRow(r.out, row...) {
			t.Errorf("the table lacks the row %q:\n%s", row, r.out)
		}
	}
	for _, w := range []string{
		"is not the environment of profile pinned-2025q1 (python, torch, transformers)",
		"fix: use a Python 3.11 interpreter (--python python3.11)",
		// No closure in ftc.lock yet: lock first, then make the
		// environment from it (hash-checked), not a bare pip install.
		"fix: ftc lock " + e.recipe + " && ftc env create " + e.recipe + " (the profile's packages from ftc.lock, hash-checked; then used when --python is not given)",
		"or go on with --allow-env-mismatch",
	} {
		if !strings.Contains(r.out, w) {
			t.Errorf("refusal lacks %q:\n%s", w, r.out)
		}
	}
	// The check comes before anything is written to the cache: no data
	// hash memos, no store (checked before cacheEntries opens it).
	for _, d := range []string{"hashes", "cas"} {
		if _, err := os.Stat(filepath.Join(e.cache, d)); err == nil {
			t.Errorf("a refused run wrote %s to the cache", d)
		}
	}
	if a, b, ep := cacheEntries(t, e.cache); a+b+ep != 0 {
		t.Fatalf("a refused run wrote to the cache: %d actions, %d blobs, %d entrypoints", a, b, ep)
	}
	if _, err := os.Stat(filepath.Join(e.cache, "records", "latest")); err == nil {
		t.Fatal("a refused run was recorded as a run")
	}
	if strings.Contains(r.out, "pip install") {
		t.Errorf("the refusal suggests a pip install without hashes:\n%s", r.out)
	}

	// Allowed: it runs, keyed by the environment that ran, and says so.
	profileKeys := planKeys(t, e)
	r = e.run(withProbe(wrong), append(python, "--allow-env-mismatch")...)
	expect(t, r, 0, 0, 4)
	ranKeys := actionKeys(t, e)
	if len(ranKeys) != 4 {
		t.Fatalf("%d actions, want 4", len(ranKeys))
	}
	for k := range ranKeys {
		if profileKeys[k] {
			t.Fatalf("an output of another environment was stored under the profile's key %s", k)
		}
	}
	st := e.ftc(nil, "status")
	if !strings.Contains(st.out, "environment: differed from profile pinned-2025q1 (python 3.12.1 (profile 3.11), torch 1.13.0a0+gitunknown (profile 2.5.0), transformers not installed (profile 4.48.2)), allowed by --allow-env-mismatch: outputs are cached under keys of the environment that ran") {
		t.Errorf("ftc status does not say the environment differed:\n%s", st.out)
	}

	// The stages imported ftc from the materialised entrypoints.
	_, _, ep := cacheEntries(t, e.cache)
	if ep != 1 {
		t.Fatalf("%d entrypoints directories, want 1", ep)
	}
	ents, _ := os.ReadDir(filepath.Join(e.cache, "entrypoints"))
	initPy := filepath.Join(e.cache, "entrypoints", ents[0].Name(), "ftc", "__init__.py")
	b, _ := os.ReadFile(imports)
	lines := strings.Fields(string(b))
	if len(lines) != 4 {
		t.Fatalf("%d stages imported ftc, want 4:\n%s", len(lines), b)
	}
	for _, l := range lines {
		if l != initPy {
			t.Fatalf("a stage imported ftc from %s, want %s", l, initPy)
		}
	}
	if b, _ := os.ReadFile(ranFromBin); strings.Count(string(b), "x") != 4 {
		t.Fatalf("the stages did not find python3 in the checked interpreter's directory first (%q)", b)
	}
	info, err := os.Stat(initPy)
	if err != nil || info.Mode().Perm() != 0o444 {
		t.Fatalf("%s: %v, %v (want read-only)", initPy, info.Mode(), err)
	}

	// The same environment again: its own keys are hits.
	expect(t, e.run(withProbe(wrong), append(python, "--allow-env-mismatch")...), 0, 4, 0)

	// The profile's environment: the profile's keys, run anew; the
	// entrypoints are reused, not rewritten.
	r = e.run(withProbe(fakeProbe("pinned-2025q1", 1, nil)), python...)
	expect(t, r, 0, 0, 4)
	for k := range profileKeys {
		if !actionKeys(t, e)[k] {
			t.Fatalf("profile key %s not cached after a run in the profile's environment", k)
		}
	}
	if st := e.ftc(nil, "status"); !strings.Contains(st.out, "environment: profile pinned-2025q1, as pinned (Python 3.11.7)") {
		t.Errorf("ftc status:\n%s", st.out)
	}
	if info2, err := os.Stat(initPy); err != nil || !os.SameFile(info, info2) || !info2.ModTime().Equal(info.ModTime()) {
		t.Fatal("the entrypoints were rewritten")
	}
}

// TestEnvironmentCannotRun: a missing interpreter, no CUDA, fewer GPUs
// than asked: each refused before any stage, naming what was expected and
// found, with nothing in the cache, and not overridable.
func TestEnvironmentCannotRun(t *testing.T) {
	fakes, _ := filepath.Abs("testdata/fakelaunchers")
	fake := filepath.Join(fakes, "python")
	for _, tc := range []struct {
		name  string
		probe string
		args  []string
		want  []string
		row   []string
	}{
		{"missing interpreter", "", []string{"--python", "no-such-python3.11"},
			[]string{`ftc: Python interpreter "no-such-python3.11": not found on PATH; give an interpreter with the profile's packages with --python`}, nil},
		{"no GPU visible", fakeProbe("pinned-2025q1", 0, nil), []string{"--python", fake},
			[]string{"ftc: the run needs 1 GPU(s), but " + fake + " can use none (CUDA not available): install torch 2.5.0 built for CUDA 12.4, run where a GPU is visible, or train on the CPU with ftc run --cpu (keyed as a CPU run)"}, []string{"CUDA", "available", "not available", "CANNOT RUN"}},
		{"fewer GPUs than asked", fakeProbe("pinned-2025q1", 4, nil), []string{"--python", fake, "--set", "hardware.gpusPerNode=8", "--set", "hardware.strategy=ddp", "--gpus", "8"},
			[]string{"ftc: the run needs 8 GPU(s), 4 visible: change --gpus or hardware.gpusPerNode, or CUDA_VISIBLE_DEVICES"}, []string{"GPUs", "8", "4 visible", "CANNOT RUN"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			env := []string{"FTC_ENTRYPOINT=", "FTC_TEST_TRAINER=" + trainerBin, "FTC_TEST_PROBE=" + tc.probe}
			r := e.run(env, append(tc.args, "--allow-env-mismatch")...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", r.code, r.out)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.out, w) {
					t.Errorf("output lacks %q:\n%s", w, r.out)
				}
			}
			if tc.row != nil && !hasRow(r.out, tc.row...) {
				t.Errorf("the table lacks the row %q:\n%s", tc.row, r.out)
			}
			if strings.Contains(r.out, "running") {
				t.Errorf("a stage started:\n%s", r.out)
			}
			if a, b, ep := cacheEntries(t, e.cache); a+b+ep != 0 {
				t.Fatalf("wrote to the cache: %d actions, %d blobs, %d entrypoints", a, b, ep)
			}
		})
	}
}

// TestEnvCheckCommand: `ftc env check` makes the same check alone.
func TestEnvCheckCommand(t *testing.T) {
	fakes, _ := filepath.Abs("testdata/fakelaunchers")
	e := newEnv(t)
	env := []string{"FTC_TEST_PROBE=" + fakeProbe("pinned-2025q1", 1, nil)}
	r := e.ftc(env, "env", "check", "--python", filepath.Join(fakes, "python"), e.recipe)
	if r.code != 0 || !strings.Contains(r.out, "against profile pinned-2025q1, 1 GPU(s)") || !hasRow(r.out, "GPU memory", "80 GiB (H100-80G)", "79.2 GiB (NVIDIA H100 80GB HBM3)") {
		t.Fatalf("exit %d:\n%s", r.code, r.out)
	}
	env = []string{"FTC_TEST_PROBE=" + fakeProbe("pinned-2025q1", 1, map[string]string{"peft": "0.15.0"})}
	r = e.ftc(env, "env", "check", "--python", filepath.Join(fakes, "python"), e.recipe)
	if r.code != 1 || !hasRow(r.out, "peft", "0.14.0", "0.15.0", "DIFFERS") || !strings.Contains(r.out, "fix: ftc lock "+e.recipe+" && ftc env create "+e.recipe) {
		t.Fatalf("exit %d:\n%s", r.code, r.out)
	}
	if a, b, ep := cacheEntries(t, e.cache); a+b+ep != 0 {
		t.Fatal("ftc env check wrote to the cache")
	}
}

// hasRow reports whether a table line has exactly these columns.
func hasRow(out string, cols ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.Join(columnsRE.Split(strings.TrimSpace(line), -1), "|") == strings.Join(cols, "|") {
			return true
		}
	}
	return false
}

var columnsRE = regexp.MustCompile(`\s{2,}`)
