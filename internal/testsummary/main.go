// Command testsummary reads `go test -json` events on standard input and
// prints a short report: each package's result, the output of every failed
// test, and a closing "N passed, N failed, N skipped" line, so a run that
// executed no tests is visible at a glance. It exits 1 when anything
// failed or no test ran.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
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
	var passed, failed, skipped int
	output := map[string]*strings.Builder{} // package/test → output
	var failedTests []string
	pkgResult := map[string]string{}
	var pkgs []string

	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// Build errors and other non-JSON lines go straight through.
			fmt.Println(string(line))
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
			if strings.Contains(e.Test, "/") {
				continue // count top-level tests; subtests show in their output
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
		fmt.Printf("%-60s %s\n", p, pkgResult[p])
	}
	for _, id := range failedTests {
		fmt.Printf("\n--- FAIL: %s\n", id)
		if b := output[id]; b != nil {
			fmt.Print(b.String())
		}
	}
	fmt.Printf("\n%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || passed == 0 || len(failedTests) > 0 {
		os.Exit(1)
	}
}
