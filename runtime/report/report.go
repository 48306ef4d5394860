package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/exec"
)

// Series is one metric of one stage.
type Series struct {
	Stage, Metric string
	Steps         []float64
	Values        []float64
}

// Input is what a report is rendered from.
type Input struct {
	Plan    *plan.Plan
	Summary *exec.Summary
	// Store is the cache the stages' outputs and logs are in; nil: the
	// report has no curves and no cache paths.
	Store *cas.Store
	// RecipeFile is the recipe as the user named it, for the commands the
	// report shows ("" shows RECIPE).
	RecipeFile string
	// Record is the run's record directory, shown for reference.
	Record string
}

// Write renders dir/report.html and returns its path.
func Write(dir string, in Input) (string, error) {
	path := filepath.Join(dir, "report.html")
	return path, os.WriteFile(path, Render(in), 0o644)
}

// style is the page's only styling: inline, no fonts to fetch.
const style = `body{font:14px system-ui,sans-serif;margin:2em;max-width:80em;color:#1b1f24}
h2{font-size:17px;margin:1.6em 0 .5em}
table{border-collapse:collapse}td,th{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:12px}.dim{color:#6b7280;font-size:12px}
.ran{color:#116329}.cached{color:#0550ae}.failed,.cancelled{color:#cf222e}.skipped,.would-run{color:#6b7280}
.charts{display:flex;flex-wrap:wrap;gap:.5em 1em}.charts svg{border:1px solid #e5e7eb}
.points td{border:0;padding:.1em .8em .1em 0}
.outputs code{overflow-wrap:anywhere}`

