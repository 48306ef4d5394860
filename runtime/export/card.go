package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ftc-dev/ftc/compiler/plan"
)

// CardFile is the model card's name in the exported folder.
const CardFile = "README.md"

// CardInfo is what a model card says, all of it from the plan and the
// records: nothing from the clock or the machine.
type CardInfo struct {
	// Plan is the recipe's plan; Stage its export stage.
	Plan  *plan.Plan
	Stage *plan.Stage
	// RecipeFile is the recipe as named on the command line; RecipeSHA256
	// the digest of its bytes.
	RecipeFile   string
	RecipeSHA256 string
	// LockSHA256 is the digest of ftc.lock ("" when the recipe has none).
	LockSHA256 string
	// Summaries are the action records' final metrics, by stage name.
	Summaries map[string]json.RawMessage
	// Command reproduces the folder.
	Command string
}

// Card renders the model card.
func Card(c CardInfo) string {
	p, s := c.Plan, c.Stage
	var b strings.Builder
	cfg, _ := s.Config.(plan.ExportConfig)
	fmt.Fprintf(&b, "---\nlibrary_name: %s\ntags:\n- ftc\n", map[bool]string{true: "peft", false: "transformers"}[cfg.Form == "adapter"])
	if base := inputOf(s, "base"); base != nil && base.Source != nil && base.Source.Kind == "hub-model" {
		// A Hub id; a local model's path means nothing on the Hub (its
		// tree digest is in the provenance table).
		fmt.Fprintf(&b, "base_model: %s\n", base.Source.Ref)
	}
	b.WriteString("---\n\n")
	fmt.Fprintf(&b, "# %s (%s)\n\n", p.Recipe, s.Name)
	form := map[string]string{
		"merged":  "the trained adapter merged into the base model's weights",
		"adapter": "a PEFT adapter on the base model",
		"full":    "fully fine-tuned weights",
	}[cfg.Form]
	fmt.Fprintf(&b, "Made by [ftc](https://github.com/ftc-dev/ftc) from the recipe `%s`: %s, in %s.\n", c.RecipeFile, form, cfg.DType)
	b.WriteString("Every digest below comes from the plan and the cache's records; the same recipe, lock and data give the same keys.\n\n")

	b.WriteString("## Provenance\n\n| what | value |\n| --- | --- |\n")
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | `%s` |\n", k, v) }
	row("recipe", c.RecipeFile)
	row("recipe sha256", c.RecipeSHA256)
	if c.LockSHA256 != "" {
		row("ftc.lock sha256", c.LockSHA256)
	} else {
		row("ftc.lock", "none (every reference pinned in the recipe)")
	}
	if base := inputOf(s, "base"); base != nil && base.Source != nil {
		what := base.Source.Ref + "@" + base.Source.Pin
		if base.Source.Kind == "local-model" {
			what = "local directory " + what
		}
		row("base model", what)
	}
	row("environment", p.Environment.Profile+" "+string(p.Environment.Key))
	if p.Image != "" {
		row("image", p.Image)
	} else {
		row("image", "not built (ftc build makes one; stage keys do not depend on it)")
	}
	row("hardware", fmt.Sprintf("%d node(s) × %d %s, %s", p.Hardware.Nodes, p.Hardware.GPUsPerNode, p.Hardware.GPU, p.Hardware.Strategy))

	up := upstream(p, s)
	b.WriteString("\n## Data\n\n")
	var data []string
	for _, st := range up {
		for _, in := range st.Inputs {
			if in.Source != nil && (in.Source.Kind == "file" || in.Source.Kind == "hub-dataset") {
				data = append(data, fmt.Sprintf("- `%s` (%s) `%s`", in.Source.Ref, in.Source.Kind, in.Source.Pin))
			}
		}
	}
	sort.Strings(data)
	data = uniq(data)
	if len(data) == 0 {
		data = []string{"- none"}
	}
	b.WriteString(strings.Join(data, "\n") + "\n")

	b.WriteString("\n## Stages\n\n| stage | kind | key |\n| --- | --- | --- |\n")
	for _, st := range up {
		fmt.Fprintf(&b, "| %s | %s | `%s` |\n", st.Name, st.Kind, st.Key)
	}

	b.WriteString("\n## Final metrics\n\n")
	wrote := false
	for _, st := range up {
		if st.CPUOnly() {
			continue
		}
		var m map[string]any
		if raw := c.Summaries[st.Name]; len(raw) > 0 && json.Unmarshal(raw, &m) == nil && len(m) > 0 {
			fmt.Fprintf(&b, "%s:\n\n| metric | value |\n| --- | --- |\n", st.Name)
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				v, _ := json.Marshal(m[k])
				fmt.Fprintf(&b, "| %s | %s |\n", k, v)
			}
			b.WriteString("\n")
			wrote = true
		}
	}
	if !wrote {
		b.WriteString("none recorded\n\n")
	}
	b.WriteString(comparisons(p, s, c.Summaries))
	if cfg.Form != "adapter" {
		b.WriteString("## Use\n\n```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n" +
			"model = AutoModelForCausalLM.from_pretrained(\"PATH\", torch_dtype=\"auto\")\ntokenizer = AutoTokenizer.from_pretrained(\"PATH\")\n```\n\n" +
			"`generation_config.json` lists the chat template's end-of-turn token among its `eos_token_id`s, so generation stops at the end of the answer.\n\n")
	}
	fmt.Fprintf(&b, "## Reproduce\n\n```sh\n%s\n```\n", c.Command)
	return b.String()
}

