package passthru_test

import (
	"encoding/json"
	"testing"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/libknobs"
	"github.com/ftc-dev/ftc/compiler/passthru"
	"github.com/ftc-dev/ftc/compiler/plan"
)

// TestTablesOfStockProfiles: every stock profile has a table made from
// its own library versions, with every class ftc builds.
func TestTablesOfStockProfiles(t *testing.T) {
	for _, p := range libknobs.Stock {
		tb := passthru.Tables()[p.ID]
		if tb == nil {
			t.Fatalf("no field table for %s (stdlib/python/envs/%s/fields.json)", p.ID, p.ID)
		}
		for lib, v := range p.Versions {
			if tb.Versions[lib] != v {
				t.Errorf("%s: table made with %s %s, the profile has %s", p.ID, lib, tb.Versions[lib], v)
			}
		}
		for _, c := range append(append([]string(nil), libknobs.Classes...), libknobs.LoraConfig) {
			if len(tb.Names(c)) < 10 {
				t.Errorf("%s: %s has %d fields", p.ID, c, len(tb.Names(c)))
			}
		}
		// Inherited fields resolve to the base class's library.
		if _, ok := tb.Field(libknobs.SFTConfig, "neftune_noise_alpha"); !ok {
			t.Errorf("%s: SFTConfig does not inherit neftune_noise_alpha", p.ID)
		}
		if lib := tb.LibOf(libknobs.SFTConfig, "neftune_noise_alpha"); lib != "transformers" {
			t.Errorf("%s: neftune_noise_alpha is %s's", p.ID, lib)
		}
	}
}

func TestKindAndAccepts(t *testing.T) {
	for raw, want := range map[string]string{"null": "null", "true": "bool", "5": "int", "-5": "int", "5.0": "float",
		"1e-6": "float", `"x"`: "str", "[1]": "list", `{"a":1}`: "dict"} {
		if got := passthru.Kind(json.RawMessage(raw)); got != want {
			t.Errorf("Kind(%s) = %s, want %s", raw, got, want)
		}
	}
	f := passthru.Field{Types: []string{"float", "null"}}
	if !f.Accepts("int") || !f.Accepts("null") || f.Accepts("str") {
		t.Errorf("float|null: %v", f)
	}
	if i := (passthru.Field{Types: []string{"int"}}); i.Accepts("float") {
		t.Error("an int field takes a float")
	}
	if got := (passthru.Field{Types: []string{"null", "str"}, Choices: []string{"a", "b"}}).Describe(); got != `null or one of "a", "b"` {
		t.Errorf("Describe: %s", got)
	}
}

// TestOwnedNeverPassed: the keywords the plan's trainer_args.json and the
// entrypoints set are ftc's, in both profiles' tables.
func TestOwnedKeysSample(t *testing.T) {
	for _, k := range []string{"learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "bf16", "fp16",
		"gradient_checkpointing", "seed", "output_dir", "save_steps", "save_only_model", "logging_dir", "max_steps",
		"num_train_epochs", "warmup_ratio", "warmup_steps", "optim", "weight_decay", "max_grad_norm", "deepspeed", "fsdp",
		"fsdp_config", "lr_scheduler_type", "use_cpu", "ddp_backend"} {
		if _, ok := libknobs.OwnerOf(libknobs.SFTConfig, k); !ok {
			t.Errorf("%s is not ftc's", k)
		}
	}
	for _, k := range []string{"r", "lora_alpha", "target_modules", "lora_dropout"} {
		if _, ok := libknobs.OwnerOf(libknobs.LoraConfig, k); !ok {
			t.Errorf("peft %s is not ftc's", k)
		}
	}
	for _, k := range []string{"neftune_noise_alpha", "lr_scheduler_kwargs"} {
		if _, ok := libknobs.OwnerOf(libknobs.SFTConfig, k); ok {
			t.Errorf("%s is ftc's", k)
		}
	}
	if _, ok := libknobs.OwnerOf(libknobs.LoraConfig, "use_dora"); ok {
		t.Error("use_dora is ftc's")
	}
}

// TestTrainerArgsAreOwned: every keyword the plan writes to
// trainer_args.json is ftc's own, for every class: a passthrough can never
// state it a second time.
func TestTrainerArgsAreOwned(t *testing.T) {
	for _, p := range libknobs.Stock {
		libs := plan.Libraries{Transformers: p.Versions["transformers"], TRL: p.Versions["trl"]}
		for _, method := range []string{"sft", "reward", "grpo", "ppo"} {
			pen := -1.0
			cfg := plan.StageConfig{Method: method, GradientCheckpointing: "on",
				Training:    plan.TrainingConfig{Optimizer: "adamw", Schedule: "cosine", MicroBatch: 1, GradAccum: 1, Steps: 3},
				Data:        plan.DataConfig{HasEval: true},
				Cadence:     plan.Cadence{EvalEvery: 5},
				Distributed: plan.Distributed{Device: "cpu", Strategy: "zero2", Processes: 2},
				GRPO:        &config.GRPO{Generation: config.Generation{Engine: "vllm"}},
				PPO:         &config.PPO{MiniBatches: 1, MissingEOSPenalty: &pen}}
			b, err := plan.TrainerArgs(cfg, libs, "")
			if err != nil {
				t.Fatal(err)
			}
			var args map[string]any
			if err := json.Unmarshal(b, &args); err != nil {
				t.Fatal(err)
			}
			args["num_train_epochs"] = 1
			class := libknobs.ClassOf(method, "")
			for k := range args {
				if _, ok := libknobs.OwnerOf(class, k); !ok {
					t.Errorf("%s %s.%s is in trainer_args.json but not ftc's own", p.ID, class, k)
				}
			}
		}
	}
}
