package examples

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/load"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/internal/stageschema"
	"github.com/ftc-dev/ftc/runtime/exec"
)

// stageVariants are plans beyond the examples as written whose stage
// files are checked too: --cpu runs, and an SFT stage with its speed
// switches off the defaults.
var stageVariants = []struct {
	name, example string
	sets          []string
	opts          plan.Options
}{
	{"sft-ddp--cpu", "sft-ddp", nil, plan.Options{CPU: true}},
	{"rlhf-ppo--cpu", "rlhf-ppo", nil, plan.Options{CPU: true}},
	// QLoRA's paged 8-bit optimizer is CUDA's only.
	{"sft-export--cpu", "sft-export", []string{`stages.sft.training.optimizer="adamw"`}, plan.Options{CPU: true}},
	{"sft-trl-single--speed", "sft-trl-single", []string{
		`stages.sft.speed.paddingFree=false`, `stages.sft.speed.lossChunkTokens=1024`, `stages.sft.speed.attention="loop"`,
	}, plan.Options{}},
}

// TestStageFilesMatchTheSchema renders the stage.json of every stage of
// every example (and of stageVariants) as the runtime writes it, checks
// it against the committed schema (stdlib/python/ftc/stage.schema.json,
// generated from the Go types), and compares it with its golden under
// testdata/stages/, which the Python tests check against the same schema
// and parse with ftc/stage.py. Refresh with FTC_UPDATE_GOLDEN=1.
func TestStageFilesMatchTheSchema(t *testing.T) {
	schema, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(stageschema.File)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := stageschema.Compile(schema)
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		name, recipe string
		sets         []string
		opts         plan.Options
	}
	recipes, err := filepath.Glob("*/recipe.cue")
	if err != nil {
		t.Fatal(err)
	}
	var runs []run
	for _, r := range recipes {
		runs = append(runs, run{name: filepath.Dir(r), recipe: r})
	}
	for _, sv := range stageVariants {
		runs = append(runs, run{sv.name, filepath.Join(sv.example, "recipe.cue"), sv.sets, sv.opts})
	}
	update := os.Getenv("FTC_UPDATE_GOLDEN") != ""
	root := filepath.Join("testdata", "stages")
	if update {
		os.RemoveAll(root)
	}
	seen := map[string]bool{}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			var ovs []load.Override
			for _, s := range r.sets {
				o, err := load.ParseOverride(s)
				if err != nil {
					t.Fatal(err)
				}
				ovs = append(ovs, o)
			}
			p, diags, err := compiler.PlanWith(r.recipe, ovs, compiler.Options{Plan: r.opts})
			if err != nil {
				t.Fatalf("%v\n%v", err, diags)
			}
			for _, s := range p.Stages {
				if want := stageschema.ConfigByKind[s.Kind]; reflect.TypeOf(s.Config) != want {
					t.Errorf("%s: a %s stage carries a %T; the schema says %s", s.Name, s.Kind, s.Config, want)
				}
				b, err := json.MarshalIndent(stageFile(p, s, filepath.Dir(r.recipe)), "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				b = append(b, '\n')
				if err := v.ValidateStage(b); err != nil {
					t.Errorf("%s: stage.json does not match %s:\n%v", s.Name, stageschema.File, err)
				}
				golden := filepath.Join(root, r.name, s.Name+".json")
				seen[golden] = true
				if update {
					os.MkdirAll(filepath.Dir(golden), 0o755)
					if err := os.WriteFile(golden, b, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Errorf("%v (run with FTC_UPDATE_GOLDEN=1 to create it)", err)
					continue
				}
				if diff := cmp.Diff(string(want), string(b)); diff != "" {
					t.Errorf("stage.json of %s changed (-golden +got); if deliberate, refresh with FTC_UPDATE_GOLDEN=1:\n%s", s.Name, diff)
				}
			}
		})
	}
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !seen[p] {
			t.Errorf("%s is no longer rendered", p)
		}
		return nil
	})
}

// stageFile is the stage file the runtime writes for s (runtime/exec's
// run and layInputs), with the inputs where it lays them out: a dataset
// naming several files (a directory or a glob under the recipe's
// directory dir) as the input's folder. runtime/exec's
// TestWrittenStageFilesMatchTheSchema compares one example's with what
// the runtime writes.
func stageFile(p *plan.Plan, s *plan.Stage, dir string) exec.StageFile {
	inputs := map[string]exec.StageInput{}
	for _, in := range s.Inputs {
		rel := path.Join("inputs", in.Role)
		switch {
		case in.Stage != "":
			inputs[in.Role] = exec.StageInput{Path: rel, Kind: "stage-output"}
		case in.Source.Kind == "file" && (strings.ContainsAny(in.Source.Ref, "*?[") || isDir(filepath.Join(dir, in.Source.Ref))):
			inputs[in.Role] = exec.StageInput{Path: rel, Kind: "file"}
		case in.Source.Kind == "file" || in.Source.Kind == "recipe-file":
			inputs[in.Role] = exec.StageInput{Path: path.Join(rel, path.Base(in.Source.Ref)), Kind: "file"}
		default:
			inputs[in.Role] = exec.StageInput{Repo: in.Source.Ref, Revision: in.Source.Pin, Kind: in.Source.Kind}
		}
	}
	world := exec.World{Processes: s.Launch.Processes, Strategy: p.Hardware.Strategy}
	if s.CPUOnly() {
		world = exec.World{Processes: 1, Strategy: config.StrategySingle}
	}
	return exec.StageFile{
		APIVersion: exec.StageFileVersion, Name: s.Name, Kind: s.Kind, Key: string(s.Key),
		Config: s.Config, Inputs: inputs, Output: "output", Checkpoints: "checkpoints",
		Metrics: "metrics.jsonl", World: world, GraceSeconds: p.Hardware.GraceSeconds,
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
