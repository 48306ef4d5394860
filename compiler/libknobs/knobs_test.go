package libknobs_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/libknobs"
	"github.com/ftc-dev/ftc/compiler/plan"
)

// knobsJSON is where the entrypoints read the table.
var knobsJSON = filepath.Join("..", "..", "stdlib", "python", "ftc", "knobs.json")

// TestJSONCurrent keeps stdlib/python/ftc/knobs.json equal to the table
// (FTC_UPDATE_GOLDEN=1 rewrites it).
func TestJSONCurrent(t *testing.T) {
	got := libknobs.JSON()
	if os.Getenv("FTC_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(knobsJSON, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(knobsJSON)
	if err != nil {
		t.Fatalf("%v (run with FTC_UPDATE_GOLDEN=1 to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: refresh with FTC_UPDATE_GOLDEN=1 go test ./compiler/libknobs", knobsJSON)
	}
}

// TestStockProfiles keeps the table's stock versions equal to
// stdlib/profiles (through the recipes of the Python test environments,
// which use them).
func TestStockProfiles(t *testing.T) {
	for _, p := range libknobs.Stock {
		r, _, err := compiler.Vet(filepath.Join("..", "..", "stdlib", "python", "envs", p.ID, "recipe.cue"), nil)
		if err != nil {
			t.Fatalf("%s: %v", p.ID, err)
		}
		if r.Environment.Profile != p.ID {
			t.Errorf("%s: the recipe's profile is %q", p.ID, r.Environment.Profile)
		}
		for lib, v := range p.Versions {
			if got := r.Environment.Packages[lib]; got != v {
				t.Errorf("%s: %s is %q in stdlib/profiles, %q in libknobs.Stock", p.ID, lib, got, v)
			}
		}
	}
}

func TestTableWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range libknobs.Table {
		id := k.Class + "." + k.Name
		if seen[id] {
			t.Errorf("%s: listed twice", id)
		}
		seen[id] = true
		if k.Lib != "transformers" && k.Lib != "trl" {
			t.Errorf("%s: lib %q", id, k.Lib)
		}
		if (k.Class == libknobs.TrainingArguments) != (k.Lib == "transformers") {
			t.Errorf("%s: a %s knob decided by %s", id, k.Class, k.Lib)
		}
		if (k.Without != nil || k.Handled != "") && !k.Bounded() {
			t.Errorf("%s: every version has it, yet it says what happens without it", id)
		}
		if k.Bounded() && k.Without == nil && k.Handled == "" && k.Setting == "" {
			t.Errorf("%s: some version lacks it and nothing says what ftc does there", id)
		}
		if k.Bounded() && k.Source == "" || len(k.Spellings) > 1 && k.Source == "" {
			t.Errorf("%s: version bounds without a source", id)
		}
	}
}

