package display

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/build"
	"github.com/ftc-dev/ftc/runtime/exec"
	"github.com/ftc-dev/ftc/runtime/publish"
	"github.com/ftc-dev/ftc/runtime/resolve"
	"github.com/ftc-dev/ftc/runtime/runner"
)

// RunReport prints a run as it goes (runner.Reporter): the stages'
// progress on Stdout (Progress, in place when TTY), warnings and what
// went wrong on Stderr.
type RunReport struct {
	Stdout, Stderr io.Writer
	TTY            bool
	Width          int // the terminal's, for TTY; 0: none
	printer        *Progress
	stopTicker     func()
}

func (r *RunReport) Warning(msg string) { fmt.Fprintf(r.Stderr, "ftc: warning: %s\n", msg) }

func (r *RunReport) Rescaled(lines []string) {
	for _, l := range lines {
		fmt.Fprintln(r.Stdout, l)
	}
}

func (r *RunReport) Pulled(ref string, n int, moved string, err error) {
	if err != nil {
		fmt.Fprintf(r.Stderr, "ftc: remote cache %s: %v (continuing without it)\n", ref, err)
	} else if n > 0 {
		fmt.Fprintf(r.Stdout, "remote: pulled %d stage(s) from %s: %s\n", n, ref, moved)
	}
}

func (r *RunReport) Starting(p *plan.Plan, dryRun bool) {
	r.printer = NewProgress(r.Stdout, len(p.Stages))
	r.printer.TTY, r.printer.Width = r.TTY, r.Width
	r.stopTicker = func() {}
	if dryRun {
		return
	}
	r.stopTicker = r.printer.Ticking()
}

func (r *RunReport) Event(e exec.Event) { r.printer.Event(e) }

func (r *RunReport) Finished(res *runner.Result) {
	if r.stopTicker != nil {
		r.stopTicker()
	}
	sum := res.Summary
	if sum == nil {
		return
	}
	cached, ran, failed := sum.Counts()
	fmt.Fprintf(r.Stdout, "%s: %d stage(s): %d cached, %d ran, %d failed in %s\n", res.Plan.Recipe, len(sum.Stages), cached, ran, failed, res.Elapsed.Round(time.Millisecond))
	switch {
	case res.DryRun:
		fmt.Fprintln(r.Stdout, "dry run: nothing ran, nothing recorded")
	case res.ReportErr != nil:
		fmt.Fprintf(r.Stderr, "ftc: writing the report: %v\n", res.ReportErr)
	default:
		fmt.Fprintf(r.Stdout, "report: %s\n", res.Report)
	}
}

func (r *RunReport) Pushed(ref string, n int, moved string, err error) {
	if err != nil {
		fmt.Fprintf(r.Stderr, "ftc: pushing to remote cache %s: %v\n", ref, err)
	} else {
		fmt.Fprintf(r.Stdout, "remote: pushed %d stage(s) to %s: %s\n", n, ref, moved)
	}
}

// BuildReport says on W what build.Recipe did (build.Observer).
type BuildReport struct{ W io.Writer }

func (p BuildReport) Locked(path string, lr *build.LockResult) {
	fmt.Fprintf(p.W, "locked %s in %s\n", DescribeLock(lr), path)
}

func (p BuildReport) Built(b *build.Built) {
	env := "built"
	if b.EnvironmentCached {
		env = "cached"
	}
	fmt.Fprintf(p.W, "image %s (environment %s %s, %d ftc layer(s)) in %s\n", b.Digest, env, b.EnvironmentKey.Short(), len(b.Spec.Layers), b.Took.Round(time.Millisecond))
}

func (p BuildReport) Published(where string, pushed bool) {
	if pushed {
		fmt.Fprintf(p.W, "pushed %s\n", where)
	} else {
		fmt.Fprintf(p.W, "wrote %s\n", where)
	}
}

// DescribeLock says what a lock step pinned: the base, the Python
// packages, or nothing new.
func DescribeLock(lr *build.LockResult) string {
	var parts []string
	if lr.BasePinned {
		parts = append(parts, "base "+lr.Base)
	}
	if lr.Resolved {
		parts = append(parts, fmt.Sprintf("%d Python package(s)", len(lr.Packages)))
	}
	if len(parts) == 0 {
		return "nothing new"
	}
	return strings.Join(parts, " and ")
}

// ModelsLocked says what ftc lock added to the lock at path: the Hub
// pins and the architectures read from the models' config.json, sorted.
func ModelsLocked(w io.Writer, path string, res *resolve.ModelsLocked) {
	var lines []string
	for ref, c := range res.Added {
		lines = append(lines, fmt.Sprintf("  %s %s", ref, c))
	}
	for at, a := range res.Archs {
		f := a.Facts
		moe := ""
		if f.Experts > 0 {
			moe = fmt.Sprintf(", %d experts (%d per token, %s active)", f.Experts, f.ExpertsPerToken, HumanCount(f.ActiveParams()))
		}
		lines = append(lines, fmt.Sprintf("  arch %s: %s, %d layers, %s parameters%s", at, f.ModelType, f.Layers, HumanCount(f.Params()), moe))
	}
	sort.Strings(lines)
	fmt.Fprintf(w, "%s: %d Hub pin(s), %d architecture(s) added\n", path, len(res.Added), len(res.Archs))
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// Compared prints ftc reproduce's table: what | published | here | match.
func Compared(w io.Writer, rows []publish.Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "what\tpublished\there\tmatch")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.What, r.Published, r.Here, r.Match)
	}
	tw.Flush()
}
