package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestRealEvalComparesBaseAndFineTuned runs SFT and four eval stages
// through the real entrypoints on the CPU (current-2026's locked
// environment): the fine-tuned model's loss on the answers it learnt is
// lower than the base's, and it answers more questions exactly; the run
// report and the exported model card show the two side by side; a second
// run is all hits, and a changed SFT reruns only what reads it — the base
// model's evaluations stay cached.
func TestRealEvalComparesBaseAndFineTuned(t *testing.T) {
	rs := realRecipe(t, "realeval")
	e, real, dir := rs.env, rs.extraEnv, rs.dir
	first := e.run(real, "--cpu")
	// 2 prepare, sft, sft.export, 4 eval
	expect(t, first, 0, 0, 8)
	t.Logf("first run:\n%s", first.out)
	m := func(stage, metric string) float64 {
		t.Helper()
		re := regexp.MustCompile(`\] ` + regexp.QuoteMeta(stage) + `\s+done\s.*\b` + regexp.QuoteMeta(metric) + `=([-0-9.e+]+)`)
		g := re.FindStringSubmatch(first.out)
		if g == nil {
			t.Fatalf("no %s of %s in the run output", metric, stage)
		}
		v, err := strconv.ParseFloat(g[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if base, tuned := m("loss-base", "eval_loss"), m("loss-sft", "eval_loss"); tuned >= base-1 {
		t.Errorf("eval_loss: base %g, fine-tuned %g: the fine-tune is not better on what it learnt", base, tuned)
	}
	if base, tuned := m("answers-base", "exact_match"), m("answers-sft", "exact_match"); tuned <= base || tuned < 0.75 {
		t.Errorf("exact_match: base %g, fine-tuned %g", base, tuned)
	}

	report := regexp.MustCompile(`report: (\S+)`).FindStringSubmatch(first.out)
	if report == nil {
		t.Fatalf("no report in:\n%s", first.out)
	}
	html, err := os.ReadFile(report[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Evaluations side by side", "<th>loss-base<br><span class=dim>Qwen/Qwen2.5-0.5B-Instruct</span></th><th>loss-sft<br><span class=dim>stage sft</span></th>",
		"<td>exact_match</td>", "<td>perplexity</td>"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	out := filepath.Join(dir, "exported")
	if r := e.ftc(real, "export", "--cpu", e.recipe, "sft", out); r.code != 0 {
		t.Fatalf("ftc export: exit %d\n%s", r.code, r.out)
	}
	card, _ := os.ReadFile(filepath.Join(out, "README.md"))
	for _, want := range []string{"## Evaluation against the base", "| metric | answers-base (Qwen/Qwen2.5-0.5B-Instruct) | answers-sft (stage sft) |", "| exact_match |", "| eval_loss |"} {
		if !strings.Contains(string(card), want) {
			t.Errorf("the model card lacks %q:\n%s", want, card)
		}
	}

	expect(t, e.run(real, "--cpu"), 0, 8, 0)
	changed := e.ftc(real, "run", "--cpu", "--set", "stages.sft.training.weightDecay=0.01", e.recipe)
	// sft, sft.export and the fine-tune's two evaluations rerun; both
	// prepares and the base's evaluations are hits.
	expect(t, changed, 0, 4, 4)
	for _, s := range []string{"loss-base", "answers-base"} {
		if !strings.Contains(changed.out, "] "+s) || !regexp.MustCompile(`\] `+s+`\s+cached`).MatchString(changed.out) {
			t.Errorf("%s was not a cache hit after the fine-tune changed:\n%s", s, changed.out)
		}
	}
}
