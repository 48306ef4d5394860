// Command testsummary reads `go test -json` events on standard input and
// prints a short report: each package's result, every skipped test or
// subtest with its reason, the output of every failed test, and a closing
// "N passed, N failed, N skipped" line (top-level tests), so a run that
// executed no tests is visible at a glance. It exits 1 when anything
// failed or no test ran.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	if !summarize(os.Stdin, os.Stdout) {
		os.Exit(1)
	}
}

// summarize writes the report of the events read from r to w and says
// whether the run passed: something ran and nothing failed.
func summarize(r io.Reader, w io.Writer) bool {
	var passed, failed, skipped int
	output := map[string]*strings.Builder{} // package/test → output
	var failedTests, skippedTests []string
	var timed []timing // top-level tests that passed or failed
	pkgResult := map[string]string{}
	var pkgs []string

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// Build errors and other non-JSON lines go straight through.
			fmt.Fprintln(w, string(line))
			continue
		}
		id := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			b := output[id]
			if b == nil {
				b = &strings.Builder{}
				output[id] = b
			}
			b.WriteString(e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				if _, seen := pkgResult[e.Package]; !seen {
					pkgs = append(pkgs, e.Package)
				}
				pkgResult[e.Package] = fmt.Sprintf("%s (%.1fs)", e.Action, e.Elapsed)
				if e.Action == "fail" {
					failedTests = append(failedTests, id)
				}
				continue
			}
			if e.Action == "skip" {
				// Subtests too: a skipped subtest is a feature not
				// tested, as much as a skipped test is.
				skippedTests = append(skippedTests, id)
			}
			if strings.Contains(e.Test, "/") {
				continue // count top-level tests; subtests show in their output
			}
			if e.Action != "skip" {
				timed = append(timed, timing{id, e.Elapsed})
			}
			switch e.Action {
			case "pass":
				passed++
			case "fail":
				failed++
				failedTests = append(failedTests, id)
			case "skip":
				skipped++
			}
		}
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		fmt.Fprintf(w, "%-60s %s\n", p, pkgResult[p])
	}
	if len(timed) > 0 {
		// Where the run's time goes: CI has a wall-clock budget, and the
		// next test to trim is the one at the top of this list.
		sort.SliceStable(timed, func(i, j int) bool { return timed[i].seconds > timed[j].seconds })
		fmt.Fprintf(w, "\nslowest:\n")
		for _, tm := range timed[:min(len(timed), slowest)] {
			fmt.Fprintf(w, "  %7.1fs  %s\n", tm.seconds, tm.id)
		}
	}
	if len(skippedTests) > 0 {
		fmt.Fprintf(w, "\nskipped:\n")
		for _, id := range skippedTests {
			fmt.Fprintf(w, "  %s: %s\n", id, skipReason(output[id]))
		}
	}
	for _, id := range failedTests {
		fmt.Fprintf(w, "\n--- FAIL: %s\n", id)
		if b := output[id]; b != nil {
			fmt.Fprint(w, b.String())
		}
	}
	fmt.Fprintf(w, "\n%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	return failed == 0 && passed > 0 && len(failedTests) == 0
}

// slowest is how many of the slowest tests the report lists.
const slowest = 12

type timing struct {
	id      string
	seconds float64
}

// skipReason is what a skipped test printed, without go test's own
// "=== RUN" and "--- SKIP" lines and the file:line prefix t.Skip adds.
func skipReason(b *strings.Builder) string {
	if b == nil {
		return "(no reason given)"
	}
	var lines []string
	for _, l := range strings.Split(b.String(), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		if file, rest, ok := strings.Cut(l, ": "); ok && strings.HasSuffix(strings.SplitN(file, ":", 2)[0], ".go") {
			l = rest
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return "(no reason given)"
	}
	return strings.Join(lines, " / ")
}
