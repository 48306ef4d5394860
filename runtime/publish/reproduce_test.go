package publish

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/key"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/cas"
)

// TestReproduce runs Reproduce on testArtifact in a layout with stand-in
// steps: the rows say what matched, the steps' failures and the
// artifact's gaps come back typed.
func TestReproduce(t *testing.T) {
	img, err := Build(testArtifact(t))
	if err != nil {
		t.Fatal(err)
	}
	lay := t.TempDir()
	if err := WriteLayout(lay, "tiny", img); err != nil {
		t.Fatal(err)
	}
	sft := key.Key("sha256:" + strings.Repeat("1", 64))
	var flags KeyFlags
	var planned string
	planWith := func(k key.Key) func(context.Context, string, KeyFlags) (*plan.Plan, error) {
		return func(_ context.Context, file string, f KeyFlags) (*plan.Plan, error) {
			planned, flags = file, f
			return &plan.Plan{Stages: []*plan.Stage{{Name: "sft", Key: k}}}, nil
		}
	}
	run := func(o ReproduceOptions) (*Reproduced, error) {
		o.Layout, o.Dir = lay, t.TempDir()
		return Reproduce(context.Background(), o)
	}

	var pulled *Fetched
	res, err := run(ReproduceOptions{Plan: planWith(sft), Pulled: func(f *Fetched) { pulled = f }})
	if err != nil || res.Failed() != 0 || pulled == nil || !flags.CPU || filepath.Base(planned) != "recipe.cue" {
		t.Fatalf("Reproduce = %+v, %v (pulled %v, flags %+v, planned %s)", res, err, pulled != nil, flags, planned)
	}
	var what []string
	for _, r := range res.Rows {
		what = append(what, r.What+"="+r.Match)
	}
	if got := strings.Join(what, " "); got != "artifact=yes key sft=yes image=-" {
		t.Errorf("rows %s", got)
	}

	// Another key here, and another image rebuilt: two rows differ.
	res, err = run(ReproduceOptions{Plan: planWith(key.Key("sha256:" + strings.Repeat("3", 64))),
		Rebuild: func(context.Context, string) (string, error) { return "sha256:" + strings.Repeat("b", 64), nil }})
	if err != nil || res.Failed() != 2 {
		t.Fatalf("Reproduce with another key and image = %+v, %v", res, err)
	}

	step := func(err error) string {
		var re *ReproduceError
		if errors.As(err, &re) {
			return re.Step
		}
		return ""
	}
	failed := errors.New("the step said why")
	if _, err := run(ReproduceOptions{Plan: planWith(sft), Rebuild: func(context.Context, string) (string, error) { return "", failed }}); step(err) != StepRebuild || !errors.Is(err, failed) {
		t.Errorf("a failed rebuild: %v", err)
	}
	var ns *NoStageError
	if _, err := run(ReproduceOptions{Plan: planWith(sft), Rerun: "ppo"}); !errors.As(err, &ns) || ns.Stage != "ppo" {
		t.Errorf("a rerun of a stage the artifact lacks: %v", err)
	}
	if _, err := run(ReproduceOptions{Plan: planWith(sft), Rerun: "sft", RunStage: func(context.Context, string, string) (*cas.Store, error) { return nil, failed }}); step(err) != StepRerun {
		t.Errorf("a failed rerun: %v", err)
	}
	if _, err := run(ReproduceOptions{Plan: func(context.Context, string, KeyFlags) (*plan.Plan, error) { return nil, failed }}); err != failed {
		t.Errorf("Plan's error is returned as it is: %v", err)
	}
	a := testArtifact(t)
	a.Index.Image = ""
	noImage, _ := Build(a)
	lay2 := t.TempDir()
	if err := WriteLayout(lay2, "tiny", noImage); err != nil {
		t.Fatal(err)
	}
	rebuild := func(context.Context, string) (string, error) {
		t.Fatal("rebuilt an image the artifact does not name")
		return "", nil
	}
	if _, err := Reproduce(context.Background(), ReproduceOptions{Layout: lay2, Dir: t.TempDir(), Plan: planWith(sft), Rebuild: rebuild}); !errors.Is(err, ErrNoImage) {
		t.Errorf("a rebuild of an artifact naming no image: %v", err)
	}
	if _, err := Reproduce(context.Background(), ReproduceOptions{Layout: t.TempDir(), Dir: t.TempDir(), Plan: planWith(sft)}); step(err) != StepOpen {
		t.Errorf("an empty layout: %v", err)
	}
}
