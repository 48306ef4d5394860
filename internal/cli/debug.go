package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

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
			files, err := plan.HandWrittenFiles(b, libs, layer)
			if err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(dir, "stage.json"), err)
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
