package display

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/compiler/arch"
	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/build"
	"github.com/ftc-dev/ftc/runtime/exec"
	"github.com/ftc-dev/ftc/runtime/publish"
	"github.com/ftc-dev/ftc/runtime/resolve"
	"github.com/ftc-dev/ftc/runtime/runner"
)

// TestRunReport: a dry run's summary, the remote cache's lines, warnings
// on stderr; a run that could not start says nothing at the end.
func TestRunReport(t *testing.T) {
	var out, errs bytes.Buffer
	r := &RunReport{Stdout: &out, Stderr: &errs}
	r.Warning("unpinned")
	r.Pulled("reg/cache", 0, "", nil) // nothing pulled: nothing said
	r.Pulled("reg/cache", 0, "", errors.New("unreachable"))
	p := &plan.Plan{Recipe: "demo", Stages: []*plan.Stage{{Name: "a"}}}
	r.Starting(p, true)
	r.Event(exec.Event{Type: exec.EventWouldRun, Stage: "a", Key: "sha256:" + strings.Repeat("1", 64)})
	r.Finished(&runner.Result{Plan: p, DryRun: true, Elapsed: 1500 * time.Microsecond,
		Summary: &exec.Summary{Stages: []*exec.StageResult{{Status: exec.StatusCached}}}})
	r.Pushed("reg/cache", 2, "1.0 KiB in 0.1s", nil)
	wantOut := "[1/1] a                        would run  111111111111\n" +
		"demo: 1 stage(s): 1 cached, 0 ran, 0 failed in 2ms\n" +
		"dry run: nothing ran, nothing recorded\n" +
		"remote: pushed 2 stage(s) to reg/cache: 1.0 KiB in 0.1s\n"
	if out.String() != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), wantOut)
	}
	wantErr := "ftc: warning: unpinned\nftc: remote cache reg/cache: unreachable (continuing without it)\n"
	if errs.String() != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", errs.String(), wantErr)
	}
	out.Reset()
	(&RunReport{Stdout: &out, Stderr: &errs}).Finished(&runner.Result{})
	if out.Len() != 0 {
		t.Errorf("a run that did not start: %q", out.String())
	}
}

func TestBuildReport(t *testing.T) {
	var out bytes.Buffer
	b := BuildReport{W: &out}
	b.Locked("ftc.lock", &build.LockResult{})
	b.Locked("ftc.lock", &build.LockResult{BasePinned: true, Base: "img@sha256:1", Resolved: true, Packages: make([]image.Package, 3)})
	b.Published("oci:ftc-image", false)
	b.Published("reg/x@sha256:2", true)
	want := "locked nothing new in ftc.lock\n" +
		"locked base img@sha256:1 and 3 Python package(s) in ftc.lock\n" +
		"wrote oci:ftc-image\npushed reg/x@sha256:2\n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestModelsLocked(t *testing.T) {
	var out bytes.Buffer
	res := &resolve.ModelsLocked{
		Result: &resolve.Result{Archs: map[resolve.ModelAt]resolve.Arch{
			{Repo: "org/m", Commit: "c1"}: {Facts: arch.Facts{ModelType: "qwen2", Layers: 24}},
		}},
		Added: map[resolve.Ref]string{{Kind: "model", Repo: "org/m", Revision: "main"}: "c1"},
	}
	ModelsLocked(&out, "ftc.lock", res)
	got := out.String()
	if !strings.HasPrefix(got, "ftc.lock: 1 Hub pin(s), 1 architecture(s) added\n  arch org/m@c1: qwen2, 24 layers, ") ||
		!strings.HasSuffix(got, "\n  model org/m@main c1\n") {
		t.Errorf("got:\n%s", got)
	}
}

func TestCompared(t *testing.T) {
	var out bytes.Buffer
	Compared(&out, []publish.Row{{What: "key sft", Published: "abc", Here: "abc", Match: "yes"}, {What: "metric loss", Published: "1", Here: "2", Match: "NO"}})
	want := "what         published  here  match\nkey sft      abc        abc   yes\nmetric loss  1          2     NO\n"
	if out.String() != want {
		t.Errorf("got:\n%q\nwant:\n%q", out.String(), want)
	}
}
