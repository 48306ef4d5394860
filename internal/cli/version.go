package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/schema"
)

func newVersion(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print ftc's version and the recipe apiVersion it reads",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintf(stdout, "ftc %s (recipes %s)\n", Version, schema.Version)
			return nil
		},
	}
}
