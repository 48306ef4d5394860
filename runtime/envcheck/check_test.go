package envcheck

import (
	"fmt"
	"strings"
	"testing"
)

func gpus(n int, name string, gib float64) []GPU {
	var out []GPU
	for i := 0; i < n; i++ {
		out = append(out, GPU{Name: name, MemoryBytes: int64(gib * (1 << 30))})
	}
	return out
}

func TestCheck(t *testing.T) {
	want := Want{Profile: "pinned-2025q1", Python: "3.11", CUDA: "12.4",
		Packages: map[string]string{"torch": "2.5.0", "transformers": "4.48.2", "trl": "0.16.0"},
		GPUs:     1, GPUName: "H100-80GB", GPUMemoryGiB: 80}
	good := func() *Probe {
		return &Probe{Python: "3.11.7", Packages: map[string]string{"torch": "2.5.0+cu124", "transformers": "4.48.2", "trl": "0.16.0"},
			Torch: &Torch{Version: "2.5.0+cu124", CUDA: "12.4", Available: true, GPUs: gpus(1, "NVIDIA H100 80GB HBM3", 79.1)}}
	}
	for _, tc := range []struct {
		name    string
		want    func(*Want)
		probe   func(*Probe)
		rows    []string // "what status found", only rows that are not ok
		differs bool
	}{
		{name: "matching, local version label ignored"},
		{name: "no GPU needed: torch not asked", want: func(w *Want) { w.GPUs = 0 }, probe: func(p *Probe) { p.Torch = nil }},
		{
			name:  "wrong and missing packages",
			probe: func(p *Probe) { p.Packages["transformers"] = "5.17.0"; p.Packages["trl"] = "" },
			rows:  []string{"transformers differs 5.17.0", "trl differs not installed"}, differs: true,
		},
		{name: "another python", probe: func(p *Probe) { p.Python = "3.12.1" }, rows: []string{"python differs 3.12.1"}, differs: true},
		{name: "3.1 is not 3.11", want: func(w *Want) { w.Python = "3.1" }, rows: []string{"python differs 3.11.7"}, differs: true},
		{name: "torch built for another CUDA", probe: func(p *Probe) { p.Torch.CUDA = "12.1" }, rows: []string{"torch CUDA build differs 12.1"}, differs: true},
		{
			name:  "no torch: GPUs unknown",
			probe: func(p *Probe) { p.Packages["torch"] = ""; p.Torch = nil },
			rows:  []string{"torch differs not installed", "CUDA fatal unknown: torch is not installed"}, differs: true,
		},
		{
			name: "CPU build of torch",
			probe: func(p *Probe) {
				p.Torch = &Torch{Version: "1.13.0a0+gitunknown", Available: false}
				p.Packages["torch"] = "1.13.0a0+gitunknown"
			},
			rows: []string{"torch differs 1.13.0a0+gitunknown", "CUDA fatal not available (torch 1.13.0a0+gitunknown is a CPU build)"}, differs: true,
		},
		{name: "CUDA not available", probe: func(p *Probe) { p.Torch.Available = false; p.Torch.GPUs = nil }, rows: []string{"CUDA fatal not available"}},
		{name: "torch import fails", probe: func(p *Probe) { p.Torch = &Torch{Error: "ImportError: libcudart"} }, rows: []string{"CUDA fatal import torch failed: ImportError: libcudart"}},
		{
			name: "fewer GPUs than asked",
			want: func(w *Want) { w.GPUs = 8 },
			probe: func(p *Probe) {
				p.Torch.GPUs = gpus(4, "NVIDIA H100 80GB HBM3", 79.1)
				v := "0,1,2,3"
				p.CUDAVisibleDevices = &v
			},
			rows: []string{"GPUs fatal 4 visible (CUDA_VISIBLE_DEVICES=0,1,2,3)"},
		},
		{name: "more GPUs than asked", probe: func(p *Probe) { p.Torch.GPUs = gpus(8, "NVIDIA H100 80GB HBM3", 79.1) }},
		{name: "smaller GPU", probe: func(p *Probe) { p.Torch.GPUs = gpus(1, "NVIDIA A10G", 22) }, rows: []string{"GPU memory short 22.0 GiB (NVIDIA A10G)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := want
			w.Packages = map[string]string{}
			for k, v := range want.Packages {
				w.Packages[k] = v
			}
			if tc.want != nil {
				tc.want(&w)
			}
			p := good()
			if tc.probe != nil {
				tc.probe(p)
			}
			r := Check("python", w, p)
			var rows []string
			for _, row := range r.Rows {
				if row.Status != OK {
					rows = append(rows, fmt.Sprintf("%s %s %s", row.What, row.Status, row.Found))
				}
			}
			if strings.Join(rows, "\n") != strings.Join(tc.rows, "\n") {
				t.Errorf("rows not ok:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(tc.rows, "\n"))
			}
			if r.Differs() != tc.differs {
				t.Errorf("Differs() = %v, want %v", r.Differs(), tc.differs)
			}
			if (r.Ran() != nil) != tc.differs {
				t.Errorf("Ran() = %+v with Differs() %v", r.Ran(), tc.differs)
			}
		})
	}
}

// TestRanNamesWhatRan: the environment keys are computed from holds the
// found versions, not the profile's, and differs with any of them.
func TestRanNamesWhatRan(t *testing.T) {
	w := Want{Profile: "p", Python: "3.11", Packages: map[string]string{"torch": "2.5.0", "trl": "0.16.0"}}
	p := &Probe{Python: "3.11.7", Packages: map[string]string{"torch": "1.13.0", "trl": "0.16.0", "extra": "1"}}
	ran := Check("python", w, p).Ran()
	if ran == nil || ran.Profile != "p" || ran.Python != "3.11.7" || fmt.Sprint(ran.Packages) != "map[torch:1.13.0 trl:0.16.0]" {
		t.Fatalf("Ran() = %+v", ran)
	}
}

func TestCreateCommandQuotes(t *testing.T) {
	if got := CreateCommand("my recipes/recipe.cue", []string{"hardware.gpusPerNode=2"}, true); got != "ftc env create --set hardware.gpusPerNode=2 'my recipes/recipe.cue'" {
		t.Fatal(got)
	}
	if got := CreateCommand("r.cue", nil, false); got != "ftc lock r.cue && ftc env create r.cue" {
		t.Fatal(got)
	}
}
