package display

import (
	"fmt"
	"io"
	"strings"

	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/compiler/launch/shq"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/runner"
)

// ImageNotes says which job files plan -o could not complete without
// --image.
func ImageNotes(p *plan.Plan) string {
	m := runner.JobFilesMissingImage(p)
	var b strings.Builder
	if len(m.Sbatch) > 0 {
		fmt.Fprintf(&b, "ftc: no %s written for %s: with hardware.slurm.container the job runs in the stage image, which needs --image REF@sha256:… (ftc build prints it)\n",
			launch.SbatchFile, strings.Join(m.Sbatch, ", "))
	}
	if len(m.Kubernetes) > 0 {
		fmt.Fprintf(&b, "ftc: %s of %s names the image %s: give --image REF@sha256:… (ftc build prints it)\n",
			launch.KubernetesFile, strings.Join(m.Kubernetes, ", "), plan.ImageNotBuilt)
	}
	return b.String()
}

// Plan prints the plan as ftc plan shows it: the recipe, its
// environment and hardware, then each stage in the order stages run.
func Plan(w io.Writer, p *plan.Plan) {
	h := p.Hardware
	fmt.Fprintf(w, "recipe %s\n", p.Recipe)
	fmt.Fprintf(w, "environment %s (%s)\n", p.Environment.Profile, p.Environment.Key.Short())
	if p.Image != "" {
		fmt.Fprintf(w, "image %s\n", p.Image)
	}
	// Commands print as launch.sh writes them: they can be pasted.
	vars := []string{launch.EnvMasterAddr, launch.EnvNodeRank}
	fmt.Fprintf(w, "hardware %d node(s) × %d %s, strategy %s, target %s\n", h.Nodes, h.GPUsPerNode, h.GPU, h.Strategy, h.Target)
	if h.Device == "cpu" {
		fmt.Fprintf(w, "  --cpu: the training stages run on CPUs, %d process(es) per node, keyed as CPU runs\n", h.GPUsPerNode)
	}
	if p.Rescaled != nil {
		for _, l := range p.Rescaled.Lines() {
			fmt.Fprintln(w, l)
		}
	}
	if len(p.DataRoots) > 0 {
		fmt.Fprintf(w, "data roots %s\n", strings.Join(p.DataRoots, " "))
	}
	fmt.Fprintln(w)
	for i, s := range p.Stages {
		fmt.Fprintf(w, "%d. %s [%s]\n", i+1, s.Name, s.Kind)
		fmt.Fprintf(w, "   key   %s\n", s.Key)
		weights := map[string]float64{}
		if cfg, ok := s.Config.(plan.StageConfig); ok {
			for _, m := range cfg.Data.Mix {
				weights[m.Input] = m.Weight
			}
		}
		for _, in := range s.Inputs {
			mix := ""
			if wt, ok := weights[in.Role]; ok {
				mix = fmt.Sprintf("  weight %g", wt)
			}
			fmt.Fprintf(w, "   in    %-10s %s%s\n", in.Role, describeInput(in), mix)
		}
		if s.Launch.Server != nil {
			fmt.Fprintf(w, "   start %s  (GPUs %s, first)\n", shq.Join(s.Launch.Server.Argv, vars...), ints(s.Launch.Server.GPUs))
		}
		for _, e := range launch.SortedEnv(s.Launch.Env) {
			k, v, _ := strings.Cut(e, "=")
			fmt.Fprintf(w, "   env   %s=%s\n", k, shq.Quote(v))
		}
		fmt.Fprintf(w, "   run   %s\n", shq.Join(s.Launch.Argv, vars...))
		if len(s.Files) > 0 {
			fmt.Fprintf(w, "   files %s\n", strings.Join(sortedKeys(s.Files), " "))
		}
		if st := s.Steps; st != nil {
			fmt.Fprintf(w, "   batch %s\n", st.BatchLine())
			fmt.Fprintf(w, "   steps %s\n", st.StepsLine())
			fmt.Fprintf(w, "         %s\n", st.TokensLine())
		}
		if e := s.Estimate; e != nil && e.Inference {
			fmt.Fprintf(w, "   mem   %.1f GiB on its one GPU of %.1f: %s\n", e.PerGPUGiB, e.CapacityGiB, e.Verdict)
			for _, p := range e.Parts {
				fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("         %-14s %6.1f GiB  %s", p.Name, p.GiB, p.Note), " "))
			}
		} else if e != nil {
			ck := "off"
			if e.Checkpointing {
				ck = "on"
			}
			fmt.Fprintf(w, "   mem   %.1f GiB per GPU of %.1f: %s (checkpointing %s)\n", e.PerGPUGiB, e.CapacityGiB, e.Verdict, ck)
			for _, p := range e.Parts {
				fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("         %-14s %6.1f GiB  %s", p.Name, p.GiB, p.Note), " "))
			}
			fmt.Fprintf(w, "   speed ≈%.0f tokens/s", e.TokensPerSecond)
			if e.Hours > 0 {
				fmt.Fprintf(w, ", ≈%s for ≈%s tokens (%.2g GPU-hours)", duration(e.Hours), si(e.Tokens), e.GPUHours)
			}
			fmt.Fprintln(w)
		}
		if s.Launch.Processes > 1 || s.Launch.Nodes > 1 {
			fmt.Fprintf(w, "         %d process(es) on %d node(s)\n", s.Launch.Processes, s.Launch.Nodes)
		}
	}
}

func duration(hours float64) string {
	switch {
	case hours < 1.0/60:
		return fmt.Sprintf("%.0fs", hours*3600)
	case hours < 1:
		return fmt.Sprintf("%.0f min", hours*60)
	}
	return fmt.Sprintf("%.1f h", hours)
}

func si(f float64) string {
	switch {
	case f >= 1e9:
		return fmt.Sprintf("%.1fB", f/1e9)
	case f >= 1e6:
		return fmt.Sprintf("%.1fM", f/1e6)
	case f >= 1e3:
		return fmt.Sprintf("%.1fk", f/1e3)
	}
	return fmt.Sprintf("%.0f", f)
}

func describeInput(in plan.Input) string {
	if in.Source == nil {
		return "← " + in.Stage + " (" + in.Key.Short() + ")"
	}
	s := in.Source
	pin := s.Pin
	if strings.HasPrefix(pin, "sha256:") && len(pin) > 19 {
		pin = pin[:19]
	}
	out := fmt.Sprintf("%s %s@%s", s.Kind, s.Ref, pin)
	if !s.Pinned {
		out += " (unpinned: ftc lock or ftc run pins it in ftc.lock)"
	}
	return out
}

func ints(l []int) string {
	var s []string
	for _, i := range l {
		s = append(s, fmt.Sprint(i))
	}
	return strings.Join(s, ",")
}
