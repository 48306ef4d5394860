package display

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ftc-dev/ftc/runtime/envcheck"
)

// EnvTable prints what the environment check found against what the
// recipe wants, a row per package, Python, CUDA and GPUs.
func EnvTable(w io.Writer, rep *envcheck.Report) {
	gpus := "no GPU"
	if rep.Want.GPUs > 0 {
		gpus = fmt.Sprintf("%d GPU(s)", rep.Want.GPUs)
	}
	fmt.Fprintf(w, "environment: %s (Python %s, %s) against profile %s, %s\n", rep.Python, rep.Probe.Python, rep.Probe.Executable, rep.Want.Profile, gpus)
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  \tWANT\tFOUND\t")
	for _, row := range rep.Rows {
		st := ""
		switch row.Status {
		case envcheck.Differs:
			st = "DIFFERS"
		case envcheck.Short:
			st = "TOO SMALL"
		case envcheck.Fatal:
			st = "CANNOT RUN"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", row.What, row.Want, row.Found, st)
	}
	tw.Flush()
	for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}

// EnvProblems says why the environment is refused and what fixes it.
// fix is the line that makes the profile's environment; allowFlag, for a
// run, the flag that goes on regardless ("" for a check alone).
func EnvProblems(w io.Writer, rep *envcheck.Report, allowFlag, fix string) {
	for _, row := range rep.Fatal() {
		switch row.What {
		case "GPUs":
			fmt.Fprintf(w, "ftc: the run needs %s GPU(s), %s: change --gpus or hardware.gpusPerNode, or CUDA_VISIBLE_DEVICES\n", row.Want, row.Found)
		default:
			fmt.Fprintf(w, "ftc: the run needs %d GPU(s), but %s can use none (CUDA %s): install torch %s built for CUDA %s, run where a GPU is visible, or train on the CPU with ftc run --cpu (keyed as a CPU run)\n",
				rep.Want.GPUs, rep.Python, row.Found, rep.Want.Packages["torch"], rep.Want.CUDA)
		}
	}
	refused := rep.Refused()
	if len(refused) == 0 {
		return
	}
	var what []string
	for _, row := range refused {
		what = append(what, row.What)
	}
	fmt.Fprintf(w, "ftc: %s is not the environment of profile %s (%s)\n", rep.Python, rep.Want.Profile, strings.Join(what, ", "))
	for _, row := range refused {
		if row.Package || row.What == "python" {
			fmt.Fprintf(w, "  fix: %s\n", fix)
			break
		}
	}
	for _, row := range refused {
		switch {
		case row.What == "python":
			fmt.Fprintf(w, "  fix: use a Python %s interpreter (--python python%s)\n", row.Want, row.Want)
		case row.Status == envcheck.Short:
			fmt.Fprintf(w, "  fix: set hardware.gpu to the GPU this machine has, so the memory estimate is made for it\n")
		}
	}
	if allowFlag != "" && len(rep.Fatal()) == 0 {
		fmt.Fprintf(w, "  or go on with --%s: outputs are then keyed by the environment that ran, never the profile's\n", allowFlag)
	}
}
