package report

import (
	"fmt"
	"html"
	"math"
	"strings"

	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/exec"
)

// The SVG here is inline in the page (no xmlns needed, nothing to fetch).

// chart draws a series of two or more points as an SVG line chart.
func chart(s Series) string {
	const w, h, left, right, top, bottom = 420.0, 220.0, 56.0, 16.0, 28.0, 34.0
	if len(s.Steps) < 2 {
		return ""
	}
	minX, maxX := s.Steps[0], s.Steps[0]
	minY, maxY := s.Values[0], s.Values[0]
	for i := range s.Steps {
		minX, maxX = math.Min(minX, s.Steps[i]), math.Max(maxX, s.Steps[i])
		minY, maxY = math.Min(minY, s.Values[i]), math.Max(maxY, s.Values[i])
	}
	if maxX == minX {
		maxX = minX + 1
	}
	if maxY == minY {
		pad := math.Abs(minY) * 0.05
		if pad == 0 {
			pad = 1
		}
		minY, maxY = minY-pad, maxY+pad
	}
	pw, ph := w-left-right, h-top-bottom
	x := func(v float64) float64 { return left + (v-minX)/(maxX-minX)*pw }
	y := func(v float64) float64 { return top + ph - (v-minY)/(maxY-minY)*ph }
	var b strings.Builder
	e := html.EscapeString
	fmt.Fprintf(&b, `<svg width="%g" height="%g" viewBox="0 0 %g %g" role="img" aria-label="%s · %s">`, w, h, w, h, e(s.Stage), e(s.Metric))
	fmt.Fprintf(&b, `<text x="%g" y="17" font-size="13" font-weight="600">%s · %s</text>`, left, e(s.Stage), e(s.Metric))
	for i := 0; i <= 3; i++ {
		v := minY + (maxY-minY)*float64(i)/3
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="#eee"/>`, left, w-right, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" font-size="10" text-anchor="end" fill="#555">%.4g</text>`, left-4, y(v)+3, v)
	}
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#bbb"/>`, left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="10" fill="#555">step %g</text><text x="%g" y="%g" font-size="10" text-anchor="end" fill="#555">%g</text>`,
		left, h-bottom+14, minX, w-right, h-bottom+14, maxX)
	var pts []string
	for i := range s.Steps {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.Steps[i]), y(s.Values[i])))
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="%s"/>`, strings.Join(pts, " "))
	if len(s.Steps) <= 40 {
		for i := range s.Steps {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="#1f6feb"/>`, x(s.Steps[i]), y(s.Values[i]))
		}
	}
	n := len(s.Steps) - 1
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="10" text-anchor="end">last %.4g at step %g</text>`, w-right, h-6, s.Values[n], s.Steps[n])
	b.WriteString("</svg>\n")
	return b.String()
}

// statusColour is the fill and stroke of a stage's box in the graph.
func statusColour(status string) (fill, stroke string) {
	switch status {
	case "ran":
		return "#dafbe1", "#1a7f37"
	case "cached":
		return "#ddf4ff", "#0969da"
	case "failed", "cancelled":
		return "#ffebe9", "#cf222e"
	}
	return "#f6f8fa", "#8c959f"
}

// graph draws the plan's stage graph: one column per depth (a stage is
// one column right of the deepest stage it reads; a stage that reads
// nothing sits just left of its first reader), an arrow per input. An
// arrow that spans columns runs in a lane below the boxes it passes.
func graph(p *plan.Plan, results map[string]*exec.StageResult) string {
	const bw, bh, gx, gy, margin = 180.0, 44.0, 56.0, 14.0, 8.0
	col := map[string]int{}
	readers := map[string][]string{}
	for _, s := range p.Stages { // topological order: inputs come first
		d := 0
		for _, in := range s.Inputs {
			if dd, ok := col[in.Stage]; ok && in.Stage != "" {
				d = max(d, dd+1)
				readers[in.Stage] = append(readers[in.Stage], s.Name)
			}
		}
		col[s.Name] = d
	}
	for i := len(p.Stages) - 1; i >= 0; i-- {
		s := p.Stages[i]
		if len(readers[s.Name]) == 0 || hasStageInput(s) {
			continue
		}
		c := -1
		for _, r := range readers[s.Name] {
			if c < 0 || col[r]-1 < c {
				c = col[r] - 1
			}
		}
		col[s.Name] = max(c, 0)
	}
	var columns [][]*plan.Stage
	for _, s := range p.Stages {
		for len(columns) <= col[s.Name] {
			columns = append(columns, nil)
		}
		columns[col[s.Name]] = append(columns[col[s.Name]], s)
	}
	type box struct{ x, y float64 }
	at := map[string]box{}
	rows := 0
	for c, stages := range columns {
		rows = max(rows, len(stages))
		for r, s := range stages {
			at[s.Name] = box{margin + float64(c)*(bw+gx), margin + float64(r)*(bh+gy)}
		}
	}
	// bottom is the y just below the lowest box of columns (a, b).
	bottom := func(a, b int) float64 {
		n := 0
		for c := a + 1; c < b; c++ {
			n = max(n, len(columns[c]))
		}
		return margin + float64(n)*(bh+gy) + gy/2
	}
	w := 2*margin + float64(len(columns))*bw + float64(max(len(columns)-1, 0))*gx
	h := 2*margin + float64(rows)*bh + float64(max(rows-1, 0))*gy
	var edges strings.Builder
	for _, s := range p.Stages {
		to := at[s.Name]
		seen := map[string]bool{}
		for _, in := range s.Inputs {
			from, ok := at[in.Stage]
			if in.Stage == "" || !ok || seen[in.Stage] {
				continue
			}
			seen[in.Stage] = true
			x1, y1, x2, y2 := from.x+bw, from.y+bh/2, to.x-1, to.y+bh/2
			if a, b := col[in.Stage], col[s.Name]; b > a+1 {
				lane := bottom(a, b)
				h = max(h, lane+margin)
				fmt.Fprintf(&edges, `<path d="M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f H%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="none" stroke="#57606a" stroke-width="1.3" marker-end="url(#arrow)"/>`,
					x1, y1, x1+gx/2, y1, x1+gx/2, lane, x1+gx, lane, x2-gx, x2-gx/2, lane, x2-gx/2, y2, x2, y2)
				continue
			}
			fmt.Fprintf(&edges, `<path d="M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="none" stroke="#57606a" stroke-width="1.3" marker-end="url(#arrow)"/>`,
				x1, y1, x1+gx/2, y1, x2-gx/2, y2, x2, y2)
		}
	}
	var b strings.Builder
	e := html.EscapeString
	fmt.Fprintf(&b, `<svg width="%g" height="%g" viewBox="0 0 %g %g" role="img" aria-label="stage graph">`, w, h, w, h)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#57606a"/></marker></defs>`)
	b.WriteString(edges.String())
	for _, s := range p.Stages {
		pos := at[s.Name]
		status := "not run"
		if r := results[s.Name]; r != nil {
			status = string(r.Status)
		}
		fill, stroke := statusColour(status)
		name := s.Name
		if len(name) > 24 {
			name = name[:23] + "…"
		}
		fmt.Fprintf(&b, `<g><title>%s (%s): %s</title><rect x="%.1f" y="%.1f" width="%g" height="%g" rx="6" fill="%s" stroke="%s" stroke-width="1.5"/>`,
			e(s.Name), e(string(s.Kind)), e(status), pos.x, pos.y, bw, bh, fill, stroke)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="13" font-weight="600">%s</text>`, pos.x+8, pos.y+18, e(name))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" fill="#57606a">%s · %s</text></g>`, pos.x+8, pos.y+35, e(string(s.Kind)), e(status))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func hasStageInput(s *plan.Stage) bool {
	for _, in := range s.Inputs {
		if in.Stage != "" {
			return true
		}
	}
	return false
}
