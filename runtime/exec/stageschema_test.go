package exec_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/internal/stageschema"
	"github.com/ftc-dev/ftc/runtime/backend"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/exec"
)

// stageFiles is a fake cluster backend that keeps the stage.json of each
// job and succeeds with an output of one empty file.
type stageFiles struct{ got map[string][]byte }

func (*stageFiles) Name() string { return "stage-files" }

func (b *stageFiles) Run(_ context.Context, job backend.Job) error {
	sf, err := os.ReadFile(filepath.Join(job.Dir, launch.StageConfigFile))
	if err != nil {
		return err
	}
	b.got[job.Name] = sf
	return os.WriteFile(filepath.Join(job.Dir, "output", "done"), nil, 0o644)
}

// TestWrittenStageFilesMatchTheSchema: the stage.json the runtime writes
// matches the committed schema (stdlib/python/ftc/stage.schema.json) and
// is the examples' golden of it (examples/testdata/stages), which the
// Python tests parse: the goldens are what the entrypoints are given.
// The examples cover prepare, training and export stages, a dataset of
// several files, a recipe file and Hub inputs.
func TestWrittenStageFilesMatchTheSchema(t *testing.T) {
	plan.PinEntrypointsDigestForGoldens("sha256:golden-entrypoints") // as the examples' goldens
	defer plan.PinEntrypointsDigestForGoldens(plan.EntrypointsDigest())
	schema, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(stageschema.File)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := stageschema.Compile(schema)
	if err != nil {
		t.Fatal(err)
	}
	for _, example := range []string{"sft-trl-single", "sft-mixture", "sft-export", "grpo-reward-funcs"} {
		t.Run(example, func(t *testing.T) {
			dir, err := filepath.Abs(filepath.Join("..", "..", "examples", example))
			if err != nil {
				t.Fatal(err)
			}
			p, diags, err := compiler.Plan(filepath.Join(dir, "recipe.cue"), nil)
			if err != nil {
				t.Fatalf("%v\n%v", err, diags)
			}
			store, err := cas.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			events, err := exec.NewEventLog("", nil)
			if err != nil {
				t.Fatal(err)
			}
			files, sets := dataFiles(t, dir, p)
			be := &stageFiles{got: map[string][]byte{}}
			// Export stages run on this machine: a stand-in for the
			// entrypoint keeps their stage file ($0 is the kind).
			local := t.TempDir()
			stand := []string{"sh", "-c", `cp stage.json "` + local + `/$0.json" && touch output/done`}
			if _, err := exec.Run(context.Background(), p, exec.Options{Store: store, RunsDir: t.TempDir(), Backend: be,
				Cluster: true, PrepareOnCluster: true, Events: events, RecipeDir: dir, Files: files, Sets: sets,
				Entrypoint: stand}); err != nil {
				t.Fatal(err)
			}
			for _, s := range p.Stages {
				if s.Kind == plan.KindExport {
					if be.got[s.Name], err = os.ReadFile(filepath.Join(local, "export.json")); err != nil {
						t.Fatal(err)
					}
				}
			}
			if len(be.got) != len(p.Stages) {
				t.Fatalf("stage files of %d stages, want all %d", len(be.got), len(p.Stages))
			}
			for name, got := range be.got {
				if err := v.ValidateStage(got); err != nil {
					t.Errorf("%s: the stage.json the runtime wrote does not match the schema:\n%v", name, err)
				}
				want, err := os.ReadFile(filepath.Join("..", "..", "examples", "testdata", "stages", example, name+".json"))
				if err != nil {
					t.Fatal(err)
				}
				var g, w any
				json.Unmarshal(got, &g)
				json.Unmarshal(want, &w)
				if diff := cmp.Diff(w, g); diff != "" {
					t.Errorf("%s: the runtime's stage.json is not the examples' golden (-golden +runtime):\n%s", name, diff)
				}
			}
		})
	}
}

// dataFiles is what resolve checks for a run: each data file of the
// plan by its recipe path, and the files of a directory.
func dataFiles(t *testing.T, dir string, p *plan.Plan) (map[string]string, map[string]map[string]string) {
	t.Helper()
	files, sets := map[string]string{}, map[string]map[string]string{}
	for _, s := range p.Stages {
		for _, in := range s.Inputs {
			if in.Source == nil || in.Source.Kind != "file" {
				continue
			}
			ref := in.Source.Ref
			abs := filepath.Join(dir, filepath.FromSlash(ref))
			fi, err := os.Stat(abs)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.IsDir() {
				files[ref] = abs
				continue
			}
			sets[ref] = map[string]string{}
			filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(dir, p)
					sets[ref][filepath.ToSlash(rel)] = p
				}
				return err
			})
		}
	}
	return files, sets
}
