package config

import (
	"strings"
	"testing"
	"testing/fstest"
)

func recipeWith(gpus int, st Stage) *Recipe {
	return &Recipe{
		Hardware: Hardware{Nodes: 1, GPUsPerNode: gpus, Strategy: "ddp"},
		Stages:   map[string]Stage{st.Name: st},
		Files:    map[string]File{},
	}
}

func TestBatch(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		gpus, micro, accum, global int
		wantAccum, wantGlobal      int
		ok                         bool
	}{
		{"defaults", 1, 1, 0, 0, 1, 1, true},
		{"accum", 8, 2, 4, 0, 4, 64, true},
		{"global derives accum", 8, 2, 0, 64, 4, 64, true},
		{"global not a multiple", 8, 2, 0, 60, 3, 60, false},
		{"both agree", 4, 2, 2, 16, 2, 16, true},
		{"both disagree", 4, 2, 2, 32, 2, 16, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := Stage{Name: "s", Method: "sft", Training: Training{MicroBatch: tc.micro, GradAccum: tc.accum, GlobalBatch: tc.global}}
			b, ok := recipeWith(tc.gpus, st).Batch(st)
			if ok != tc.ok || b.GradAccum != tc.wantAccum || b.GlobalBatch != tc.wantGlobal {
				t.Errorf("Batch = %+v, %v; want accum %d global %d ok %v", b, ok, tc.wantAccum, tc.wantGlobal, tc.ok)
			}
		})
	}
}

func TestTrainingProcessesExcludeVLLM(t *testing.T) {
	st := Stage{Name: "g", Method: "grpo", GRPO: &GRPO{Generation: Generation{Engine: "vllm", GPUs: 2}}}
	if n := recipeWith(8, st).TrainingProcesses(st); n != 6 {
		t.Errorf("TrainingProcesses = %d, want 6", n)
	}
	st.GRPO.Generation.Engine = "transformers"
	if n := recipeWith(8, st).TrainingProcesses(st); n != 8 {
		t.Errorf("TrainingProcesses = %d, want 8", n)
	}
}

func TestRewardFunctionSignature(t *testing.T) {
	src := `import re

def fmt_reward(prompts, completions, **kwargs):
    return [1.0 for _ in completions]

def annotated(prompts: list[dict[str, str]], completions: list[str], **kwargs) -> list[float]:
    return []

def no_kwargs(prompts, completions):
    return []

def one_arg(completions, **kw):
    return []

def renamed(xs, ys, **kwargs):
    return []

def posonly(prompts, completions, /, **kwargs):
    return []

class X:
    def method_only(self, prompts, completions, **kw):
        pass
`
	for _, tc := range []struct {
		name, want string
	}{
		{"fmt_reward", ""},
		{"annotated", ""},
		{"no_kwargs", "has no **kwargs parameter"},
		{"one_arg", ""},
		{"renamed", "gets a value only if the dataset has a column \"xs\""},
		{"posonly", "positional-only"},
		{"method_only", "defines no top-level function \"method_only\""},
		{"missing", "defines no top-level function \"missing\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Recipe{Files: map[string]File{"r.py": {Content: []byte(src)}}}
			c := &checker{r: r, files: fstest.MapFS{}, data: fstest.MapFS{}}
			c.rewardFunction("p", RewardFunction{File: "r.py", Name: tc.name}, nil)
			got := ""
			if len(c.diags) > 0 {
				got = c.diags[0].Message
			}
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestValidGenerations(t *testing.T) {
	if got := validGenerations(12); got != "2, 3, 4, 6, 12" {
		t.Errorf("validGenerations(12) = %q", got)
	}
	if got := validGenerations(1); !strings.HasPrefix(got, "none") {
		t.Errorf("validGenerations(1) = %q", got)
	}
}

func TestVersionAtLeast(t *testing.T) {
	for v, want := range map[string]bool{"0.16.0": false, "0.18.0": true, "0.18": true, "1.9.0": true, "0.9.9": false, "": false, "x.y": false, "0.18rc1": true} {
		if got := versionAtLeast(v, 0, 18); got != want {
			t.Errorf("versionAtLeast(%q, 0, 18) = %v", v, got)
		}
	}
}

func TestRewardFunctionColumns(t *testing.T) {
	src := "def f(prompts, completions, answer, **kwargs):\n    return []\n"
	r := &Recipe{Files: map[string]File{"r.py": {Content: []byte(src)}}}
	c := &checker{r: r}
	c.rewardFunction("p", RewardFunction{File: "r.py", Name: "f"}, []string{"answer", "prompt"})
	if len(c.diags) != 0 {
		t.Errorf("a parameter named after a column was refused: %v", c.diags)
	}
	c.rewardFunction("p", RewardFunction{File: "r.py", Name: "f"}, []string{"prompt"})
	if len(c.diags) != 1 || !strings.Contains(c.diags[0].Message, "gets no value") {
		t.Errorf("want one error for the missing column, got %v", c.diags)
	}
}
