package track

import (
	"encoding/json"
	"sort"
	"strconv"

	"github.com/ftc-dev/ftc/runtime/exec"
)

// starts holds each stage's first start event of this run (its key and
// time), for the trackers that make a stage's run with its first
// metrics.
type starts map[string]exec.Event

// note keeps e when it is a stage's first start (or resume) with a key.
func (s *starts) note(e exec.Event) {
	if e.Key == "" {
		return
	}
	if *s == nil {
		*s = starts{}
	}
	if _, ok := (*s)[e.Stage]; !ok {
		(*s)[e.Stage] = e
	}
}

// Param is one of a stage's settings as a tracker shows it: the path of
// the setting in the plan's stage config ("training.learningRate") and
// its value as text.
type Param struct{ Key, Value string }

// Params flattens a stage's config (the plan's, as its entrypoint reads
// it) into its settings, in key order: what a tracker files beside the
// metrics (MLflow's params, W&B's config), so runs compare by the
// hyperparameters that made them. Lists are kept as JSON.
func Params(config any) []Param {
	b, err := json.Marshal(config)
	if err != nil {
		return nil
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return nil
	}
	var out []Param
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, x)
			}
		case nil:
		case string:
			out = append(out, Param{prefix, v})
		case float64:
			out = append(out, Param{prefix, strconv.FormatFloat(v, 'g', -1, 64)})
		case bool:
			out = append(out, Param{prefix, strconv.FormatBool(v)})
		default:
			b, _ := json.Marshal(v)
			out = append(out, Param{prefix, string(b)})
		}
	}
	walk("", v)
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
