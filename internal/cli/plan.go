package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/compiler/launch/shq"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/runner"
)

func newPlan(stdout, stderr io.Writer) *cobra.Command {
	var flags recipeFlags
	var asJSON bool
	var out, img string
	var gpus int
	var cpu bool
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show the stage graph a recipe compiles to, with content keys and commands",
		Long: `plan vets a recipe and prints its stage graph in the order stages run: each
stage with its content key, its inputs (earlier stages or pinned sources)
and the command that starts it. --json prints the same as JSON
(apiVersion ftc.dev/plan/v1alpha1, documented in the README).

--out writes the plan's files; the job files that run a stage in its image
need the image's digest (--image, from ftc build): without it a Slurm
target with a container gets no stage.sbatch and Kubernetes manifests name
the image ` + plan.ImageNotBuilt + `, each said on stderr (the status stays 0).`,
		Args: argsError(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if len(files) > 1 {
				return usageError{fmt.Errorf("plan: one recipe at a time")}
			}
			overrides, err := flags.overrides()
			if err != nil {
				return err
			}
			vo, err := flags.vetOptions()
			if err != nil {
				return err
			}
			vo.Digest = dataDigests(cacheFlag{}, stderr)
			vo.Plan = plan.Options{Image: img}
			if cmd.Flags().Changed("gpus") {
				vo.Plan.GPUs = gpus
			}
			vo.Plan.CPU = cpu
			if err := lockArchs(files[0], &vo); err != nil {
				return err
			}
			if img != "" && !image.ByDigest(img) {
				return usageError{fmt.Errorf("--image %q: want REF@sha256:<64 hex digits> (ftc build prints it)", img)}
			}
			p, diags, err := bounded(files[0], func() (*plan.Plan, diag.List, error) {
				return compiler.PlanWith(files[0], overrides, vo)
			})
			printDiags(stderr, diags)
			if fe, ok := flagError(err); ok {
				return fe
			}
			if err != nil {
				if len(diags) == 0 {
					fmt.Fprintf(stderr, "%s: %v\n", files[0], err)
				}
				return errFailed
			}
			if out != "" {
				if err := runner.WritePlanFiles(out, p); err != nil {
					return err
				}
				// Files that name the image need one: say which were
				// left out or hold a placeholder, rather than nothing.
				// The plan itself is complete, so the status stays 0.
				if img == "" {
					if msg := imageNotes(p); msg != "" {
						fmt.Fprint(stderr, msg)
					}
				}
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(p)
			}
			printPlan(stdout, p)
			return nil
		},
	}
	flags.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	cmd.Flags().IntVar(&gpus, "gpus", 0, "plan for `N` GPUs of the recipe's one node, as ftc run --gpus N would run it: the same global batch, gradient accumulation adjusted, what changed said under hardware")
	cmd.Flags().BoolVar(&cpu, "cpu", false, cpuUsage)
	cmd.Flags().StringVar(&img, "image", "", "the stage image by digest, `REF@sha256:…` (from ftc build), named by the plan and its job files")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write each stage's config and launcher files under `DIR/<stage>/` (plan.json at the top)")
	return cmd
}

// imageNotes says which job files plan -o could not complete without
// --image.
func imageNotes(p *plan.Plan) string {
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

func printPlan(w io.Writer, p *plan.Plan) {
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
		if e := s.Estimate; e != nil {
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
