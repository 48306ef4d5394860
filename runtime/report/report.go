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

// Write renders dir/report.html and returns its path.
func Write(dir string, p *plan.Plan, sum *exec.Summary, store *cas.Store) (string, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<!doctype html><meta charset=utf-8><title>ftc run: %s</title>\n", html.EscapeString(p.Recipe))
	b.WriteString("<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}code{font-size:12px}svg{margin:.5em 1em .5em 0}</style>\n")
	fmt.Fprintf(&b, "<h1>%s</h1><p>environment %s · %d node(s) × %d %s · %s</p>\n", html.EscapeString(p.Recipe),
		html.EscapeString(p.Environment.Profile), p.Hardware.Nodes, p.Hardware.GPUsPerNode, html.EscapeString(p.Hardware.GPU), html.EscapeString(p.Hardware.Strategy))
	b.WriteString("<table><tr><th>stage</th><th>kind</th><th>status</th><th>seconds</th><th>key</th><th>last metrics</th></tr>\n")
	var series []Series
	for _, r := range sum.Stages {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%.1f</td><td><code>%s</code></td><td>%s</td></tr>\n",
			html.EscapeString(r.Name), r.Kind, r.Status, r.Seconds, html.EscapeString(r.Key), html.EscapeString(lastMetrics(r.Metrics)))
		if d := r.Outputs["logs"]; d != "" {
			series = append(series, metricsOf(store, r.Name, d)...)
		}
	}
	b.WriteString("</table>\n")
	for _, s := range series {
		b.WriteString(chart(s))
	}
	path := filepath.Join(dir, "report.html")
	return path, os.WriteFile(path, b.Bytes(), 0o644)
}

func lastMetrics(m map[string]any) string {
	var keys []string
	for k := range m {
		if k != "step" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
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
			f, ok := v.(float64)
			if k == "step" || !ok || math.IsNaN(f) || math.IsInf(f, 0) {
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
	sort.Slice(out, func(i, j int) bool { return out[i].Metric < out[j].Metric })
	return out
}

// chart draws one series as an SVG line chart.
func chart(s Series) string {
	const w, h, pad = 420.0, 220.0, 40.0
	if len(s.Steps) == 0 {
		return ""
	}
	minX, maxX := s.Steps[0], s.Steps[len(s.Steps)-1]
	minY, maxY := s.Values[0], s.Values[0]
	for _, v := range s.Values {
		minY, maxY = math.Min(minY, v), math.Max(maxY, v)
	}
	if maxX == minX {
		maxX = minX + 1
	}
	if maxY == minY {
		maxY = minY + 1
	}
	var pts []string
	for i := range s.Steps {
		x := pad + (s.Steps[i]-minX)/(maxX-minX)*(w-2*pad)
		y := h - pad - (s.Values[i]-minY)/(maxY-minY)*(h-2*pad)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g">`, w, h, w, h)
	fmt.Fprintf(&b, `<text x="%g" y="16" font-size="13">%s · %s</text>`, pad, html.EscapeString(s.Stage), html.EscapeString(s.Metric))
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#bbb"/>`, pad, pad, w-2*pad, h-2*pad)
	fmt.Fprintf(&b, `<text x="2" y="%g" font-size="10">%.4g</text><text x="2" y="%g" font-size="10">%.4g</text>`, pad+4, maxY, h-pad, minY)
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="10">step %g</text><text x="%g" y="%g" font-size="10" text-anchor="end">%g</text>`, pad, h-pad+14, minX, w-pad, h-pad+14, maxX)
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#1f6feb" stroke-width="1.5" points="%s"/></svg>`+"\n", strings.Join(pts, " "))
	return b.String()
}