// Render returns the report page. It is one self-contained HTML file:
// no scripts, no fonts, no stylesheets or images to fetch.
func Render(in Input) []byte {
	p, sum := in.Plan, in.Summary
	recipeFile := in.RecipeFile
	if recipeFile == "" {
		recipeFile = "RECIPE"
	}
	results := map[string]*exec.StageResult{}
	for _, r := range sum.Stages {
		results[r.Name] = r
	}
	series := map[string][]Series{}
	for _, r := range sum.Stages {
		if d := r.Outputs["logs"]; d != "" && in.Store != nil {
			series[r.Name] = metricsOf(in.Store, r.Name, d)
		}
	}

	var b bytes.Buffer
	e := html.EscapeString
	fmt.Fprintf(&b, "<!doctype html><html lang=en><meta charset=utf-8><title>ftc run: %s</title>\n<style>%s</style>\n", e(p.Recipe), style)
	fmt.Fprintf(&b, "<h1>%s</h1>\n<p>environment %s · %d node(s) × %d %s · %s", e(p.Recipe),
		e(p.Environment.Profile), p.Hardware.Nodes, p.Hardware.GPUsPerNode, e(p.Hardware.GPU), e(string(p.Hardware.Strategy)))
	if p.Image != "" {
		fmt.Fprintf(&b, " · image <code>%s</code>", e(p.Image))
	}
	cached, ran, failed := sum.Counts()
	fmt.Fprintf(&b, "<br>%d stage(s): %d cached, %d ran, %d failed</p>\n", len(sum.Stages), cached, ran, failed)

	b.WriteString("<h2>Stage graph</h2>\n")
	b.WriteString(graph(p, results))

	b.WriteString("<h2>Plan against measurement</h2>\n")
	b.WriteString(`<p class=dim>Estimates are ftc plan's, made before any GPU was used; measured values are what the stage's metrics recorded (peak memory of one GPU, tokens per second over all GPUs). A cached stage did not run now: its measurements, wall time included, are those of the run that made the cache entry.</p>` + "\n")
	b.WriteString("<table><tr><th>stage</th><th>kind</th><th>status</th><th>wall time<br><span class=dim>estimated / measured</span></th><th>peak GPU memory<br><span class=dim>estimated / measured</span></th><th>tokens/s<br><span class=dim>estimated / measured</span></th><th>key</th></tr>\n")
	for _, s := range p.Stages {
		r := results[s.Name]
		if r == nil {
			continue
		}
		est := s.Estimate
		var estWall, estMem, estTPS string
		if est != nil {
			if est.Hours > 0 {
				estWall = duration(est.Hours * 3600)
			}
			if est.PerGPUGiB > 0 {
				estMem = fmt.Sprintf("%.1f GiB", est.PerGPUGiB)
				if est.CapacityGiB > 0 {
					estMem += fmt.Sprintf(" <span class=dim>of %.0f</span>", est.CapacityGiB)
				}
			}
			if est.TokensPerSecond > 0 {
				estTPS = fmt.Sprintf("%.0f", est.TokensPerSecond)
			}
		}
		var mWall, mMem, mTPS string
		switch r.Status {
		case exec.StatusRan, exec.StatusFailed, exec.StatusCancelled, exec.StatusPreempted:
			mWall = duration(r.Seconds)
		case exec.StatusCached:
			mWall = "cached"
			if r.RanSeconds > 0 {
				mWall = duration(r.RanSeconds) + " <span class=dim>when it ran; cached now</span>"
			}
		}
		peak, hasPeak := peakOf(r, series[r.Name], "peak_memory_gib")
		if hasPeak {
			mMem = fmt.Sprintf("%.1f GiB", peak)
		}
		if v, ok := number(r.Metrics["tokens_per_second"]); ok {
			mTPS = fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td class=%q>%s</td><td class=n>%s</td><td class=n>%s</td><td class=n>%s</td><td><code>%s</code></td></tr>\n",
			e(r.Name), e(string(r.Kind)), r.Status, statusText(r),
			pair(estWall, mWall, ratio(est != nil && est.Hours > 0, wallOf(r), hoursOr0(est)*3600)),
			pair(estMem, mMem, ratio(est != nil && hasPeak, peak, perGPU(est))),
			pair(estTPS, mTPS, ratio(est != nil && mTPS != "", num(r.Metrics["tokens_per_second"]), tps(est))),
			e(shortKey(r.Key)))
	}
	b.WriteString("</table>\n")

	final := map[string]map[string]any{}
	for name, r := range results {
		final[name] = r.Metrics
	}
	if cs := plan.Compare(p, final); len(cs) > 0 {
		b.WriteString("<h2>Evaluations side by side</h2>\n")
		b.WriteString(`<p class=dim>Eval stages that ran the same evaluation (data, settings, scorers) on different models. Each is cached by its model and evaluation: a base model's column comes from the cache once it has run.</p>` + "\n")
		for _, c := range cs {
			b.WriteString("<table><tr><th>metric</th>")
			for j, st := range c.Stages {
				fmt.Fprintf(&b, "<th>%s<br><span class=dim>%s</span></th>", e(st), e(c.Models[j]))
			}
			b.WriteString("</tr>\n")
			for i, m := range c.Metrics {
				fmt.Fprintf(&b, "<tr><td>%s</td>", e(m))
				for _, v := range c.Values[i] {
					fmt.Fprintf(&b, "<td class=n>%s</td>", e(v))
				}
				b.WriteString("</tr>\n")
			}
			b.WriteString("</table>\n")
		}
	}

	b.WriteString("<h2>Evaluation</h2>\n")
	b.WriteString(evaluation(p, results, series))

	b.WriteString("<h2>Metrics</h2>\n")
	b.WriteString(metricsSection(p, results, series))

	b.WriteString("<h2>Where the outputs are</h2>\n")
	b.WriteString(outputs(p, results, in.Store, recipeFile))
	if in.Record != "" {
		fmt.Fprintf(&b, "<p class=dim>run record: <code>%s</code> (<code>ftc status</code> reads it)</p>\n", e(in.Record))
	}
	b.WriteString("</html>\n")
	return b.Bytes()
}

func statusText(r *exec.StageResult) string {
	s := html.EscapeString(string(r.Status))
	if r.ResumedFrom > 0 {
		s += fmt.Sprintf(" <span class=dim>resumed at step %d</span>", r.ResumedFrom)
	}
	if r.Err != nil {
		s += "<br><span class=dim>" + html.EscapeString(r.Err.Error()) + "</span>"
	}
	return s
}

// pair shows an estimate next to a measurement; either may be missing.
func pair(est, measured, ratio string) string {
	if est == "" {
		est = "—"
	}
	if measured == "" {
		measured = "—"
	}
	s := est + " / " + measured
	if ratio != "" {
		s += "<br><span class=dim>" + ratio + "</span>"
	}
	return s
}

