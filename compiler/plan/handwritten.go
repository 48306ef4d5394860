package plan

import (
	"encoding/json"
	"fmt"

	"github.com/ftc-dev/ftc/compiler/launch"
)

// HandWrittenFiles renders the launcher files a training stage's run
// directory gets (trainer_args.json, and ds_config.json under ZeRO) from
// a stage.json written by hand, as ftc's library tests and the GPU visit
// write them (bench/gpu/assets.py): their stages then take the trainer
// arguments from this planner, as a planned stage does. Fields the file
// leaves out take the values ftc/stage.py reads in their place.
func HandWrittenFiles(stageJSON []byte, libs Libraries, decoderLayer string) (map[string][]byte, error) {
	cfg, err := handWrittenStage(stageJSON)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	if files[TrainerArgsFile], err = TrainerArgs(cfg, libs, decoderLayer); err != nil {
		return nil, err
	}
	if d := cfg.Distributed; d.Strategy.DeepSpeed() {
		if files[launch.DeepSpeedFile], err = launch.DeepSpeedConfig(d.Strategy, d.Offload); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// stageDefaults are the values ftc/stage.py takes for fields a
// hand-written stage.json leaves out (a plan states every one): the
// trainer arguments must follow the config the entrypoint reads.
const stageDefaults = `{
  "distributed": {"ncclTimeoutMinutes": 30, "processes": 1, "strategy": "single"},
  "cadence": {"logEvery": 10, "saveEvery": 500},
  "ppo": {"epochs": 4, "miniBatches": 1, "responseLength": 53, "klCoef": 0.05, "clipRange": 0.2,
          "valueClipRange": 0.2, "vfCoef": 0.1, "gamma": 1.0, "lam": 0.95, "temperature": 0.7},
  "grpo": {"generations": 8, "maxCompletionLength": 256, "beta": 0.04, "temperature": 0.9,
           "generation": {"engine": "transformers", "gpus": 1, "port": 8000, "groupPort": 51216}},
  "kto": {"loss": "kto"}
}`

// handWrittenStage decodes a stage.json's config with stageDefaults
// filling what it leaves out.
func handWrittenStage(b []byte) (StageConfig, error) {
	var out struct {
		Config StageConfig `json:"config"`
	}
	var raw struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return out.Config, err
	}
	if raw.Config == nil {
		return out.Config, fmt.Errorf("no config")
	}
	var defaults map[string]any
	if err := json.Unmarshal([]byte(stageDefaults), &defaults); err != nil {
		return out.Config, err
	}
	for k, v := range defaults {
		// A method block is filled in only where the stage has one.
		if (k == "ppo" || k == "grpo" || k == "kto") && raw.Config[k] == nil {
			continue
		}
		raw.Config[k] = fillAbsent(raw.Config[k], v)
	}
	full, err := json.Marshal(raw)
	if err != nil {
		return out.Config, err
	}
	err = json.Unmarshal(full, &out)
	return out.Config, err
}

// fillAbsent returns have with want's keys added where have lacks them,
// recursively through objects.
func fillAbsent(have, want any) any {
	w, ok := want.(map[string]any)
	if !ok {
		if have == nil {
			return want
		}
		return have
	}
	h, ok := have.(map[string]any)
	if !ok {
		if have != nil {
			return have
		}
		h = map[string]any{}
	}
	for k, v := range w {
		h[k] = fillAbsent(h[k], v)
	}
	return h
}
