package compiler_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/key"
	"github.com/ftc-dev/ftc/compiler/load"
	"github.com/ftc-dev/ftc/compiler/plan"
)

const fixture = "testdata/ppo/recipe.cue"

// overrides parses --set values, as the CLI does.
func overrides(t *testing.T, sets ...string) []load.Override {
	t.Helper()
	var ovs []load.Override
	for _, s := range sets {
		o, err := load.ParseOverride(s)
		if err != nil {
			t.Fatal(err)
		}
		ovs = append(ovs, o)
	}
	return ovs
}

func keysOf(t *testing.T, file string, sets ...string) map[string]key.Key {
	t.Helper()
	p, diags, err := compiler.Plan(file, overrides(t, sets...))
	if err != nil {
		t.Fatalf("plan %s %v: %v\n%s", file, sets, err, diags)
	}
	return stageKeys(p)
}

func stageKeys(p *plan.Plan) map[string]key.Key {
	m := map[string]key.Key{}
	for _, s := range p.Stages {
		m[s.Name] = s.Key
	}
	return m
}

func TestKeysIgnoreWorkingDirectoryAndEnvironment(t *testing.T) {
	abs, err := filepath.Abs(fixture)
	if err != nil {
		t.Fatal(err)
	}
	first := keysOf(t, abs)

	// Plan again from another directory, through a copy of the recipe in
	// another place, with a different environment.
	copyDir := t.TempDir()
	copyTree(t, filepath.Dir(abs), copyDir)
	t.Chdir(t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("HF_TOKEN", "hf_secret_value")
	t.Setenv("CUDA_VISIBLE_DEVICES", "3")
	t.Setenv("FTC_ANYTHING", "x")
	second := keysOf(t, filepath.Join(copyDir, "recipe.cue"))

	if len(first) != 4 {
		t.Fatalf("want 4 stages (2 prepare, rm, ppo), got %v", first)
	}
	for name, k := range first {
		if second[name] != k {
			t.Errorf("stage %s: key %s in one place, %s in another", name, k, second[name])
		}
	}
}

func TestLearningRateChangesTrainingKeyOnly(t *testing.T) {
	base := keysOf(t, fixture)
	changed := keysOf(t, fixture, "stages.ppo.training.learningRate=2e-6")

	if base["ppo"] == changed["ppo"] {
		t.Error("changing the PPO learning rate did not change the ppo key")
	}
	for _, same := range []string{"ppo.prepare", "rm.prepare", "rm"} {
		if base[same] != changed[same] {
			t.Errorf("changing the PPO learning rate changed the %s key", same)
		}
	}

	rm := keysOf(t, fixture, "stages.rm.training.learningRate=3e-5")
	if rm["rm"] == base["rm"] || rm["ppo"] == base["ppo"] {
		t.Error("changing the reward model's learning rate must change rm and, through its input, ppo")
	}
	if rm["rm.prepare"] != base["rm.prepare"] || rm["ppo.prepare"] != base["ppo.prepare"] {
		t.Error("changing a learning rate changed a data preparation key")
	}
}

func TestDatasetDigestChangesPrepareAndTrainingKeys(t *testing.T) {
	base := keysOf(t, fixture)
	other := "0000000000000000000000000000000000000000000000000000000000000001"
	changed := keysOf(t, fixture, "datasets.prefs.file.sha256="+other)
	for _, k := range []string{"rm.prepare", "rm", "ppo"} {
		if base[k] == changed[k] {
			t.Errorf("changing the preference data's sha256 did not change the %s key", k)
		}
	}
	if base["ppo.prepare"] != changed["ppo.prepare"] {
		t.Error("changing the preference data changed the prompt data's prepare key")
	}
}

func TestCadenceAndNamesDoNotChangeKeys(t *testing.T) {
	base := keysOf(t, fixture)
	for _, set := range []string{
		"stages.ppo.training.logEvery=1",
		"stages.ppo.training.saveEvery=7",
		"name=renamed",
		"description=\"another description\"",
		"hardware.target=\"slurm\"",
	} {
		got := keysOf(t, fixture, set)
		for name, k := range base {
			if got[name] != k {
				t.Errorf("--set %s changed the key of %s", set, name)
			}
		}
	}
}

func TestTopologyAndProfileChangeTrainingKeys(t *testing.T) {
	base := keysOf(t, fixture)
	more := keysOf(t, fixture, "hardware.gpusPerNode=4")
	if more["ppo"] == base["ppo"] {
		t.Error("doubling the data-parallel world (and so the global batch) did not change the ppo key")
	}
	if more["ppo.prepare"] != base["ppo.prepare"] {
		t.Error("the topology changed a data preparation key")
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAutoCheckpointingFollowsTheEstimate: "auto" resolves to off when the
// stage fits without checkpointing and on when it does not, and the key
// records the decision.
func TestAutoCheckpointingFollowsTheEstimate(t *testing.T) {
	recipe := "../examples/sft-trl-single/recipe.cue"
	small := []string{"stages.sft.training.microBatch=1", "stages.sft.data.maxLength=512"}
	big := []string{"stages.sft.training.microBatch=4", "stages.sft.data.maxLength=4096"}
	ck := func(sets []string) (bool, key.Key) {
		p, diags, err := compiler.Plan(recipe, overrides(t, sets...))
		if err != nil {
			t.Fatalf("%v\n%v", err, diags)
		}
		s := p.Stages[len(p.Stages)-1]
		if s.Estimate == nil {
			t.Fatal("no estimate")
		}
		if !strings.Contains(s.Files["trainer_args.json"], fmt.Sprintf(`"gradient_checkpointing": %v`, s.Estimate.Checkpointing)) {
			t.Errorf("trainer arguments disagree with the decision:\n%s", s.Files["trainer_args.json"])
		}
		return s.Estimate.Checkpointing, s.Key
	}
	if on, _ := ck(small); on {
		t.Error("1 × 512 tokens of a 7B LoRA fits an 80 GB GPU without checkpointing, but auto chose on")
	}
	if on, _ := ck(big); !on {
		t.Error("4 × 4096 tokens of a 7B LoRA does not fit without checkpointing, but auto chose off")
	}
	// An explicit "on" for the small case gives the same key as the
	// decision "on" would: the key holds the decision, not the word.
	_, autoKey := ck(big)
	_, onKey := ck(append(big, `stages.sft.gradientCheckpointing="on"`))
	if autoKey != onKey {
		t.Error("auto resolved to on and an explicit on have different keys")
	}
}

// TestChatTemplateIsAnInputKeyedByContent: a chat template file reaches
// the prepare and training stages as the "chat-template" input, and
// editing it changes both keys.
func TestChatTemplateIsAnInputKeyedByContent(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../examples/sft-trl-single", dir)
	tmpl := filepath.Join(dir, "template.jinja")
	os.WriteFile(tmpl, []byte("{% for m in messages %}{{ m.content }}{% endfor %}"), 0o644)
	recipe := filepath.Join(dir, "recipe.cue")
	set := "stages.sft.model.chatTemplate=template.jinja"
	p := planOf(t, recipe, set)
	for _, s := range p.Stages {
		found := false
		for _, in := range s.Inputs {
			if in.Role == "chat-template" && in.Source != nil && in.Source.Ref == "template.jinja" {
				found = true
			}
		}
		if !found {
			t.Errorf("stage %s has no chat-template input", s.Name)
		}
	}
	before := stageKeys(p)
	os.WriteFile(tmpl, []byte("{{ messages }}"), 0o644)
	after := stageKeys(planOf(t, recipe, set))
	for name := range before {
		if before[name] == after[name] {
			t.Errorf("editing the chat template did not change the key of %s", name)
		}
	}
}

func planOf(t *testing.T, file string, sets ...string) *plan.Plan {
	t.Helper()
	p, diags, err := compiler.Plan(file, overrides(t, sets...))
	if err != nil {
		t.Fatalf("%v\n%v", err, diags)
	}
	return p
}

// TestKeysSameThroughDataRoot: data reached through a symlink into a
// declared data root keys the same as the same data inside the recipe's
// directory: keys come from content, never from where the file lives.
func TestKeysSameThroughDataRoot(t *testing.T) {
	direct := keysOf(t, fixture)

	tmp := t.TempDir()
	dir, shared := filepath.Join(tmp, "recipe"), filepath.Join(tmp, "volume")
	copyTree(t, filepath.Dir(fixture), dir)
	if err := os.Rename(filepath.Join(dir, "data"), shared); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(shared, filepath.Join(dir, "data")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "recipe.cue")

	// Undeclared, the link is an escape.
	if _, diags, err := compiler.Plan(file, nil); err == nil || !strings.Contains(diags.Error(), "leaves the recipe's directory through the symlink data -> "+shared) {
		t.Fatalf("an undeclared data root was accepted: %v\n%s", err, diags)
	}

	// Declared on the command line.
	p, diags, err := compiler.PlanWith(file, nil, compiler.Options{DataRoots: []string{shared}})
	if err != nil {
		t.Fatalf("%v\n%s", err, diags)
	}
	if len(p.DataRoots) != 1 || p.DataRoots[0] != shared {
		t.Errorf("plan data roots %v, want [%s]", p.DataRoots, shared)
	}
	viaFlag := stageKeys(p)
	// Declared in the recipe.
	viaRecipe := keysOf(t, file, fmt.Sprintf("dataRoots=[%q]", shared))
	for name, k := range direct {
		if viaFlag[name] != k || viaRecipe[name] != k {
			t.Errorf("stage %s: key %s directly, %s through --data-root, %s through dataRoots", name, k, viaFlag[name], viaRecipe[name])
		}
	}
}

// TestDotSlashPathsKeySame: "./rewards.py" and "./data/x.jsonl" are the
// paths "rewards.py" and "data/x.jsonl", in the plan and in every key.
func TestDotSlashPathsKeySame(t *testing.T) {
	const example = "../examples/grpo-reward-funcs"
	plain := keysOf(t, example+"/recipe.cue")

	dir := t.TempDir()
	copyTree(t, example, dir)
	file := filepath.Join(dir, "recipe.cue")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), `file: "rewards.py"`, `file: "./rewards.py"`)
	s = strings.ReplaceAll(s, `path: "data/`, `path: "./data/`)
	if s == string(b) || strings.Count(s, `"./`) < 3 {
		t.Fatalf("the example no longer has the paths this test rewrites")
	}
	if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	p, diags, err := compiler.Plan(file, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, diags)
	}
	dotted := stageKeys(p)
	for name, k := range plain {
		if dotted[name] != k {
			t.Errorf("stage %s: key %s with plain paths, %s with ./ paths", name, k, dotted[name])
		}
	}
	for _, st := range p.Stages {
		for _, in := range st.Inputs {
			if in.Source != nil && strings.HasPrefix(in.Source.Ref, "./") {
				t.Errorf("stage %s input %s: ref %q not cleaned", st.Name, in.Role, in.Source.Ref)
			}
		}
	}
}

