package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/compiler/plan"
)

// newDebug holds commands for ftc's own tests, hidden from help: the
// library tests write stage.json files by hand (on machines without a
// recipe or a Hub) and take the trainer arguments from the same Go code
// the planner uses, so what they check is what a plan says.
func newDebug(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "debug", Short: "Commands for ftc's own tests", Hidden: true}
	var libs plan.Libraries
	var layer string
	ta := &cobra.Command{
		Use:   "trainer-args DIR",
		Short: "Write the plan's trainer_args.json (and ds_config.json) for DIR/stage.json",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			dir := args[0]
			b, err := os.ReadFile(filepath.Join(dir, "stage.json"))
			if err != nil {
				return err
			}
			sf, err := handWrittenStage(b)
			if err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(dir, "stage.json"), err)
			}
			files := map[string][]byte{}
			if files[plan.TrainerArgsFile], err = plan.TrainerArgs(sf.Config, libs, layer); err != nil {
				return err
			}
			if d := sf.Config.Distributed; d.Strategy.DeepSpeed() {
				if files[launch.DeepSpeedFile], err = launch.DeepSpeedConfig(d.Strategy, d.Offload); err != nil {
					return err
				}
			}
			for name, data := range files {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
					return err
				}
				fmt.Fprintln(stdout, filepath.Join(dir, name))
			}
			return nil
		},
	}
	ta.Flags().StringVar(&libs.Transformers, "transformers", "", "the installed transformers version")
	ta.Flags().StringVar(&libs.TRL, "trl", "", "the installed trl version")
	ta.Flags().StringVar(&layer, "decoder-layer", "", "the model's decoder layer class (fsdp)")
	cmd.AddCommand(ta)
	return cmd
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
           "generation": {"engine": "transformers", "gpus": 1, "port": 8000, "groupPort": 51216}}
}`

// handWrittenStage decodes a stage.json's config with stageDefaults
// filling what it leaves out.
func handWrittenStage(b []byte) (struct {
	Config plan.StageConfig `json:"config"`
}, error) {
	var out struct {
		Config plan.StageConfig `json:"config"`
	}
	var raw struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return out, err
	}
	if raw.Config == nil {
		return out, fmt.Errorf("no config")
	}
	var defaults map[string]any
	if err := json.Unmarshal([]byte(stageDefaults), &defaults); err != nil {
		return out, err
	}
	for k, v := range defaults {
		// A method block is filled in only where the stage has one.
		if (k == "ppo" || k == "grpo") && raw.Config[k] == nil {
			continue
		}
		raw.Config[k] = fillAbsent(raw.Config[k], v)
	}
	full, err := json.Marshal(raw)
	if err != nil {
		return out, err
	}
	err = json.Unmarshal(full, &out)
	return out, err
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