func TestNameAt(t *testing.T) {
	find := func(class, name string) libknobs.Knob {
		for _, k := range libknobs.For(class) {
			if k.Name == name {
				return k
			}
		}
		t.Fatalf("no %s.%s", class, name)
		return libknobs.Knob{}
	}
	for _, tc := range []struct {
		class, name, version, want string
	}{
		{libknobs.TrainingArguments, "warmup_ratio", "4.48.2", "warmup_ratio"},
		{libknobs.SFTConfig, "warmup_ratio", "5.0.0", "warmup_steps"},
		{libknobs.TrainingArguments, "eval_strategy", "4.40.2", "evaluation_strategy"},
		{libknobs.TrainingArguments, "eval_strategy", "5.17.0", "eval_strategy"},
		{libknobs.SFTConfig, "loss_type", "0.22.2", ""},
		{libknobs.SFTConfig, "loss_type", "0.23.0", "loss_type"},
		{libknobs.GRPOConfig, "vllm_group_port", "0.26.2", ""},
		{libknobs.GRPOConfig, "vllm_group_port", "1.9.0", "vllm_group_port"},
		{libknobs.GRPOConfig, "max_prompt_length", "0.27.2", "max_prompt_length"},
		{libknobs.GRPOConfig, "max_prompt_length", "0.28.0", ""},
		{libknobs.PPOConfig, "kl_coef", "0.16.0", "kl_coef"},
	} {
		if got := find(tc.class, tc.name).NameAt(tc.version); got != tc.want {
			t.Errorf("%s.%s at %s = %q, want %q", tc.class, tc.name, tc.version, got, tc.want)
		}
	}
	if got := libknobs.For(libknobs.RewardConfig); len(got) == 0 || got[0].Class != libknobs.TrainingArguments {
		t.Errorf("RewardConfig does not inherit TrainingArguments' knobs")
	}
}

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"0.16.0", "0.16", 0},
		{"0.9.6", "0.16.0", -1},
		{"1.9.0", "0.28.0", 1},
		{"2.8.3.post2", "2.8.3", 0},
		{"5.0.0rc1", "5.0.0", 0},
		{"", "0.1", -1},
		{"4.48.2", "4.41.0", 1},
	} {
		if got := libknobs.Compare(tc.a, tc.b); got != tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestTrainerArgsInTable: every keyword of the plan's trainer_args.json
// is a knob of the table for the stage's config class, for every method
// on both stock profiles.
func TestTrainerArgsInTable(t *testing.T) {
	for _, p := range libknobs.Stock {
		libs := plan.Libraries{Transformers: p.Versions["transformers"], TRL: p.Versions["trl"]}
		for _, cfg := range sampleStages() {
			class := libknobs.ClassOf(cfg.Method, cfg.Backend)
			names := map[string]bool{}
			for _, k := range libknobs.For(class) {
				for _, s := range k.Spellings {
					names[s.Name] = true
				}
			}
			b, err := plan.TrainerArgs(cfg, libs, "Qwen2DecoderLayer")
			if err != nil {
				t.Fatal(err)
			}
			var args map[string]any
			if err := json.Unmarshal(b, &args); err != nil {
				t.Fatal(err)
			}
			for k := range args {
				if !names[k] {
					t.Errorf("%s, %s %s: trainer_args.json has %s, which the knob table lacks", p.ID, cfg.Method, cfg.Backend, k)
				}
			}
		}
	}
}

// sampleStages is one stage config per config class, with every optional
// block set (DeepSpeed, eval, vLLM, a CPU world).
func sampleStages() []plan.StageConfig {
	base := func(method, backend string) plan.StageConfig {
		cr := 0.01
		pen := -1.0
		return plan.StageConfig{
			Method: method, Backend: backend, GradientCheckpointing: "on",
			Models:        map[string]plan.ModelConfig{"model": {DType: "bf16"}, "policy": {DType: "bf16"}},
			Training:      plan.TrainingConfig{Optimizer: "adamw", Schedule: "cosine", MicroBatch: 1, GradAccum: 2, Steps: 3, Seed: 1},
			Data:          plan.DataConfig{MaxLength: 64, HasEval: true},
			Cadence:       plan.Cadence{LogEvery: 1, SaveEvery: 2, EvalEvery: 2},
			Distributed:   plan.Distributed{Device: "cpu", Strategy: "zero3", Processes: 2},
			CenterRewards: &cr,
			GRPO: &config.GRPO{Generations: 2, MaxCompletionLength: 8, Beta: 0.1, Temperature: 1,
				Generation: config.Generation{Engine: "vllm", Port: 8000, GroupPort: 51216}},
			RLOO:    &config.RLOO{Generations: 2, MaxCompletionLength: 8, Beta: 0.05, Temperature: 1},
			Rewards: []plan.RewardConfig{{Kind: "function", Weight: 1}},
			PPO:     &config.PPO{Epochs: 1, MiniBatches: 1, ResponseLength: 8, MissingEOSPenalty: &pen},
		}
	}
	return []plan.StageConfig{base("sft", "trl"), base("sft", "transformers"), base("reward", ""), base("grpo", ""), base("rloo", ""), base("ppo", "")}
}
