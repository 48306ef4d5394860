package load_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cuelang.org/go/cue"

	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/load"
)

const recipe = `package recipe

import (
	"ftc.dev/stdlib/gpus"
	"ftc.dev/stdlib/models"
	"ftc.dev/stdlib/profiles"
)

apiVersion:  "ftc.dev/v1alpha1"
name:        "t"
environment: profiles.Pinned2025Q1
hardware: {gpu: gpus.H100_80G}
datasets: d: {
	file: {path: "d.jsonl", sha256: "0000000000000000000000000000000000000000000000000000000000000000"}
	format: "text"
}
stages: s: {
	method: "sft"
	model:  models.Qwen25_05BInstruct
	data: train: datasets.d
	training: learningRate: 1e-4
}
`

func write(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	f := filepath.Join(dir, "recipe.cue")
	if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func mustLoad(t *testing.T, file string, sets ...string) *load.Instance {
	t.Helper()
	inst, err := load.Load(file, overrides(t, sets...))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return inst
}

func overrides(t *testing.T, sets ...string) []load.Override {
	var out []load.Override
	for _, s := range sets {
		o, err := load.ParseOverride(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

func lookup(t *testing.T, inst *load.Instance, path string) cue.Value {
	t.Helper()
	v := inst.Value.LookupPath(cue.ParsePath(path))
	if !v.Exists() {
		t.Fatalf("%s does not exist", path)
	}
	return v
}

func TestDefaultsApplied(t *testing.T) {
	inst := mustLoad(t, write(t, recipe))
	if s, _ := lookup(t, inst, "hardware.strategy").String(); s != "single" {
		t.Errorf("strategy default = %q", s)
	}
	if s, _ := lookup(t, inst, "stages.s.output.from.stage").String(); s != "s" {
		t.Errorf("output.from.stage = %q", s)
	}
}

func TestOverrideReplacesWrittenValue(t *testing.T) {
	inst := mustLoad(t, write(t, recipe), "stages.s.training.learningRate=3e-5")
	if f, _ := lookup(t, inst, "stages.s.training.learningRate").Float64(); f != 3e-5 {
		t.Errorf("learningRate = %v, want the override 3e-5", f)
	}
}

func TestOverrideAddsMissingField(t *testing.T) {
	inst := mustLoad(t, write(t, recipe), "stages.s.training.microBatch=8", "hardware.nccl.debug=INFO")
	if n, _ := lookup(t, inst, "stages.s.training.microBatch").Int64(); n != 8 {
		t.Errorf("microBatch = %d", n)
	}
	if s, _ := lookup(t, inst, "hardware.nccl.debug").String(); s != "INFO" {
		t.Errorf("bare word override gave %q, want the string INFO", s)
	}
}

func TestOverrideRefinesExpression(t *testing.T) {
	// model is a preset reference, not a struct literal: the override is
	// unified into it.
	inst := mustLoad(t, write(t, recipe), "stages.s.model.dtype=fp16")
	if s, _ := lookup(t, inst, "stages.s.model.dtype").String(); s != "fp16" {
		t.Errorf("dtype = %q", s)
	}
}

func TestBadOverrideNamesTheFlag(t *testing.T) {
	_, err := load.Load(write(t, recipe), overrides(t, "stages.s.training.learningRate=7"))
	var l diag.List
	if !errors.As(err, &l) || len(l) == 0 {
		t.Fatalf("want diagnostics, got %v", err)
	}
	var out strings.Builder
	l.Print(&out, "")
	if !strings.Contains(out.String(), "--set stages.s.training.learningRate=7: stages.s.training.learningRate") {
		t.Errorf("diagnostic does not name the flag:\n%s", out.String())
	}
}

func TestUnknownFieldAtUserPosition(t *testing.T) {
	src := strings.Replace(recipe, "learningRate: 1e-4", "learningRat: 1e-4", 1)
	_, err := load.Load(write(t, src), nil)
	var l diag.List
	if !errors.As(err, &l) || len(l) != 1 {
		t.Fatalf("want one diagnostic, got %v", err)
	}
	p := l[0].Pos.Position()
	if filepath.Base(p.Filename) != "recipe.cue" || p.Line != 21 || p.Column != 12 {
		t.Errorf("position %s, want recipe.cue:21:12", p)
	}
	if l[0].Path != "stages.s.training.learningRat" || l[0].Message != "field not allowed" {
		t.Errorf("got %s: %s", l[0].Path, l[0].Message)
	}
}

func TestParseOverride(t *testing.T) {
	for _, bad := range []string{"", "x", "=1"} {
		if _, err := load.ParseOverride(bad); err == nil {
			t.Errorf("ParseOverride(%q) accepted", bad)
		}
	}
	o, err := load.ParseOverride("a.b=c=d")
	if err != nil || o.Path != "a.b" || o.Value != "c=d" {
		t.Errorf("ParseOverride(a.b=c=d) = %+v, %v", o, err)
	}
}

func TestOverrideReplacesFieldInsideUnification(t *testing.T) {
	src := strings.Replace(recipe, "hardware: {gpu: gpus.H100_80G}", `hardware: {gpu: gpus.H100_80G} & {target: "slurm", slurm: {}}`, 1)
	inst := mustLoad(t, write(t, src), "hardware.target=kubernetes")
	if s, _ := lookup(t, inst, "hardware.target").String(); s != "kubernetes" {
		t.Errorf("target = %q, want the override", s)
	}
}