// ratio says how a measurement compares with its estimate.
func ratio(ok bool, measured, estimated float64) string {
	if !ok || estimated <= 0 || measured <= 0 {
		return ""
	}
	return fmt.Sprintf("measured %.2f× the estimate", measured/estimated)
}

// wallOf is the measured wall time of a stage: now, or when the cache
// entry was made; 0 when unknown.
func wallOf(r *exec.StageResult) float64 {
	switch r.Status {
	case exec.StatusRan:
		return r.Seconds
	case exec.StatusCached:
		return r.RanSeconds
	}
	return 0
}

func hoursOr0(e *plan.Estimate) float64 {
	if e == nil {
		return 0
	}
	return e.Hours
}

func perGPU(e *plan.Estimate) float64 {
	if e == nil {
		return 0
	}
	return e.PerGPUGiB
}

func tps(e *plan.Estimate) float64 {
	if e == nil {
		return 0
	}
	return e.TokensPerSecond
}

func number(v any) (float64, bool) {
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func num(v any) float64 { f, _ := number(v); return f }

// peakOf is the highest value of a metric over the stage's series, or its
// last value when there is no series.
func peakOf(r *exec.StageResult, ss []Series, metric string) (float64, bool) {
	best, ok := number(r.Metrics[metric])
	for _, s := range ss {
		if s.Metric != metric {
			continue
		}
		for _, v := range s.Values {
			if !ok || v > best {
				best, ok = v, true
			}
		}
	}
	return best, ok
}

// duration formats seconds for a person: 42.1 s, 3 min 05 s, 2 h 10 min.
func duration(s float64) string {
	switch {
	case s < 60:
		return fmt.Sprintf("%.1f s", s)
	case s < 3600:
		return fmt.Sprintf("%d min %02d s", int(s)/60, int(s)%60)
	default:
		return fmt.Sprintf("%d h %02d min", int(s)/3600, int(s)%3600/60)
	}
}

func shortKey(k string) string {
	k = strings.TrimPrefix(k, "sha256:")
	if len(k) > 12 {
		return k[:12]
	}
	return k
}

// isEval tells evaluation metrics from training ones: the Trainer's
// evaluation loop prefixes its metrics with eval_.
func isEval(metric string) bool { return strings.HasPrefix(metric, "eval_") }

// evaluation lists the last value of every evaluation metric per stage.
func evaluation(p *plan.Plan, results map[string]*exec.StageResult, series map[string][]Series) string {
	var b strings.Builder
	for _, s := range p.Stages {
		r := results[s.Name]
		if r == nil {
			continue
		}
		last := map[string]string{}
		for _, sr := range series[s.Name] {
			if isEval(sr.Metric) {
				n := len(sr.Values) - 1
				last[sr.Metric] = fmt.Sprintf("%.4g <span class=dim>at step %g, %d evaluation(s)</span>", sr.Values[n], sr.Steps[n], n+1)
			}
		}
		for k, v := range r.Metrics {
			if f, ok := number(v); ok && isEval(k) && last[k] == "" {
				last[k] = fmt.Sprintf("%.4g", f)
			}
		}
		for _, k := range sortedKeys(last) {
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td class=n>%s</td></tr>\n", html.EscapeString(s.Name), html.EscapeString(k), last[k])
		}
	}
	if b.Len() == 0 {
		return "<p class=dim>No stage recorded evaluation metrics (a stage evaluates when its data has an eval split and the recipe sets an evaluation cadence).</p>\n"
	}
	return "<table><tr><th>stage</th><th>metric</th><th>last value</th></tr>\n" + b.String() + "</table>\n"
}

// metricsSection draws a curve per metric with two or more points; a
// metric with a single point is shown as its value, not as an empty
// chart.
func metricsSection(p *plan.Plan, results map[string]*exec.StageResult, series map[string][]Series) string {
	var b strings.Builder
	for _, s := range p.Stages {
		r := results[s.Name]
		if r == nil {
			continue
		}
		var curves, points []Series
		for _, sr := range series[s.Name] {
			if len(sr.Steps) > 1 {
				curves = append(curves, sr)
			} else if len(sr.Steps) == 1 {
				points = append(points, sr)
			}
		}
		if len(curves) == 0 && len(points) == 0 {
			if m := lastMetrics(r.Metrics); m != "" {
				fmt.Fprintf(&b, "<h3>%s</h3><p>last values: %s</p>\n", html.EscapeString(s.Name), html.EscapeString(m))
			}
			continue
		}
		fmt.Fprintf(&b, "<h3>%s</h3>\n", html.EscapeString(s.Name))
		if len(curves) > 0 {
			b.WriteString("<div class=charts>\n")
			for _, c := range curves {
				b.WriteString(chart(c))
			}
			b.WriteString("</div>\n")
		}
		if len(points) > 0 {
			b.WriteString("<table class=points>")
			for _, pt := range points {
				fmt.Fprintf(&b, "<tr><td>%s · %s</td><td class=n><b>%s</b></td><td class=dim>one value, at step %g</td></tr>",
					html.EscapeString(pt.Stage), html.EscapeString(pt.Metric), formatValue(pt.Values[0]), pt.Steps[0])
			}
			b.WriteString("</table>\n")
		}
	}
	if b.Len() == 0 {
		return "<p class=dim>No stage recorded metrics.</p>\n"
	}
	return b.String()
}

func formatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.4g", v)
}

