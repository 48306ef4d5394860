package main

import (
	"strings"
	"testing"
)

func TestSummaryListsSkipsWithReasons(t *testing.T) {
	events := `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestB/sub","Output":"=== RUN   TestB/sub\n"}
{"Action":"output","Package":"p","Test":"TestB/sub","Output":"    slurm_test.go:157: needs root: mknod\n"}
{"Action":"output","Package":"p","Test":"TestB/sub","Output":"--- SKIP: TestB/sub (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestB/sub"}
{"Action":"pass","Package":"p","Test":"TestB"}
{"Action":"skip","Package":"p","Test":"TestC"}
{"Action":"pass","Package":"p","Elapsed":1.5}
`
	var out strings.Builder
	if !summarize(strings.NewReader(events), &out) {
		t.Fatalf("a run with passes and skips only must pass:\n%s", out.String())
	}
	for _, want := range []string{
		"p TestB/sub: needs root: mknod\n",
		"p TestC: (no reason given)\n",
		"2 passed, 0 failed, 1 skipped\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
}

func TestSummaryFailsARunWithNoTestsOrAFailure(t *testing.T) {
	var out strings.Builder
	if summarize(strings.NewReader(`{"Action":"skip","Package":"p"}`+"\n"), &out) {
		t.Error("a run that passed no test must fail")
	}
	fail := `{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestB","Output":"boom\n"}
{"Action":"fail","Package":"p","Test":"TestB"}
`
	out.Reset()
	if summarize(strings.NewReader(fail), &out) || !strings.Contains(out.String(), "--- FAIL: p TestB\nboom\n") {
		t.Errorf("a failed test must fail the run and show its output:\n%s", out.String())
	}
}

func TestSummaryListsTheSlowestTestsFirst(t *testing.T) {
	var events strings.Builder
	for i, secs := range []string{"3.5", "120.25", "0.1", "44"} {
		events.WriteString(`{"Action":"pass","Package":"p","Test":"Test` + string(rune('A'+i)) + `","Elapsed":` + secs + "}\n")
	}
	events.WriteString(`{"Action":"pass","Package":"p","Test":"TestB/sub","Elapsed":999}` + "\n")
	var out strings.Builder
	summarize(strings.NewReader(events.String()), &out)
	want := "slowest:\n    120.2s  p TestB\n     44.0s  p TestD\n      3.5s  p TestA\n      0.1s  p TestC\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("want the top-level tests slowest first, subtests left out:\n%s\nin:\n%s", want, out.String())
	}
}
