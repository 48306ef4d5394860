package compiler_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mixRecipe writes a recipe training on a mix of the example's datasets
// (examples/sft-mixture) and returns its path. data is the stage's
// training data field: "mix: [...]" or "train: datasets.NAME".
func mixRecipe(t *testing.T, data string) string {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, "../examples/sft-mixture", dir)
	b, err := os.ReadFile(filepath.Join(dir, "recipe.cue"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, "\t\tmix: ["), strings.Index(s, "\t\tmaxLength:")
	if i < 0 || j < i {
		t.Fatal("examples/sft-mixture/recipe.cue has no mix to replace")
	}
	s = s[:i] + "\t\t" + data + "\n" + s[j:]
	p := filepath.Join(dir, "recipe.cue")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Each source of a mix is prepared on its own: a new weight, or one more
// source, changes the training stage's key and no source's prepare key,
// so `ftc run` tokenizes nothing again.
func TestMixWeightsAndSourcesPrepareNothingAgain(t *testing.T) {
	two := keysOf(t, mixRecipe(t, `mix: [{dataset: datasets.math, weight: 1}, {dataset: datasets.facts, weight: 0.5}]`))
	reweighed := keysOf(t, mixRecipe(t, `mix: [{dataset: datasets.math, weight: 3}, {dataset: datasets.facts, weight: 0.25}]`))
	three := keysOf(t, mixRecipe(t, `mix: [{dataset: datasets.math, weight: 1}, {dataset: datasets.facts, weight: 0.5}, {dataset: datasets.weather}]`))

	for _, name := range []string{"sft.prepare.math", "sft.prepare.facts"} {
		if two[name] == "" {
			t.Fatalf("no stage %s in %v", name, two)
		}
		if reweighed[name] != two[name] {
			t.Errorf("changing the weights changed the %s key", name)
		}
		if three[name] != two[name] {
			t.Errorf("adding a source changed the %s key", name)
		}
	}
	if three["sft.prepare.weather"] == "" || len(three) != 4 {
		t.Errorf("a third source should add one prepare stage: %v", three)
	}
	if reweighed["sft"] == two["sft"] || three["sft"] == two["sft"] {
		t.Error("the training key must change with the mix")
	}

	// A one-source mix at weight 1 prepares what train does.
	one := keysOf(t, mixRecipe(t, `mix: [{dataset: datasets.math}]`))
	if one["sft.prepare.math"] != two["sft.prepare.math"] {
		t.Error("a one-source mix prepared its source differently")
	}
	// And what train alone does: the prepare key holds no stage names.
	train := keysOf(t, mixRecipe(t, `train: datasets.math`))
	if train["sft.prepare"] != two["sft.prepare.math"] {
		t.Errorf("train: datasets.math prepared differently from its mix source: %v", train)
	}
}
