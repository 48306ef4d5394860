package publish

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Row is one line of ftc reproduce's table.
type Row struct {
	What, Published, Here string
	// Match is "yes", "NO", or a word saying why nothing was compared
	// ("-") or why a difference is expected.
	Match string
}

// Failed reports whether the row is a difference that was not expected.
func (r Row) Failed() bool { return r.Match == "NO" }

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// Short is a digest or key cut to 12 hex digits for the table.
func Short(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	if d == "" {
		return "-"
	}
	return d
}

// CompareKeys compares the published stage keys with those planned here
// (stage name → key), in the published order, then the stages only here.
func CompareKeys(pub []Stage, here map[string]string, order []string) []Row {
	var rows []Row
	seen := map[string]bool{}
	for _, s := range pub {
		seen[s.Name] = true
		h, ok := here[s.Name]
		if !ok {
			rows = append(rows, Row{"key " + s.Name, Short(s.Key), "(no such stage)", "NO"})
			continue
		}
		rows = append(rows, Row{"key " + s.Name, Short(s.Key), Short(h), yesNo(h == s.Key)})
	}
	for _, n := range order {
		if !seen[n] {
			rows = append(rows, Row{"key " + n, "(no such stage)", Short(here[n]), "NO"})
		}
	}
	return rows
}

// CompareOutput compares a rerun stage's output tree digest with the
// published one: exact says the run was deterministic (CPU), where a
// difference is a failure; otherwise it is expected.
func CompareOutput(stage, pub, here string, exact bool) Row {
	r := Row{"output " + stage + " (tree)", Short(pub), Short(here), yesNo(pub == here)}
	if pub != here && !exact {
		r.Match = "differs (GPU run: not bit-exact)"
	}
	return r
}

// timing says whether a metric measures time, speed or memory, which no
// rerun reproduces: those are shown, never compared.
func timing(k string) bool {
	k = strings.ToLower(k)
	for _, w := range []string{"runtime", "per_second", "per_sec", "seconds", "time", "tokens_s", "/s", "mem", "eta", "flos"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// CompareMetrics compares the final metrics of a stage (JSON objects)
// within a relative tolerance (0: exactly). Timing and memory metrics are
// listed as not compared.
func CompareMetrics(stage string, pub, here json.RawMessage, tol float64) []Row {
	var p, h map[string]any
	_ = json.Unmarshal(pub, &p)
	_ = json.Unmarshal(here, &h)
	var keys []string
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var rows []Row
	for _, k := range keys {
		r := Row{What: "metric " + stage + " " + k, Published: format(p[k]), Here: format(h[k])}
		hv, ok := h[k]
		switch {
		case !ok:
			r.Here, r.Match = "(none)", "NO"
		case timing(k):
			r.Match = "- (timing)"
		default:
			a, aok := p[k].(float64)
			b, bok := hv.(float64)
			if aok && bok {
				r.Match = yesNo(close(a, b, tol))
			} else {
				r.Match = yesNo(fmt.Sprint(p[k]) == fmt.Sprint(hv))
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func close(a, b, tol float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b))
}

func format(v any) string {
	switch x := v.(type) {
	case nil:
		return "(none)"
	case float64:
		return fmt.Sprintf("%.6g", x)
	}
	return fmt.Sprint(v)
}
