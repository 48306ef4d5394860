package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/runtime/runner"
)

func newVet(stdout, stderr io.Writer) *cobra.Command {
	var flags recipeFlags
	var quiet bool
	cmd := &cobra.Command{
		Use:   "vet FILE...",
		Short: "Validate recipes: every problem at once, each at file:line:col",
		Long: `vet loads each recipe with ftc's schema and presets, checks every field and
the rules that span fields (batch arithmetic, GRPO generations, data formats
per method, stage references, adapter and strategy combinations, reward
function files), reads the first 1,000 rows (or 4 MiB) of each local
dataset to check them against the declared format, checks each data file
against its sha256 pin (remembered by file identity in the cache's
hashes/), and reports all problems at once. It needs no GPU and no
network. Exit status: 0 valid, 1 invalid, 2 usage error.`,
		Args: argsError(1),
		RunE: func(_ *cobra.Command, files []string) error {
			overrides, vo, err := flags.options()
			if err != nil {
				return err
			}
			vo.Digest = dataDigests(cacheFlag{}, stderr)
			bad := false
			for _, f := range files {
				r, diags, err := runner.Vet(f, overrides, vo)
				if r != nil {
					// What this environment lacks for the run: a warning,
					// since the recipe may run elsewhere.
					diags = append(diags, runner.TrackingWarnings(r)...)
				}
				printDiags(stderr, diags)
				if err != nil {
					if len(diags) == 0 {
						fmt.Fprintf(stderr, "%s: %v\n", f, err)
					}
					bad = true
					continue
				}
				if !quiet {
					fmt.Fprintf(stdout, "%s: ok (recipe %s, %d stage(s))\n", f, r.Name, len(r.Stages))
				}
			}
			if bad {
				return errFailed
			}
			return nil
		},
	}
	flags.register(cmd)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing for valid recipes")
	return cmd
}