// TestFoundEnvironmentKeysEveryStage: a run in an environment other than
// the profile's (plan.Options.RanIn) changes every stage's key, data
// preparation included, and the same found environment gives the same
// keys again (DESIGN.md rule 10).
func TestFoundEnvironmentKeysEveryStage(t *testing.T) {
	profile, _, err := compiler.Plan(fixture, nil)
	if err != nil {
		t.Fatal(err)
	}
	ran := &plan.RanEnvironment{Profile: profile.Environment.Profile, Python: "3.11.7", Packages: map[string]string{"torch": "1.13.0", "trl": ""}}
	found := func(r *plan.RanEnvironment) map[string]key.Key {
		p, _, err := compiler.PlanWith(fixture, nil, compiler.Options{Plan: plan.Options{RanIn: r}})
		if err != nil {
			t.Fatal(err)
		}
		if p.Environment.Ran == nil {
			t.Fatal("the plan does not say which environment its keys name")
		}
		return stageKeys(p)
	}
	a, b := found(ran), found(ran)
	other := *ran
	other.Packages = map[string]string{"torch": "1.13.1", "trl": ""}
	c := found(&other)
	for name, k := range stageKeys(profile) {
		if a[name] == k || c[name] == k {
			t.Errorf("stage %s: the found environment shares the profile's key", name)
		}
		if a[name] != b[name] {
			t.Errorf("stage %s: the same found environment gives another key", name)
		}
		if a[name] == c[name] {
			t.Errorf("stage %s: another torch gives the same key", name)
		}
	}
}

