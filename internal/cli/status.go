package cli

import (
	"fmt"
	"github.com/ftc-dev/ftc/compiler/launch/shq"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/exec"
)

func newStatus(stdout, stderr io.Writer) *cobra.Command {
	var cache cacheFlag
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the last run: stages, what was cached, what ran, metrics",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			root := cache.records()
			id, err := os.ReadFile(filepath.Join(root, "latest"))
			if err != nil {
				fmt.Fprintln(stderr, "ftc: no run recorded yet in", root)
				return errFailed
			}
			dir := filepath.Join(root, strings.TrimSpace(string(id)))
			events, err := exec.ReadEvents(filepath.Join(dir, "events.jsonl"))
			if err != nil {
				return err
			}
			// Where each stage's output is: its tree in the cache,
			// when the cache holds an entry for the stage's key.
			var where func(key string) string
			if store, err := cas.Open(cache.store()); err == nil {
				where = func(key string) string {
					if a, err := store.GetAction(key); err == nil && a.Outputs["output"] != "" {
						return string(a.Outputs["output"])
					}
					return ""
				}
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
	type st struct {
		status, key string
		seconds     float64
		metrics     map[string]any
		message     string
		order       int
	}
	stages := map[string]*st{}
	get := func(name string) *st {
		if stages[name] == nil {
			stages[name] = &st{status: "pending", order: len(stages)}
		}
		return stages[name]
	}
	var recipe, end, environment string
	var flags []string
	for _, e := range events {
		switch e.Type {
		case exec.EventRunStart:
			flags = e.Flags
			// Stages are listed in plan order, not in the order
			// concurrent stages reported.
			for _, n := range e.Stages {
				get(n)
			}
			recipe = e.Message
			fmt.Fprintf(w, "run of %s at %s\n", recipe, e.Time.Local().Format("2006-01-02 15:04:05"))
		case exec.EventCached:
			s := get(e.Stage)
			s.status, s.key = "cached", e.Key
		case exec.EventWouldRun:
			s := get(e.Stage)
			s.status, s.key = "would run", e.Key
		case exec.EventStart:
			s := get(e.Stage)
			s.status, s.key = "running", e.Key
		case exec.EventMetric:
			s := get(e.Stage)
			if s.metrics == nil {
				s.metrics = map[string]any{}
			}
			for k, v := range e.Metrics {
				s.metrics[k] = v
			}
		case exec.EventDone:
			s := get(e.Stage)
			s.status, s.seconds = "ran", e.Seconds
		case exec.EventFailed:
			s := get(e.Stage)
			s.status, s.message = "failed", e.Message
		case exec.EventCancelled:
			s := get(e.Stage)
			s.status = "stopped"
		case exec.EventPreempted:
			s := get(e.Stage)
			s.status, s.message = "preempted", e.Message
		case exec.EventSkipped:
			s := get(e.Stage)
			s.status, s.message = "skipped", e.Message
		case exec.EventRunEnd:
			end = e.Message
		case exec.EventEnvironment:
			environment = e.Message // written before run-start
		}
	}
	if environment != "" {
		fmt.Fprintf(w, "environment: %s\n", environment)
	}
	var names []string
	for n := range stages {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return stages[names[i]].order < stages[names[j]].order })
	for _, n := range names {
		s := stages[n]
		line := fmt.Sprintf("  %-24s %-9s %s", n, s.status, short(s.key))
		if s.seconds > 0 {
			line += fmt.Sprintf("  %.1fs", s.seconds)
		}
		if len(s.metrics) > 0 {
			line += "  " + formatMetrics(s.metrics)
		}
		if s.message != "" {
			line += "\n      " + s.message
		}
		if where != nil && s.key != "" && (s.status == "cached" || s.status == "ran") {
			if out := where(s.key); out != "" {
				line += "\n      output: cache tree " + out
				if stage, ok := strings.CutSuffix(n, ".export"); ok {
					line += "\n      copy it out: " + shq.Join(append(append([]string{"ftc", "export"}, flags...), "RECIPE", stage, "DIR"))
				}
			}
		}
		fmt.Fprintln(w, line)
	}
	if end == "" {
		end = "did not finish (interrupted, or still running)"
	}
	fmt.Fprintf(w, "result: %s\nrecord: %s\n", end, dir)
}
