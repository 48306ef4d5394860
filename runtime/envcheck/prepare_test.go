package envcheck

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/plan"
)

// cpuRecipe is an example planned for --cpu: no GPU is probed.
func cpuRecipe(t *testing.T) (*config.Recipe, *plan.Plan) {
	t.Helper()
	opts := compiler.Options{Plan: plan.Options{CPU: true}}
	r, diags, err := compiler.VetWith("../../examples/sft-trl-single/recipe.cue", nil, opts)
	if err != nil {
		t.Fatalf("%v\n%v", err, diags)
	}
	p, err := plan.BuildWith(r, opts.Plan)
	if err != nil {
		t.Fatal(err)
	}
	return r, p
}

// answering is a fake interpreter whose probe finds python and pkgs.
func answering(t *testing.T, python string, pkgs map[string]string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"python": python, "packages": pkgs, "executable": "/fake/bin/python"})
	if err != nil {
		t.Fatal(err)
	}
	return fakeInterpreter(t, "echo 'FTC-PROBE "+string(b)+"'")
}

func TestPrepare(t *testing.T) {
	r, p := cpuRecipe(t)
	env := r.Environment
	profile := map[string]string{}
	for n, v := range env.Packages {
		profile[n] = v
	}
	other := map[string]string{}
	for n, v := range profile {
		other[n] = v
	}
	other["transformers"] = "9.9.9"
	ctx := context.Background()
	envs := t.TempDir() // no environment made: --python is used

	t.Run("skipped", func(t *testing.T) {
		got, err := Prepare(ctx, r, p, PrepareOptions{Skip: "dry run", Python: "/nonexistent/python", Envs: envs})
		if err != nil || got.Report != nil || got.Plan != p || got.Skip != "dry run" {
			t.Fatalf("%+v, %v: want the plan as given, nothing probed", got, err)
		}
	})
	t.Run("the profile's", func(t *testing.T) {
		got, err := Prepare(ctx, r, p, PrepareOptions{Python: answering(t, env.Python+".7", profile), Envs: envs})
		if err != nil || got.Report == nil || got.Refused || got.Replanned || got.Plan != p || got.Venv != nil {
			t.Fatalf("%+v, %v: want checked, as pinned", got, err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		got, err := Prepare(ctx, r, p, PrepareOptions{Python: answering(t, env.Python+".7", other), Envs: envs})
		var re *RefusedError
		if !errors.As(err, &re) || re.Report.Rows == nil || !got.Refused {
			t.Fatalf("%+v, %v: want a RefusedError", got, err)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		got, err := Prepare(ctx, r, p, PrepareOptions{Python: answering(t, env.Python+".7", other), Envs: envs, AllowMismatch: true})
		if err != nil || !got.Refused || !got.Replanned || got.Plan.Environment.Ran == nil {
			t.Fatalf("%+v, %v: want the plan keyed by the environment that ran", got, err)
		}
		if got.Plan.Environment.Ran.Packages["transformers"] != "9.9.9" || got.Plan.Environment.Key == p.Environment.Key {
			t.Errorf("ran %+v, environment key %s (profile's %s)", got.Plan.Environment.Ran, got.Plan.Environment.Key, p.Environment.Key)
		}
		for i, s := range got.Plan.Stages {
			if s.Key == p.Stages[i].Key {
				t.Errorf("stage %s keeps the profile's key in another environment", s.Name)
			}
		}
	})
	t.Run("probe fails", func(t *testing.T) {
		got, err := Prepare(ctx, r, p, PrepareOptions{Python: fakeInterpreter(t, "exit 3"), Envs: envs})
		var pe *ProbeError
		if !errors.As(err, &pe) || got == nil || got.Report != nil {
			t.Fatalf("%+v, %v: want the probe's error", got, err)
		}
	})
}

func TestStageEnv(t *testing.T) {
	t.Setenv("PYTHONPATH", "/old")
	t.Setenv("PATH", "/usr/bin")
	got := StageEnv("/ep", &Report{Probe: &Probe{Executable: "/venv/bin/python"}})
	want := []string{"PYTHONPATH=/ep:/old", "PATH=/venv/bin:/usr/bin"}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("StageEnv = %q, want %q", got, want)
	}
	if got := StageEnv("/ep", nil); len(got) != 1 {
		t.Errorf("without a checked interpreter: %q, want PYTHONPATH only", got)
	}
}

// TestFix: without a locked closure the fix locks first, and carries the
// user's --set overrides.
func TestFix(t *testing.T) {
	r, _ := cpuRecipe(t)
	dir := t.TempDir()
	r.Dir = dir // no ftc.lock here
	got := Fix(r, "recipe.cue", []string{"name=x y"}, t.TempDir(), true)
	want := "ftc lock --set 'name=x y' recipe.cue && ftc env create --set 'name=x y' recipe.cue (the profile's packages from ftc.lock, hash-checked; then used when --python is not given)"
	if got != want {
		t.Errorf("Fix:\n got %s\nwant %s", got, want)
	}
}
