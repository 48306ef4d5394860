package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/display"
	"github.com/ftc-dev/ftc/runtime/runner"
)

func newStatus(stdout, stderr io.Writer) *cobra.Command {
	var cache cacheFlag
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the last run: stages, what was cached, what ran, metrics",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			dir, events, err := runner.LatestRecord(cache.dirs().Records)
			if errors.Is(err, runner.ErrNoRecord) {
				fmt.Fprintln(stderr, "ftc: no run recorded yet in", cache.dirs().Records)
				return errFailed
			} else if err != nil {
				return err
			}
			// Where each stage's output is: its tree in the cache,
			// when the cache holds an entry for the stage's key.
			var where func(key string) string
			if store, err := cas.Open(cache.dirs().Store); err == nil {
				where = func(key string) string { return runner.OutputTree(store, key) }
			}
			display.Status(stdout, dir, events, where)
			return nil
		},
	}
	cache.register(cmd)
	return cmd
}
