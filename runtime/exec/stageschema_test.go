package exec_test

import (
	"context"
	"encoding/json"
	"errors"
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
// job; prepare jobs succeed with an empty output, training jobs fail.
type stageFiles struct{ got map[string][]byte }

func (*stageFiles) Name() string { return "stage-files" }

func (b *stageFiles) Run(_ context.Context, job backend.Job) error {
	sf, err := os.ReadFile(filepath.Join(job.Dir, launch.StageConfigFile))
	if err != nil {
		return err
	}
	b.got[job.Name] = sf
	if filepath.Ext(job.Name) != ".prepare" {
		return errors.New("recorded")
	}
	return os.WriteFile(filepath.Join(job.Dir, "output", "rows.jsonl"), nil, 0o644)
}

// TestWrittenStageFilesMatchTheSchema: the stage.json the runtime writes
// matches the committed schema (stdlib/python/ftc/stage.schema.json) and
// is the examples' golden of it (examples/testdata/stages), which the
// Python tests parse: the goldens are what the entrypoints are given.
func TestWrittenStageFilesMatchTheSchema(t *testing.T) {
	plan.PinEntrypointsDigestForGoldens("sha256:golden-entrypoints") // as the examples' goldens
	defer plan.PinEntrypointsDigestForGoldens(plan.EntrypointsDigest())
	const example = "sft-trl-single"
	dir := filepath.Join("..", "..", "examples", example)
	p, diags, err := compiler.Plan(filepath.Join(dir, "recipe.cue"), nil)
	if err != nil {
		t.Fatalf("%v\n%v", err, diags)
	}
	store, err := cas.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(filepath.Join(dir, "data", "chat.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	events, err := exec.NewEventLog("", nil)
	if err != nil {
		t.Fatal(err)
	}
	be := &stageFiles{got: map[string][]byte{}}
	_, err = exec.Run(context.Background(), p, exec.Options{Store: store, RunsDir: t.TempDir(), Backend: be,
		Cluster: true, PrepareOnCluster: true, Events: events, RecipeDir: dir,
		Files: map[string]string{"data/chat.jsonl": abs}})
	if err == nil {
		t.Fatal("the backend fails training jobs; the run must fail")
	}
	schema, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(stageschema.File)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := stageschema.Compile(schema)
	if err != nil {
		t.Fatal(err)
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
}
