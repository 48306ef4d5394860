package envcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"
	"time"
)

// Probe is what the interpreter reported about itself and the machine.
type Probe struct {
	// Python is the interpreter's version (3.11.7).
	Python     string `json:"python"`
	Executable string `json:"executable"`
	// Packages maps every package asked about to its installed version,
	// "" when it is not installed.
	Packages map[string]string `json:"packages"`
	// CUDAVisibleDevices is the variable as the interpreter saw it
	// (nil: unset).
	CUDAVisibleDevices *string `json:"cudaVisibleDevices"`
	// Torch is set when torch was imported (the run needs GPUs and torch
	// is installed).
	Torch *Torch `json:"torch,omitempty"`
}

// Torch is what an imported torch reports.
type Torch struct {
	Version string `json:"version"`
	// CUDA is the CUDA version torch was built with ("" for a CPU build).
	CUDA      string `json:"cuda"`
	Available bool   `json:"available"`
	GPUs      []GPU  `json:"gpus"`
	// Error is set when importing torch or asking it failed.
	Error string `json:"error,omitempty"`
}

// GPU is one visible device.
type GPU struct {
	Name        string `json:"name"`
	MemoryBytes int64  `json:"memory"`
}

// probeScript prints the probe as JSON. Argument 1 is "gpu" or "nogpu",
// the rest are package names. Versions come from importlib.metadata: no
// package is imported, except torch when the run needs GPUs (only torch
// knows whether CUDA works; the import takes seconds).
const probeScript = `
import json, os, sys
from importlib import metadata
out = {"python": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable,
       "packages": {}, "cudaVisibleDevices": os.environ.get("CUDA_VISIBLE_DEVICES")}
for name in sys.argv[2:]:
    try:
        out["packages"][name] = metadata.version(name)
    except Exception:
        out["packages"][name] = ""
if sys.argv[1] == "gpu" and out["packages"].get("torch"):
    t = {"version": "", "cuda": "", "available": False, "gpus": []}
    try:
        import torch
        t["version"] = torch.__version__
        t["cuda"] = torch.version.cuda or ""
        t["available"] = bool(torch.cuda.is_available())
        if t["available"]:
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                t["gpus"].append({"name": p.name, "memory": int(p.total_memory)})
    except Exception as e:
        t["error"] = "%s: %s" % (type(e).__name__, e)
    out["torch"] = t
sys.stdout.write("\nFTC-PROBE " + json.dumps(out) + "\n")
`

// probeMarker starts the probe's line: anything a site customisation
// prints before it is ignored.
const probeMarker = "FTC-PROBE "

// ProbeTimeout bounds a probe: importing torch and initialising CUDA takes
// seconds, a hung driver must not hang ftc.
var ProbeTimeout = 2 * time.Minute

// ProbeError says why the interpreter could not be probed.
type ProbeError struct {
	Python string
	Reason string
}

func (e *ProbeError) Error() string {
	return fmt.Sprintf("Python interpreter %q: %s", e.Python, e.Reason)
}

// RunProbe asks python about itself, the packages and, when gpus is set,
// torch's view of CUDA and the GPUs (which honours CUDA_VISIBLE_DEVICES).
func RunProbe(ctx context.Context, python string, packages []string, gpus bool) (*Probe, error) {
	if python == "" {
		python = "python"
	}
	path, err := exec.LookPath(python)
	if err != nil {
		reason := "not found"
		if !strings.Contains(python, "/") {
			reason = "not found on PATH"
		}
		switch {
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, exec.ErrNotFound):
		case errors.Is(err, fs.ErrPermission):
			reason = "not executable"
		default:
			reason = err.Error()
		}
		return nil, &ProbeError{python, reason + "; give an interpreter with the profile's packages with --python"}
	}
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	mode := "nogpu"
	if gpus {
		mode = "gpu"
	}
	cmd := exec.CommandContext(ctx, path, append([]string{"-c", probeScript, mode}, packages...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return nil, &ProbeError{python, fmt.Sprintf("no answer within %v (importing torch, initialising CUDA)", ProbeTimeout)}
	}
	if err != nil {
		return nil, &ProbeError{python, fmt.Sprintf("the probe failed (%v)%s", err, indentTail(stderr.String()))}
	}
	return parseProbe(python, stdout.String())
}

func parseProbe(python, out string) (*Probe, error) {
	i := strings.LastIndex(out, probeMarker)
	if i < 0 {
		return nil, &ProbeError{python, "the probe printed no answer; is it a Python 3.8 or later?" + indentTail(out)}
	}
	line, _, _ := strings.Cut(out[i+len(probeMarker):], "\n")
	var p Probe
	if err := json.Unmarshal([]byte(line), &p); err != nil {
		return nil, &ProbeError{python, fmt.Sprintf("reading the probe's answer: %v", err)}
	}
	if p.Packages == nil {
		p.Packages = map[string]string{}
	}
	return &p, nil
}

func indentTail(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return "\n    | " + strings.Join(lines, "\n    | ")
}
