package envcheck

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ftc-dev/ftc/compiler/launch/shq"
	"github.com/ftc-dev/ftc/compiler/plan"
)

// Want is what the recipe asks of the machine.
type Want struct {
	// Profile names the recipe's environment profile.
	Profile string
	// Python and CUDA are the profile's "major.minor" versions.
	Python string
	CUDA   string
	// Packages are the versions the profile pins, with the optional
	// packages the recipe needs (deepspeed for ZeRO, vllm for a
	// generation server).
	Packages map[string]string
	// GPUs is how many devices the run uses on this machine (0: none,
	// e.g. data preparation only).
	GPUs int
	// GPUName and GPUMemoryGiB describe the recipe's hardware.gpu: the
	// memory estimate was made for it.
	GPUName      string
	GPUMemoryGiB float64
}

// Status classifies a row of the report.
type Status string

const (
	// OK: found what was wanted.
	OK Status = "ok"
	// Differs: a version other than the profile's (or none). Refused
	// unless the user goes on anyway; then keys name what ran.
	Differs Status = "differs"
	// Short: the GPUs have less memory than the recipe's hardware.
	// Refused unless the user goes on anyway; keys do not depend on it.
	Short Status = "short"
	// Fatal: no stage could launch (no CUDA, too few GPUs). Always
	// refused.
	Fatal Status = "fatal"
)

// Row is one line of the report: what was wanted and what was found.
type Row struct {
	What   string
	Want   string
	Found  string
	Status Status
	// Package is set on rows of Python packages (for the fix command).
	Package bool
}

// Report is the result of Check.
type Report struct {
	Python string // the interpreter probed, as given
	Want   Want
	Probe  *Probe
	Rows   []Row
}

// Check compares what the probe found with what is wanted.
func Check(python string, want Want, got *Probe) *Report {
	r := &Report{Python: python, Want: want, Probe: got}
	add := func(row Row) { r.Rows = append(r.Rows, row) }

	if want.Python != "" {
		st := OK
		if !sameRelease(got.Python, want.Python) {
			st = Differs
		}
		add(Row{What: "python", Want: want.Python, Found: got.Python, Status: st})
	}
	for _, name := range sortedKeys(want.Packages) {
		w, f := want.Packages[name], got.Packages[name]
		st := OK
		if publicVersion(f) != w {
			st = Differs
		}
		add(Row{What: name, Want: w, Found: orNone(f, "not installed"), Status: st, Package: true})
	}
	if want.GPUs == 0 {
		return r
	}

	// GPUs: only torch knows; without it nothing could launch anyway.
	t := got.Torch
	switch {
	case got.Packages["torch"] == "" || t == nil:
		add(Row{What: "CUDA", Want: "available", Found: "unknown: torch is not installed", Status: Fatal})
		return r
	case t.Error != "":
		add(Row{What: "CUDA", Want: "available", Found: "import torch failed: " + t.Error, Status: Fatal})
		return r
	}
	if want.CUDA != "" && t.CUDA != "" {
		st := OK
		if !sameRelease(t.CUDA, want.CUDA) {
			st = Differs
		}
		add(Row{What: "torch CUDA build", Want: want.CUDA, Found: t.CUDA, Status: st})
	}
	if !t.Available {
		found := "not available"
		if t.CUDA == "" {
			found += " (torch " + t.Version + " is a CPU build)"
		}
		add(Row{What: "CUDA", Want: "available", Found: found, Status: Fatal})
		return r
	}
	visible := fmt.Sprintf("%d visible", len(t.GPUs))
	if got.CUDAVisibleDevices != nil {
		visible += " (CUDA_VISIBLE_DEVICES=" + *got.CUDAVisibleDevices + ")"
	}
	st := OK
	if len(t.GPUs) < want.GPUs {
		st = Fatal
	}
	add(Row{What: "GPUs", Want: fmt.Sprintf("%d", want.GPUs), Found: visible, Status: st})
	used := t.GPUs
	if len(used) > want.GPUs {
		used = used[:want.GPUs]
	}
	if len(used) == 0 {
		return r
	}
	// The smallest device decides whether the estimate holds. 5% slack:
	// an "80 GB" card reports 79.1 GiB.
	small := used[0]
	for _, g := range used {
		if g.MemoryBytes < small.MemoryBytes {
			small = g
		}
	}
	gib := float64(small.MemoryBytes) / (1 << 30)
	if want.GPUMemoryGiB > 0 {
		st := OK
		if gib < 0.95*want.GPUMemoryGiB {
			st = Short
		}
		add(Row{What: "GPU memory", Want: fmt.Sprintf("%.0f GiB (%s)", want.GPUMemoryGiB, want.GPUName), Found: fmt.Sprintf("%.1f GiB (%s)", gib, small.Name), Status: st})
	}
	return r
}

// Fatal lists the rows nothing can go past.
func (r *Report) Fatal() []Row { return r.with(Fatal) }

// Refused lists the rows the user may go past with the flag.
func (r *Report) Refused() []Row { return r.with(Differs, Short) }

// Differs reports whether the library set is not the profile's: outputs
// must then be keyed by what ran.
func (r *Report) Differs() bool { return len(r.with(Differs)) > 0 }

func (r *Report) with(sts ...Status) []Row {
	var out []Row
	for _, row := range r.Rows {
		for _, s := range sts {
			if row.Status == s {
				out = append(out, row)
			}
		}
	}
	return out
}

// CreateCommand is what fixes an environment other than the profile's:
// an environment made from the lock's closure, hash-checked (ftc env
// create), after ftc lock when the lock has no current closure. Recipe
// and sets are the recipe file and --set overrides the user gave.
func CreateCommand(recipe string, sets []string, locked bool) string {
	args := ""
	for _, s := range sets {
		args += " --set " + shq.Quote(s)
	}
	args += " " + shq.Quote(recipe)
	if locked {
		return "ftc env create" + args
	}
	return "ftc lock" + args + " && ftc env create" + args
}

// Ran is the environment that will run the stages, for keys: the probed
// versions of everything the profile pins. Nil when it is the profile's.
func (r *Report) Ran() *plan.RanEnvironment {
	if !r.Differs() {
		return nil
	}
	ran := &plan.RanEnvironment{Profile: r.Want.Profile, Python: r.Probe.Python, Packages: map[string]string{}}
	if r.Probe.Torch != nil {
		ran.CUDA = r.Probe.Torch.CUDA
	}
	for name := range r.Want.Packages {
		ran.Packages[name] = r.Probe.Packages[name]
	}
	return ran
}

// sameRelease reports whether version v is release want ("3.11" matches
// "3.11.7", not "3.1" or "3.12").
func sameRelease(v, want string) bool {
	return v == want || strings.HasPrefix(v, want+".")
}

// publicVersion drops a local version label: torch "2.5.0+cu124" is
// release 2.5.0 (PEP 440).
func publicVersion(v string) string {
	p, _, _ := strings.Cut(v, "+")
	return p
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