// The Go defaults for a cluster target without its block are the schema's:
// a recipe with an empty slurm or kubernetes block decodes to them.
func TestClusterDefaultsAreTheSchemas(t *testing.T) {
	cases := []struct {
		target string
		want   func(r *config.Recipe) (any, any)
	}{
		{"slurm", func(r *config.Recipe) (any, any) { return *r.Hardware.Slurm, config.DefaultSlurm }},
		{"kubernetes", func(r *config.Recipe) (any, any) { return *r.Hardware.Kubernetes, config.DefaultKubernetes }},
	}
	for _, c := range cases {
		r, diags, err := compiler.Vet(fixture, overrides(t, "hardware.target="+c.target, "hardware."+c.target+"={}"))
		if err != nil {
			t.Fatalf("%s: %v\n%v", c.target, err, diags)
		}
		if got, want := c.want(r); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the schema's defaults %+v differ from Go's %+v", c.target, got, want)
		}
	}
}

// TestPassthroughChangesTrainingKey: passthrough settings are part of the
// stage key (and of the config the entrypoint reads); data preparation
// does not see them.
func TestPassthroughChangesTrainingKey(t *testing.T) {
	base := keysOf(t, fixture)
	alpha5 := keysOf(t, fixture, "stages.rm.trainer.neftune_noise_alpha=5")
	alpha3 := keysOf(t, fixture, "stages.rm.trainer.neftune_noise_alpha=3")
	rslora := keysOf(t, fixture, "stages.rm.peft.use_rslora=true")
	for name, ks := range map[string]map[string]key.Key{"neftune 5": alpha5, "neftune 3": alpha3, "use_rslora": rslora} {
		if ks["rm"] == base["rm"] || ks["ppo"] == base["ppo"] {
			t.Errorf("%s did not change the rm key and, through its input, ppo's", name)
		}
		for _, same := range []string{"rm.prepare", "ppo.prepare"} {
			if ks[same] != base[same] {
				t.Errorf("%s changed the %s key", name, same)
			}
		}
	}
	if alpha5["rm"] == alpha3["rm"] || alpha5["rm"] == rslora["rm"] {
		t.Error("different passthrough settings gave one key")
	}
	p, _, err := compiler.Plan(fixture, overrides(t, "stages.rm.trainer.neftune_noise_alpha=5", "stages.rm.peft.use_rslora=true"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Stages {
		if s.Name != "rm" {
			continue
		}
		b, err := json.Marshal(s.Config)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"trainer":{"neftune_noise_alpha":5},"peft":{"use_rslora":true}`) {
			t.Errorf("the stage config lacks the passthrough settings: %s", b)
		}
	}
}
