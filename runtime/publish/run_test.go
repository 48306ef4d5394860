package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/key"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/exec"
)

func TestParseKeyFlags(t *testing.T) {
	k, err := ParseKeyFlags([]string{"--set", "a=1", "--gpus", "4", "--cpu", "--set", "b=2"})
	want := KeyFlags{Sets: []string{"a=1", "b=2"}, GPUs: 4, GPUsSet: true, CPU: true}
	if err != nil || !cmp.Equal(k, want) {
		t.Errorf("ParseKeyFlags = %+v, %v; want %+v", k, err, want)
	}
	// Args writes what ParseKeyFlags reads, in its order.
	if got, want := want.Args(), []string{"--set", "a=1", "--set", "b=2", "--gpus", "4", "--cpu"}; !cmp.Equal(got, want) {
		t.Errorf("Args = %q, want %q", got, want)
	}
	if back, err := ParseKeyFlags(want.Args()); err != nil || !cmp.Equal(back, want) {
		t.Errorf("ParseKeyFlags(Args()) = %+v, %v", back, err)
	}
	if got := (KeyFlags{GPUs: 2}).Args(); got != nil {
		t.Errorf("--gpus not given: Args = %q", got)
	}
	for _, bad := range [][]string{{"--gpus"}, {"--gpus", "x"}, {"--until", "sft"}} {
		if _, err := ParseKeyFlags(bad); err == nil {
			t.Errorf("ParseKeyFlags(%q): no error", bad)
		}
	}
}

