package report

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/key"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/exec"
)

// fakeRun is the records of a small run, made without running anything:
// data preparation, an SFT stage with curves (loss every step, three
// evaluations), its export (cached), and a GRPO stage that logged one
// metric line only.
func fakeRun(t *testing.T) Input {
	t.Helper()
	store, err := cas.Open(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	// tree commits dir's files to the store.
	tree := func(files map[string]string) cas.Digest {
		dir := t.TempDir()
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		d, _, err := store.PutTree(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	var sftMetrics strings.Builder
	for step := 1; step <= 30; step++ {
		fmt.Fprintf(&sftMetrics, `{"step":%d,"loss":%.4f,"learning_rate":0.0002,"tokens_per_second":%d,"peak_memory_gib":%.2f}`+"\n",
			step, 2.4/float64(step)+0.6, 8000+step*20, 17.5+float64(step%3)*0.1)
		if step%10 == 0 {
			fmt.Fprintf(&sftMetrics, `{"step":%d,"eval_loss":%.4f,"eval_runtime":1.5}`+"\n", step, 1.9/float64(step/10)+0.7)
		}
	}
	sftMetrics.WriteString(`{"step":30,"train_tokens":2457600,"tokens_per_second":8590.5,"peak_memory_gib":17.9,"final":true}` + "\n")
	k := func(s string) key.Key { return key.Key("sha256:" + strings.Repeat(s, 64)) }
	p := &plan.Plan{
		Recipe:      "tiny-sft-grpo",
		Environment: plan.Environment{Profile: "pinned-2025q1"},
		Hardware:    plan.Hardware{Nodes: 1, GPUsPerNode: 1, GPU: "h200", Strategy: "single"},
		Stages: []*plan.Stage{
			{Name: "sft.prepare", Kind: "prepare", Key: k("a")},
			{Name: "sft", Kind: "sft", Key: k("b"), Inputs: []plan.Input{{Role: "train", Stage: "sft.prepare"}},
				Estimate: &plan.Estimate{PerGPUGiB: 21.3, CapacityGiB: 141, TokensPerSecond: 9600, Hours: 0.08}},
			{Name: "sft.export", Kind: "export", Key: k("c"), Inputs: []plan.Input{{Role: "model", Stage: "sft"}}},
			{Name: "grpo", Kind: "grpo", Key: k("d"), Inputs: []plan.Input{{Role: "policy", Stage: "sft"}, {Role: "train", Stage: "sft.prepare"}},
				Estimate: &plan.Estimate{PerGPUGiB: 30.2, CapacityGiB: 141, TokensPerSecond: 2100}},
		},
	}
	sum := &exec.Summary{Stages: []*exec.StageResult{ // in the order they finished
		{Name: "sft.prepare", Kind: "prepare", Key: string(k("a")), Status: "ran", Seconds: 3.2,
			Outputs: map[string]cas.Digest{"output": tree(map[string]string{"train.jsonl": "{}\n"})}},
		{Name: "sft", Kind: "sft", Key: string(k("b")), Status: "ran", Seconds: 312.4,
			Metrics: map[string]any{"loss": 0.68, "eval_loss": 1.33, "tokens_per_second": 8590.5, "peak_memory_gib": 17.9},
			Outputs: map[string]cas.Digest{"output": tree(map[string]string{"adapter_model.safetensors": "weights"}),
				"logs": tree(map[string]string{"metrics.jsonl": sftMetrics.String()})}},
		{Name: "sft.export", Kind: "export", Key: string(k("c")), Status: "cached", Seconds: 0.01, RanSeconds: 95,
			Outputs: map[string]cas.Digest{"output": tree(map[string]string{"model.safetensors": "merged"})}},
		{Name: "grpo", Kind: "grpo", Key: string(k("d")), Status: "failed", Seconds: 41.0, Err: errors.New("exit status 1"),
			Metrics: map[string]any{"reward": 0.25},
			Outputs: map[string]cas.Digest{"logs": tree(map[string]string{"metrics.jsonl": `{"step":1,"reward":0.25}` + "\n"})}},
	}}
	return Input{Plan: p, Summary: sum, Store: store, RecipeFile: "examples/tiny/recipe.cue", Record: "/var/cache/ftc/records/x"}
}

// External loads: anything the page would fetch (scripts, stylesheets,
// fonts, images) from the network or another file.
var external = regexp.MustCompile(`(?i)https?://|<script|<link|@import|@font-face|<img|<iframe|url\((?:[^#)]|$)`)

func TestReportIsSelfContained(t *testing.T) {
	page := string(Render(fakeRun(t)))
	if m := external.FindAllString(page, -1); m != nil {
		t.Errorf("the report loads something from outside the page: %q", m)
	}
}

func TestReportShowsEstimatesNextToMeasurements(t *testing.T) {
	page := string(Render(fakeRun(t)))
	for _, want := range []string{
		// sft: wall time, peak memory (the highest of its series) and
		// tokens/s, the plan's estimate next to what was measured.
		`4 min 48 s / 5 min 12 s`,
		`21.3 GiB <span class=dim>of 141</span> / 17.9 GiB`,
		`9600 / 8590`,
		`measured 0.89× the estimate`,
		// a cached stage's wall time is that of the run that made
		// the entry, said as such
		`— / 1 min 35 s <span class=dim>when it ran; cached now</span>`,
		// grpo has no estimated wall time and no measurements but its
		// one metric line
		`2100 / —`,
		// evaluation metrics with their last value
		`<td>sft</td><td>eval_loss</td><td class=n>1.333 <span class=dim>at step 30, 3 evaluation(s)</span>`,
		// where the outputs are, and how to copy the export out
		`<code>ftc export examples/tiny/recipe.cue sft DIR</code>`,
		`/var/cache/ftc/records/x`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

func TestReportDrawsTheStageGraph(t *testing.T) {
	page := string(Render(fakeRun(t)))
	for _, want := range []string{
		`<title>sft.prepare (prepare): ran</title>`,
		`<title>sft.export (export): cached</title>`,
		`<title>grpo (grpo): failed</title>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the stage graph lacks %q", want)
		}
	}
	// sft.prepare → sft, sft → sft.export, sft → grpo, sft.prepare → grpo
	if n := strings.Count(page, `marker-end="url(#arrow)"`); n != 4 {
		t.Errorf("the stage graph has %d edges, want 4", n)
	}
}

func TestReportDrawsCurvesAndShowsSinglePointsAsValues(t *testing.T) {
	page := string(Render(fakeRun(t)))
	for _, want := range []string{`aria-label="sft · loss"`, `aria-label="sft · eval_loss"`} {
		if !strings.Contains(page, want) {
			t.Errorf("no chart %s", want)
		}
	}
	// A metric logged once is its value, not an empty box.
	if strings.Contains(page, `aria-label="grpo · reward"`) {
		t.Error("grpo's reward, a single point, is drawn as a chart")
	}
	if !strings.Contains(page, `<td>grpo · reward</td><td class=n><b>0.25</b></td><td class=dim>one value, at step 1</td>`) {
		t.Error("grpo's reward, a single point, is not shown as its value")
	}
	// Every chart drawn has a line with at least two points.
	for _, pts := range regexp.MustCompile(`<polyline[^>]* points="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if len(strings.Fields(pts[1])) < 2 {
			t.Errorf("a chart with fewer than two points: %q", pts[1])
		}
	}
}

func TestChartOfOnePointIsNotDrawn(t *testing.T) {
	if s := chart(Series{Stage: "s", Metric: "m", Steps: []float64{1}, Values: []float64{2}}); s != "" {
		t.Errorf("chart of one point: %s", s)
	}
}

// A stage that reads nothing sits just left of its first reader, so its
// arrow does not cross another column (the pipeline of internal/e2e).
func TestGraphPullsSourcesNextToTheirReader(t *testing.T) {
	p := &plan.Plan{Stages: []*plan.Stage{
		{Name: "rm.prepare", Kind: "prepare"},
		{Name: "rm", Kind: "reward", Inputs: []plan.Input{{Stage: "rm.prepare"}}},
		{Name: "ppo.prepare", Kind: "prepare"},
		{Name: "ppo", Kind: "ppo", Inputs: []plan.Input{{Stage: "ppo.prepare"}, {Stage: "rm"}}},
	}}
	svg := graph(p, nil)
	x := func(name string) string {
		m := regexp.MustCompile(`<title>` + regexp.QuoteMeta(name) + ` \([a-z]+\): not run</title><rect x="([0-9.]+)"`).FindStringSubmatch(svg)
		if m == nil {
			t.Fatalf("no box for %s in %s", name, svg)
		}
		return m[1]
	}
	if x("ppo.prepare") != x("rm") || x("rm.prepare") == x("rm") {
		t.Errorf("columns: rm.prepare at %s, rm at %s, ppo.prepare at %s; want ppo.prepare in rm's column", x("rm.prepare"), x("rm"), x("ppo.prepare"))
	}
	if strings.Contains(svg, " H") {
		t.Error("an arrow runs in a lane: some edge crosses a column")
	}
}
