package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ftc-dev/ftc/compiler/launch/shq"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/exec"
	"github.com/ftc-dev/ftc/runtime/runner"
)

func newStatus(stdout, stderr io.Writer) *cobra.Command {
	var cache cacheFlag
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the last run: stages, what was cached, what ran, metrics",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			dir, events, err := runner.LatestRecord(cache.records())
			if errors.Is(err, runner.ErrNoRecord) {
				fmt.Fprintln(stderr, "ftc: no run recorded yet in", cache.records())
				return errFailed
			} else if err != nil {
				return err
			}
			// Where each stage's output is: its tree in the cache,
			// when the cache holds an entry for the stage's key.
			var where func(key string) string
			if store, err := cas.Open(cache.store()); err == nil {
				where = func(key string) string { return runner.OutputTree(store, key) }
			}
			printStatus(stdout, dir, events, where)
			return nil
		},
	}
	cache.register(cmd)
	return cmd
}

// printStatus prints the run of events. where, when not nil, says where
// the output of a stage's key is in the cache ("" when it is not).
func printStatus(w io.Writer, dir string, events []exec.Event, where func(key string) string) {
	rec := exec.Replay(events)
	if rec.HasStart {
		fmt.Fprintf(w, "run of %s at %s\n", rec.Recipe, rec.Started.Local().Format("2006-01-02 15:04:05"))
	}
	if rec.Environment != "" {
		fmt.Fprintf(w, "environment: %s\n", rec.Environment)
	}
	for _, s := range rec.Stages {
		line := fmt.Sprintf("  %-24s %-9s %s", s.Name, s.State, short(s.Key))
		if s.Seconds > 0 {
			line += fmt.Sprintf("  %.1fs", s.Seconds)
		}
		if len(s.Metrics) > 0 {
			line += "  " + formatMetrics(s.Metrics)
		}
		if s.Message != "" {
			line += "\n      " + s.Message
		}
		if where != nil && s.Key != "" && (s.State == "cached" || s.State == "ran") {
			if out := where(s.Key); out != "" {
				line += "\n      output: cache tree " + out
				if stage, ok := strings.CutSuffix(s.Name, ".export"); ok {
					line += "\n      copy it out: " + shq.Join(append(append([]string{"ftc", "export"}, rec.Flags...), "RECIPE", stage, "DIR"))
				}
			}
		}
		fmt.Fprintln(w, line)
	}
	end := rec.End
	if end == "" {
		end = "did not finish (interrupted, or still running)"
	}
	fmt.Fprintf(w, "result: %s\nrecord: %s\n", end, dir)
}
