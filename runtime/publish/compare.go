package publish

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/ftc-dev/ftc/runtime/cas"
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

// CompareOutput compares a rerun stage's output tree with the published
// one: the tree digests, then, when they differ and both trees are known
// (pubTree may be nil), file by file. exact says the run was
// deterministic (CPU, fixed seed): there a weights file that differs, or
// a file on one side only, is a failure; another file that differs (run
// metadata: timings in trainer_state.json) is shown, not failed. A GPU
// run is not bit-exact: its differences are shown, not failed.
func CompareOutput(stage, pub, here string, pubTree, hereTree *cas.Tree, exact bool) []Row {
	r := Row{"output " + stage + " (tree)", Short(pub), Short(here), yesNo(pub == here)}
	if pub == here {
		return []Row{r}
	}
	if !exact {
		r.Match = "differs (GPU run: not bit-exact)"
	}
	if pubTree == nil || hereTree == nil {
		return []Row{r}
	}
	if exact {
		r.Match = "differs (files below)"
	}
	rows := []Row{r}
	pm, hm := map[string]cas.TreeEntry{}, map[string]cas.TreeEntry{}
	var paths []string
	for _, e := range pubTree.Entries {
		pm[e.Path] = e
		paths = append(paths, e.Path)
	}
	for _, e := range hereTree.Entries {
		hm[e.Path] = e
		if _, ok := pm[e.Path]; !ok {
			paths = append(paths, e.Path)
		}
	}
	sort.Strings(paths)
	weights, same := 0, 0
	for _, p := range paths {
		a, aok := pm[p]
		b, bok := hm[p]
		w := Weights(p)
		if w {
			weights++
		}
		switch {
		case aok && bok && a.Digest == b.Digest:
			if w {
				same++
			}
			continue
		case !aok:
			rows = append(rows, Row{"  " + p, "(none)", Short(string(b.Digest)), "NO"})
		case !bok:
			rows = append(rows, Row{"  " + p, Short(string(a.Digest)), "(none)", "NO"})
		default:
			m := "differs (not weights)"
			if w {
				m = "NO"
			}
			rows = append(rows, Row{"  " + p, Short(string(a.Digest)), Short(string(b.Digest)), m})
		}
		if !exact {
			rows[len(rows)-1].Match = "differs (GPU run: not bit-exact)"
		}
	}
	if weights > 0 {
		rows = append(rows, Row{fmt.Sprintf("weights %s (%d file(s))", stage, weights), fmt.Sprintf("%d", weights), fmt.Sprintf("%d identical", same), yesNo(same == weights)})
		if !exact && same != weights {
			rows[len(rows)-1].Match = "differs (GPU run: not bit-exact)"
		}
	}
	return rows
}

// Weights says whether a file of an output holds weights (safetensors,
// PyTorch or NumPy tensors, GGUF), which a deterministic rerun gives
// byte for byte.
func Weights(p string) bool {
	for _, ext := range []string{".safetensors", ".bin", ".pt", ".pth", ".npy", ".npz", ".gguf"} {
		if strings.HasSuffix(p, ext) {
			return true
		}
	}
	return false
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
				r.Match = yesNo(within(a, b, tol))
			} else {
				r.Match = yesNo(fmt.Sprint(p[k]) == fmt.Sprint(hv))
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func within(a, b, tol float64) bool {
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