// outputs says where each stage's output is: its tree in the cache and,
// for an export stage, the command that copies it out, as ftc status does.
func outputs(p *plan.Plan, results map[string]*exec.StageResult, store *cas.Store, recipeFile string) string {
	var b strings.Builder
	e := html.EscapeString
	for _, s := range p.Stages {
		r := results[s.Name]
		if r == nil || r.Outputs["output"] == "" {
			continue
		}
		out := r.Outputs["output"]
		fmt.Fprintf(&b, "<tr><td>%s</td><td><code>%s</code>", e(s.Name), e(string(out)))
		if store != nil {
			fmt.Fprintf(&b, "<br><span class=dim>manifest <code>%s</code></span>", e(store.BlobPath(out)))
		}
		b.WriteString("</td><td>")
		if stage, ok := strings.CutSuffix(s.Name, ".export"); ok || s.Kind == plan.KindExport {
			if !ok {
				stage = s.Name
			}
			fmt.Fprintf(&b, "<code>ftc export %s %s DIR</code>", e(recipeFile), e(stage))
		}
		b.WriteString("</td></tr>\n")
	}
	if b.Len() == 0 {
		return "<p class=dim>No stage has an output in the cache.</p>\n"
	}
	return "<table class=outputs><tr><th>stage</th><th>output (cache tree)</th><th>copy it out</th></tr>\n" + b.String() + "</table>\n"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func lastMetrics(m map[string]any) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		if k == "step" {
			continue
		}
		if f, ok := m[k].(float64); ok {
			parts = append(parts, fmt.Sprintf("%s=%s", k, formatValue(f)))
		} else {
			parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
		}
	}
	return strings.Join(parts, " ")
}

// metricsOf reads metrics.jsonl from a stage's logs tree.
func metricsOf(store *cas.Store, stage string, logs cas.Digest) []Series {
	t, err := store.ReadTree(logs)
	if err != nil {
		return nil
	}
	for _, e := range t.Entries {
		if e.Path != "metrics.jsonl" {
			continue
		}
		b, err := store.ReadBlob(e.Digest)
		if err != nil {
			return nil
		}
		return parseMetrics(stage, b)
	}
	return nil
}

func parseMetrics(stage string, b []byte) []Series {
	by := map[string]*Series{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		step, ok := m["step"].(float64)
		if !ok {
			continue
		}
		for k, v := range m {
			f, ok := number(v)
			if k == "step" || !ok {
				continue
			}
			s := by[k]
			if s == nil {
				s = &Series{Stage: stage, Metric: k}
				by[k] = s
			}
			s.Steps = append(s.Steps, step)
			s.Values = append(s.Values, f)
		}
	}
	var out []Series
	for _, s := range by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return metricOrder(out[i].Metric) < metricOrder(out[j].Metric) })
	return out
}

// metricOrder puts the curves a person looks for first.
func metricOrder(m string) string {
	switch m {
	case "loss":
		return "0"
	case "eval_loss":
		return "1"
	case "reward", "rewards/chosen", "eval_accuracy":
		return "2" + m
	}
	return "3" + m
}
