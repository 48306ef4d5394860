package display

import (
	"fmt"
	"io"
	"strings"

	"github.com/ftc-dev/ftc/compiler/launch/shq"
	"github.com/ftc-dev/ftc/runtime/exec"
)

// Status prints the run of events. where, when not nil, says where
// the output of a stage's key is in the cache ("" when it is not).
func Status(w io.Writer, dir string, events []exec.Event, where func(key string) string) {
	rec := exec.Replay(events)
	if rec.HasStart {
		fmt.Fprintf(w, "run of %s at %s\n", rec.Recipe, rec.Started.Local().Format("2006-01-02 15:04:05"))
	}
	if rec.Environment != "" {
		fmt.Fprintf(w, "environment: %s\n", rec.Environment)
	}
	for _, s := range rec.Stages {
		line := fmt.Sprintf("  %-24s %-9s %s", s.Name, s.State, Short(s.Key))
		if s.Seconds > 0 {
			line += fmt.Sprintf("  %.1fs", s.Seconds)
		}
		if len(s.Metrics) > 0 {
			line += "  " + FormatMetrics(s.Metrics)
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