// writeRecord writes a run record: events.jsonl with a start and an end.
func writeRecord(t *testing.T, root, id, recipe string) string {
	t.Helper()
	dir := filepath.Join(root, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range []exec.Event{{Time: at, Type: exec.EventRunStart, Message: recipe, Flags: []string{"--cpu"}}, {Time: at.Add(time.Minute), Type: exec.EventRunEnd}} {
		line, _ := json.Marshal(e)
		b.Write(append(line, '\n'))
	}
	if err := os.WriteFile(filepath.Join(dir, "events.jsonl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLastRecord(t *testing.T) {
	root := t.TempDir()
	if _, err := LastRecord(root, "tiny"); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("empty records: %v, want ErrNoRecord", err)
	}
	writeRecord(t, root, "20260101T000000Z-tiny", "tiny")
	newest := writeRecord(t, root, "20260102T000000Z-tiny", "tiny")
	other := writeRecord(t, root, "20260103T000000Z-other", "other")
	os.WriteFile(filepath.Join(root, "latest"), []byte("20260103T000000Z-other\n"), 0o644)
	rec, err := LastRecord(root, "tiny")
	if err != nil || rec.Dir != newest || rec.Start == nil || rec.End == nil || rec.Start.Message != "tiny" {
		t.Fatalf("LastRecord(tiny) = %+v, %v; want %s", rec, err, newest)
	}
	if rec, err := LastRecord(root, ""); err != nil || rec.Dir != other {
		t.Fatalf("LastRecord without a name = %+v, %v; want the latest, %s", rec, err, other)
	}
	os.WriteFile(filepath.Join(newest, "events.jsonl"), []byte(`{"type":"stage-start"}`+"\n"), 0o644)
	if _, err := LastRecord(root, "tiny"); err == nil || !strings.Contains(err.Error(), "no run-start event") {
		t.Fatalf("a record without run-start: %v", err)
	}
}

// TestFromRun collects an artifact from a record, a one-stage plan and a
// store holding that stage's output, and refuses a stage not in it.
func TestFromRun(t *testing.T) {
	root, recipeDir := t.TempDir(), t.TempDir()
	writeRecord(t, root, "20260101T000000Z-tiny", "tiny")
	rec, err := LastRecord(root, "tiny")
	if err != nil {
		t.Fatal(err)
	}
	store, err := cas.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "adapter.safetensors"), []byte("weights"), 0o644)
	tree, _, err := store.PutTree(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := key.Key("sha256:" + strings.Repeat("1", 64))
	if err := store.PutAction(cas.Action{Key: string(k), Outputs: map[string]cas.Digest{"output": tree}, Summary: json.RawMessage(`{"loss":1}`)}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(recipeDir, "recipe.cue")
	os.WriteFile(file, []byte("name: \"tiny\"\n"), 0o644)
	p := &plan.Plan{Recipe: "tiny", Stages: []*plan.Stage{{Name: "sft", Kind: plan.KindSFT, Key: k}}}
	o := RunOptions{Record: rec, Recipe: &config.Recipe{Name: "tiny", Dir: recipeDir}, RecipeFile: file, Plan: p,
		Flags: []string{"--cpu"}, Store: store, WithOutputs: []string{"sft"}, Builder: "test"}
	a, err := FromRun(o)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range a.Files {
		names = append(names, f.Role+" "+f.Name)
	}
	want := []string{"output-tree ftc-run/outputs/sft.tree.json", "output ftc-run/outputs/sft/adapter.safetensors",
		"recipe recipe.cue", "plan ftc-run/plan.json", "events ftc-run/events.jsonl"}
	if d := cmp.Diff(want, names); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}
	if s := a.Index.Stages; len(s) != 1 || s[0].Output != string(tree) || !json.Valid(s[0].Metrics) || !strings.Contains(string(s[0].Metrics), `"loss"`) || a.Index.Started == "" || a.Index.Finished == "" {
		t.Errorf("index %+v", a.Index)
	}
	if a.Bytes() <= int64(len("weights")) {
		t.Errorf("Bytes() = %d", a.Bytes())
	}
	lay := t.TempDir()
	pub, err := Publish(context.Background(), a, Target{Layout: lay, Tag: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	if _, d, err := ReadLayout(lay, "tiny"); err != nil || d != pub.Digest.String() || pub.Size == 0 {
		t.Errorf("published %+v; the layout has %s (%v)", pub, d, err)
	}
	if _, err := Publish(context.Background(), a, Target{Layout: filepath.Join(file, "x"), Tag: "tiny"}); err == nil || !strings.HasPrefix(err.Error(), "writing the layout ") {
		t.Errorf("a layout that cannot be made: %v", err)
	}
	p.Stages = append(p.Stages, &plan.Stage{Name: "dpo", Kind: plan.KindSFT, Key: key.Key("sha256:" + strings.Repeat("9", 64))})
	var nc *NotCachedError
	if _, err := FromRun(o); !errors.As(err, &nc) || nc.Stage != "dpo" {
		t.Errorf("a stage not in the cache: %v, want NotCachedError", err)
	}
}

func TestCompareImage(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	f := &Fetched{Index: Index{Image: "reg/img@" + d}}
	if r := f.CompareImage(""); r.Match != "-" || r.Failed() {
		t.Errorf("not rebuilt: %+v", r)
	}
	if r := f.CompareImage(d); r.Match != "yes" {
		t.Errorf("same digest: %+v", r)
	}
	if r := f.CompareImage("sha256:" + strings.Repeat("b", 64)); !r.Failed() {
		t.Errorf("another digest: %+v", r)
	}
}

// TestFromRunPublishesNoLocalPaths: the run record's paths under the
// recipe's folder, the cache and the home folder are published as
// $RECIPE_DIR, $FTC_CACHE and $HOME (a cache inside the home folder is
// the cache), in events.jsonl and report.html alike; a folder that only
// shares a prefix is left alone.
func TestFromRunPublishesNoLocalPaths(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	cache, recipeDir := filepath.Join(home, ".cache", "ftc"), filepath.Join(home, "work", "tiny")
	store, err := cas.Open(filepath.Join(cache, "store"))
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(cache, "records")
	dir := writeRecord(t, root, "20260101T000000Z-tiny", "tiny")
	events := fmt.Sprintf(`{"type":"run-start","message":"tiny"}
{"type":"start","stage":"sft","message":"python -m ftc.entry sft --config %[1]s/runs/k/stage.json"}
{"type":"resume","stage":"sft","message":"resuming from %[1]s/runs/k/checkpoints/checkpoint-2"}
{"type":"failed","stage":"sft","message":"reading %[2]s/data/a.jsonl, %[3]s/notes and %[3]s-old/x"}
{"type":"cached","stage":"sft","message":"%[2]s"}
{"type":"run-end","message":"0 cached, 1 ran, 0 failed"}
`, cache, recipeDir, home)
	os.WriteFile(filepath.Join(dir, "events.jsonl"), []byte(events), 0o644)
	os.WriteFile(filepath.Join(dir, "report.html"), []byte("<p>log at "+cache+"/runs/k/logs/stage.log</p>"), 0o644)
	rec, err := LastRecord(root, "tiny")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(recipeDir, 0o755)
	file := filepath.Join(recipeDir, "recipe.cue")
	os.WriteFile(file, []byte("name: \"tiny\"\n"), 0o644)
	a, err := FromRun(RunOptions{Record: rec, Recipe: &config.Recipe{Name: "tiny", Dir: recipeDir}, RecipeFile: file,
		Plan: &plan.Plan{Recipe: "tiny"}, Store: store, Builder: "test", Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range a.Files {
		got[f.Role] = string(f.Content)
	}
	for _, want := range []string{
		`--config $FTC_CACHE/runs/k/stage.json"`, `resuming from $FTC_CACHE/runs/k/checkpoints/checkpoint-2"`,
		`reading $RECIPE_DIR/data/a.jsonl, $HOME/notes and ` + home + `-old/x"`, `"message":"$RECIPE_DIR"`,
	} {
		if !strings.Contains(got[RoleEvents], want) {
			t.Errorf("events.jsonl lacks %q:\n%s", want, got[RoleEvents])
		}
	}
	if want := "<p>log at $FTC_CACHE/runs/k/logs/stage.log</p>"; got[RoleReport] != want {
		t.Errorf("report.html = %q, want %q", got[RoleReport], want)
	}
	if strings.Count(got[RoleEvents], home) != 1 {
		t.Errorf("events.jsonl names the home folder other than in %s-old:\n%s", home, got[RoleEvents])
	}
}
