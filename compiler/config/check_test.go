package config

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ftc-dev/ftc/internal/needs"

	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/pyast"
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

// needParser skips a test that needs the Python parser when this build
// has none (CGO_ENABLED=0).
func needParser(t *testing.T) {
	t.Helper()
	if _, err := pyast.Parse(nil); errors.Is(err, pyast.ErrNoParser) {
		needs.Missing(t, "cgo (the Python parser is tree-sitter, in C)")
	}
}

func TestRewardFunctionSignature(t *testing.T) {
	needParser(t)
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

def redefined(prompts, completions, **kwargs):
    return []

def redefined(prompts, completions):
    return []

def posonly_default(extra=None, /, *, prompts, completions, **kwargs):
    return []

def string_default(prompts, completions, pattern="a,b)", *, scale=1.0, **kwargs):
    return []

@decorator
def decorated(prompts, completions):
    return []

made = make_reward(400)
lam = lambda prompts, completions: []
from helpers import score as imported
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
		{"redefined", "has no **kwargs parameter"},
		{"posonly_default", ""},
		{"string_default", ""},
		{"decorated", "warning: decorated in r.py has no **kwargs parameter (unless its decorator changes its signature)"},
		{"made", ""},
		{"lam", "has no **kwargs parameter"},
		{"imported", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Recipe{Files: map[string]File{"r.py": {Content: []byte(src)}}}
			c := &checker{r: r, files: fstest.MapFS{}, data: fstest.MapFS{}}
			c.rewardFunction("p", RewardFunction{File: "r.py", Name: tc.name}, nil)
			got := ""
			if len(c.diags) > 0 {
				got = c.diags[0].Message
				if c.diags[0].Severity == diag.Warning {
					got = "warning: " + got
				}
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
	needParser(t)
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

// A syntax error is reported once per file, however many rewards name it,
// at its line and column in the .py file; the rewards are not checked
// further.
func TestRewardFunctionSyntaxError(t *testing.T) {
	needParser(t)
	src := "def f(prompts, completions, **kwargs):\n    return [1.0 for c in completions\n"
	r := &Recipe{Dir: "/recipes/a", Files: map[string]File{"sub/r.py": {Content: []byte(src)}}}
	c := &checker{r: r}
	c.rewardFunction("p0", RewardFunction{File: "sub/r.py", Name: "f"}, nil)
	c.rewardFunction("p1", RewardFunction{File: "sub/r.py", Name: "g"}, nil)
	if len(c.diags) != 1 {
		t.Fatalf("want one diagnostic, got %v", c.diags)
	}
	d := c.diags[0]
	if got := diag.Where(d.Pos, "/recipes/a") + d.Message; got != "sub/r.py:2:12: syntax error: '[' was never closed" {
		t.Errorf("got %q", got)
	}
	if d.Severity != diag.Error || !strings.Contains(d.Hint, "p0") {
		t.Errorf("severity %v, hint %q", d.Severity, d.Hint)
	}
}

func TestRewardFunctionStarImport(t *testing.T) {
	needParser(t)
	r := &Recipe{Files: map[string]File{"r.py": {Content: []byte("from helpers import *\n")}}}
	c := &checker{r: r}
	c.rewardFunction("p", RewardFunction{File: "r.py", Name: "f"}, nil)
	if len(c.diags) != 1 || c.diags[0].Severity != diag.Warning || !strings.Contains(c.diags[0].Message, "import *") {
		t.Errorf("want a warning about the star import, got %v", c.diags)
	}
}

// Without cgo there is no parser: the file is not checked, and vet says so
// with a warning rather than refusing every GRPO recipe.
func TestRewardFunctionWithoutParser(t *testing.T) {
	r := &Recipe{Files: map[string]File{"r.py": {Content: []byte("def f(x): pass\n")}}}
	// What a build without cgo has (parse_nocgo.go).
	c := &checker{r: r, parse: func([]byte) (*pyast.Module, error) { return nil, pyast.ErrNoParser }}
	c.rewardFunction("p", RewardFunction{File: "r.py", Name: "f"}, nil)
	if len(c.diags) != 1 || c.diags[0].Severity != diag.Warning || !strings.Contains(c.diags[0].Message, "not checked") {
		t.Errorf("want one warning, got %v", c.diags)
	}
}
