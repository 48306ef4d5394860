package plan

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/key"
)

// evalVersion is the version of the eval key material.
const evalVersion = 1

// EvalConfig is what the eval entrypoint reads: the model (input role
// "model", as a training stage names its models), the prepared rows
// (input role "data") and, for prompts, how to generate and score.
type EvalConfig struct {
	Model ModelConfig `json:"model"`
	// Mode is "loss" (the answers' loss and perplexity, on rows prepared
	// as SFT's) or "generate" (answers generated to prepared prompts,
	// scored by Scorers).
	Mode      string `json:"mode"`
	MaxLength int    `json:"maxLength"`
	// MaxNewTokens, Temperature and Seed shape generation (mode generate).
	MaxNewTokens int     `json:"maxNewTokens,omitempty"`
	Temperature  float64 `json:"temperature"`
	Seed         int64   `json:"seed"`
	// Scorers are the functions that score generated answers, each in
	// input role "scorers.N" (kind "function", weight 1).
	Scorers []RewardConfig `json:"scorers,omitempty"`
	// Device is "cpu" on a CPU run, so CPU and GPU results are never one
	// cache entry.
	Device string `json:"device,omitempty"`
}

// buildEval plans an eval stage: its data prepared as SFT's (loss) or
// GRPO's (prompts), then one process on one device. Its key holds the
// model, the prepared rows, the settings and scorers' contents, never the
// stage's name: the same evaluation of the same model is one cache entry
// in every recipe.
func buildEval(b *builder, st config.Stage) (*Stage, error) {
	if st.Data.Eval == nil {
		return nil, fmt.Errorf("an eval stage without data.eval")
	}
	mc, in := b.model("model", st.Model)
	seed := b.r.Seed
	if st.Training.Seed != nil {
		seed = *st.Training.Seed
	}
	cfg := EvalConfig{Model: mc, Mode: "loss", MaxLength: st.Data.MaxLength, Device: device(b.r)}
	ps, err := b.prepare(st, *st.Data.Eval, 0, st.Name+".prepare")
	if err != nil {
		return nil, err
	}
	inputs := append([]Input{{Role: "data", Stage: ps.Name, Key: ps.Key}}, in...)
	if st.Generates() {
		e := st.Eval
		cfg.Mode, cfg.MaxNewTokens, cfg.Temperature = "generate", e.MaxNewTokens, e.Temperature
		if e.Temperature > 0 {
			// Greedy decoding draws nothing: the seed stays out of its key.
			cfg.Seed = seed
		}
		for i, sc := range e.Scorers {
			f := b.r.Files[sc.File]
			role := fmt.Sprintf("scorers.%d", i)
			cfg.Scorers = append(cfg.Scorers, RewardConfig{Kind: "function", File: sc.File, SHA256: f.SHA256, Name: sc.Name, Weight: 1})
			inputs = append(inputs, Input{Role: role, Source: &Source{Kind: "recipe-file", Ref: sc.File, Pin: "sha256:" + f.SHA256, Pinned: true}})
		}
	}
	// File names are not contents: the scorers' digests are in the key.
	keyed := cfg
	keyed.Model.ChatTemplate = ""
	keyed.Scorers = make([]RewardConfig, len(cfg.Scorers))
	for i, sc := range cfg.Scorers {
		sc.File = ""
		keyed.Scorers[i] = sc
	}
	k, err := b.configKey(KindEval, evalVersion, keyed, inputs)
	if err != nil {
		return nil, err
	}
	es, err := b.oneDevice(st.Name, KindEval, k, inputs, cfg)
	if err != nil {
		return nil, err
	}
	es.Estimate = inferenceEstimate(b.r, st)
	return es, nil
}

// Comparison is eval stages that ran the same evaluation (the same
// prepared rows, mode, settings and scorers) on different models: the
// side-by-side table of the run report and the model card.
type Comparison struct {
	// Stages are the eval stages, in plan order; Models what each
	// evaluated ("base Qwen/Qwen2.5-0.5B-Instruct", "stage sft").
	Stages []string
	Models []string
	// Metrics are the rows; Values[i][j] is metric i of stage j ("" where
	// the stage has not recorded it).
	Metrics []string
	Values  [][]string
}

// Compare groups the eval stages of p that share an evaluation, given the
// final metrics recorded by stage name, into comparisons of two stages or
// more. Run-time numbers (seconds) are left out.
func Compare(p *Plan, final map[string]map[string]any) []Comparison {
	var order []string
	groups := map[string][]*Stage{}
	for _, s := range p.Stages {
		cfg, ok := s.Config.(EvalConfig)
		if s.Kind != KindEval || !ok {
			continue
		}
		data := ""
		for _, in := range s.Inputs {
			if in.Role == "data" {
				data = string(in.Key)
			}
		}
		cfg.Model = ModelConfig{}
		for i := range cfg.Scorers {
			cfg.Scorers[i].File = ""
		}
		id, err := key.Of(key.DomainStage, evalVersion, struct {
			Data   string     `json:"data"`
			Config EvalConfig `json:"config"`
		}{data, cfg})
		if err != nil {
			continue
		}
		if groups[string(id)] == nil {
			order = append(order, string(id))
		}
		groups[string(id)] = append(groups[string(id)], s)
	}
	var out []Comparison
	for _, id := range order {
		ss := groups[id]
		if len(ss) < 2 {
			continue
		}
		c := Comparison{}
		seen := map[string]bool{}
		for _, s := range ss {
			c.Stages = append(c.Stages, s.Name)
			c.Models = append(c.Models, evaluated(s))
			for k := range final[s.Name] {
				if !seen[k] && k != "seconds" && k != "final" && k != "step" {
					seen[k] = true
					c.Metrics = append(c.Metrics, k)
				}
			}
		}
		sort.Strings(c.Metrics)
		for _, m := range c.Metrics {
			row := make([]string, len(ss))
			for j, s := range ss {
				if v, ok := final[s.Name][m]; ok {
					row[j] = formatMetric(v)
				}
			}
			c.Values = append(c.Values, row)
		}
		out = append(out, c)
	}
	return out
}

// evaluated names the model an eval stage reads.
func evaluated(s *Stage) string {
	for _, in := range s.Inputs {
		if in.Role != "model" {
			continue
		}
		if in.Stage != "" {
			return "stage " + in.Stage
		}
		if in.Source != nil {
			return in.Source.Ref
		}
	}
	return "?"
}

func formatMetric(v any) string {
	switch v := v.(type) {
	case float64:
		return strconv.FormatFloat(v, 'g', 5, 64)
	case json.Number:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}
