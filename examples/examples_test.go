package examples

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/plan"
)

// scenarios are the examples every release ships (DESIGN.md §1).
var scenarios = []string{
	"grpo-ddp", "grpo-reward-funcs", "grpo-reward-model", "multinode-sft",
	"reward-model", "rlhf-ppo", "sft-ddp", "sft-fsdp", "sft-qlora",
	"sft-trainer-single", "sft-trl-single", "sft-zero2", "sft-zero3",
}

func TestEveryScenarioHasAnExample(t *testing.T) {
	for _, name := range scenarios {
		for _, f := range []string{"recipe.cue", "README.md"} {
			if _, err := os.Stat(filepath.Join(name, f)); err != nil {
				t.Errorf("example %s: %v", name, err)
			}
		}
	}
}

// TestExamplePlans compiles each example and compares its stage list,
// kinds, keys and inputs with testdata/<name>.plan. Refresh with
// FTC_UPDATE_GOLDEN=1 after a deliberate key change.
func TestExamplePlans(t *testing.T) {
	recipes, err := filepath.Glob("*/recipe.cue")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range recipes {
		name := filepath.Dir(r)
		names = append(names, name)
		t.Run(name, func(t *testing.T) {
			p, diags, err := compiler.Plan(r, nil)
			if err != nil {
				t.Fatalf("example does not vet:\n%v", diags)
			}
			for _, d := range diags {
				t.Errorf("example has a warning: %v", d)
			}
			checkFiles(t, name, p)
			got := summary(p)
			golden := filepath.Join("testdata", name+".plan")
			if os.Getenv("FTC_UPDATE_GOLDEN") != "" {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with FTC_UPDATE_GOLDEN=1 to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("plan of %s changed (-golden +got); if deliberate, refresh with FTC_UPDATE_GOLDEN=1:\n%s", name, diff)
			}
		})
	}
	for _, s := range scenarios {
		if !slices.Contains(names, s) {
			t.Errorf("scenario %s has no example", s)
		}
	}
}

// checkFiles compares every launcher file of every stage (trainer
// arguments, DeepSpeed and accelerate configs, job files) with its golden
// under testdata/files/<example>/<stage>/.
func checkFiles(t *testing.T, example string, p *plan.Plan) {
	t.Helper()
	update := os.Getenv("FTC_UPDATE_GOLDEN") != ""
	root := filepath.Join("testdata", "files", example)
	if update {
		os.RemoveAll(root)
	}
	seen := map[string]bool{}
	for _, s := range p.Stages {
		for name, content := range s.Files {
			path := filepath.Join(root, s.Name, name)
			seen[path] = true
			if update {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%v (run with FTC_UPDATE_GOLDEN=1 to create it)", err)
				continue
			}
			if diff := cmp.Diff(string(want), content); diff != "" {
				t.Errorf("%s/%s of %s changed (-golden +got):\n%s", s.Name, name, example, diff)
			}
		}
	}
	// A golden with no file behind it means a file stopped being rendered.
	filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !seen[path] {
			t.Errorf("%s is no longer rendered", path)
		}
		return nil
	})
}

// summary renders what the golden pins: order, kinds, keys, inputs, the
// launch command of every stage, and what a training stage will train
// (global batch, steps, tokens per step).
func summary(p *plan.Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "environment %s %s\n", p.Environment.Profile, p.Environment.Key)
	for _, s := range p.Stages {
		fmt.Fprintf(&b, "\n%s %s %s\n", s.Name, s.Kind, s.Key)
		for _, in := range s.Inputs {
			if in.Source != nil {
				fmt.Fprintf(&b, "  in %s %s %s@%s\n", in.Role, in.Source.Kind, in.Source.Ref, in.Source.Pin)
			} else {
				fmt.Fprintf(&b, "  in %s <- %s %s\n", in.Role, in.Stage, in.Key)
			}
		}
		if s.Launch.Server != nil {
			fmt.Fprintf(&b, "  server %s\n", strings.Join(s.Launch.Server.Argv, " "))
		}
		fmt.Fprintf(&b, "  run %s\n", strings.Join(s.Launch.Argv, " "))
		if st := s.Steps; st != nil {
			fmt.Fprintf(&b, "  batch %s\n  steps %s\n  %s\n", st.BatchLine(), st.StepsLine(), st.TokensLine())
		}
	}
	return b.String()
}