// WriteCard writes the card into dir as a new file: a README.md already
// there (it may be a hard link into the store) is removed, never written
// through.
func WriteCard(dir string, c CardInfo) error {
	p := filepath.Join(dir, CardFile)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.WriteFile(p, []byte(Card(c)), 0o644)
}

func inputOf(s *plan.Stage, role string) *plan.Input {
	for i := range s.Inputs {
		if s.Inputs[i].Role == role {
			return &s.Inputs[i]
		}
	}
	return nil
}

// upstream lists s and every stage it reads, in plan order.
func upstream(p *plan.Plan, s *plan.Stage) []*plan.Stage {
	need := map[string]bool{s.Name: true}
	for i := len(p.Stages) - 1; i >= 0; i-- {
		st := p.Stages[i]
		if !need[st.Name] {
			continue
		}
		for _, in := range st.Inputs {
			if in.Stage != "" {
				need[in.Stage] = true
			}
		}
	}
	var out []*plan.Stage
	for _, st := range p.Stages {
		if need[st.Name] {
			out = append(out, st)
		}
	}
	return out
}

func uniq(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// comparisons renders, as Markdown, the recipe's side-by-side evaluations
// in which the exported model is one of the models evaluated: the trained
// stage's output against its base (plan.Compare), from the records.
func comparisons(p *plan.Plan, s *plan.Stage, summaries map[string]json.RawMessage) string {
	trained := inputOf(s, "model")
	if trained == nil || trained.Stage == "" {
		return ""
	}
	final := map[string]map[string]any{}
	for name, raw := range summaries {
		var m map[string]any
		if json.Unmarshal(raw, &m) == nil {
			final[name] = m
		}
	}
	var b strings.Builder
	for _, c := range plan.Compare(p, final) {
		ours := false
		for _, m := range c.Models {
			ours = ours || m == "stage "+trained.Stage
		}
		if !ours || len(c.Metrics) == 0 {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("## Evaluation against the base\n\n")
		}
		b.WriteString("| metric |")
		for j, st := range c.Stages {
			fmt.Fprintf(&b, " %s (%s) |", st, c.Models[j])
		}
		b.WriteString("\n| --- |" + strings.Repeat(" --- |", len(c.Stages)) + "\n")
		for i, m := range c.Metrics {
			fmt.Fprintf(&b, "| %s |", m)
			for _, v := range c.Values[i] {
				fmt.Fprintf(&b, " %s |", v)
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}
