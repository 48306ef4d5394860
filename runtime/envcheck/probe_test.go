package envcheck

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/internal/pyenvtest"
)

// fakeInterpreter writes a shell script that stands in for Python: it
// prints body (a fake, not a probe of anything).
func fakeInterpreter(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-python")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProbeReadsTheAnswer(t *testing.T) {
	py := fakeInterpreter(t, `echo "site noise"; echo 'FTC-PROBE {"python":"3.11.7","packages":{"torch":"2.5.0"},"torch":{"version":"2.5.0","cuda":"12.4","available":true,"gpus":[{"name":"H100","memory":85899345920}]}}'`)
	p, err := RunProbe(context.Background(), py, []string{"torch"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if p.Python != "3.11.7" || p.Packages["torch"] != "2.5.0" || p.Torch == nil || len(p.Torch.GPUs) != 1 || p.Torch.GPUs[0].MemoryBytes != 80<<30 {
		t.Fatalf("%+v", p)
	}
}

func TestProbeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, python, want string
	}{
		{"missing interpreter", "no-such-python-3.11", `Python interpreter "no-such-python-3.11": not found on PATH; give an interpreter with the profile's packages with --python`},
		{"missing path", "/nonexistent/python", `Python interpreter "/nonexistent/python": not found;`},
		{"crashes", fakeInterpreter(t, "echo 'Traceback: boom' >&2; exit 1"), "the probe failed (exit status 1)\n    | Traceback: boom"},
		{"no answer", fakeInterpreter(t, "echo hello"), "the probe printed no answer"},
		{"bad answer", fakeInterpreter(t, "echo 'FTC-PROBE {'"), "reading the probe's answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RunProbe(context.Background(), tc.python, []string{"torch"}, false)
			var pe *ProbeError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestProbeTimesOut(t *testing.T) {
	defer func(d time.Duration) { ProbeTimeout = d }(ProbeTimeout)
	ProbeTimeout = 200 * time.Millisecond
	start := time.Now()
	_, err := RunProbe(context.Background(), fakeInterpreter(t, "exec sleep 30"), nil, true)
	if err == nil || !strings.Contains(err.Error(), "no answer within") {
		t.Fatal(err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("the probe was not stopped: %v", time.Since(start))
	}
}

// TestProbeRealPython runs the real probe with the pinned-2025q1 test
// environment's interpreter (scripts/pyvenv.sh): torch 2.5.0 built for
// CUDA, no GPU here.
func TestProbeRealPython(t *testing.T) {
	py := pyenvtest.Python(t, "pinned-2025q1")
	out, err := exec.Command(py, "-c", "import sys; from importlib import metadata; print('%d.%d.%d' % sys.version_info[:3], metadata.version('torch'))").Output()
	if err != nil {
		t.Fatalf("%s: %v", py, err)
	}
	fields := strings.Fields(string(out))
	t.Setenv("CUDA_VISIBLE_DEVICES", "")
	p, err := RunProbe(context.Background(), py, []string{"torch", "transformers"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if p.Python != fields[0] || p.Packages["torch"] != fields[1] || p.Packages["transformers"] != "4.48.2" {
		t.Fatalf("probe %+v, python says %q", p, fields)
	}
	if p.Torch == nil || p.Torch.Error != "" || p.Torch.Available || len(p.Torch.GPUs) != 0 || !strings.HasPrefix(p.Torch.Version, "2.5.0") {
		t.Fatalf("torch: %+v", p.Torch)
	}
	if p.CUDAVisibleDevices == nil || *p.CUDAVisibleDevices != "" {
		t.Fatalf("CUDA_VISIBLE_DEVICES not seen: %v", p.CUDAVisibleDevices)
	}
	// The profile's own packages: nothing differs, and with no GPU the
	// one thing that cannot run is CUDA.
	r := Check(py, Want{Profile: "pinned-2025q1", Python: "3.11", Packages: map[string]string{"torch": "2.5.0", "transformers": "4.48.2"}, GPUs: 1}, p)
	if r.Differs() || len(r.Fatal()) != 1 || r.Fatal()[0].What != "CUDA" {
		t.Fatalf("report %+v", r.Rows)
	}
	// Another profile's: transformers differs.
	r = Check(py, Want{Profile: "current-2026", Python: "3.11", Packages: map[string]string{"torch": "2.5.0", "transformers": "5.17.0"}}, p)
	if !r.Differs() || len(r.Fatal()) != 0 {
		t.Fatalf("report %+v", r.Rows)
	}
}
