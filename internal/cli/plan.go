package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/compiler/plan"
)

func newPlan(stdout, stderr io.Writer) *cobra.Command {
	var flags recipeFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show the stage graph a recipe compiles to, with content keys and commands",
		Long: `plan vets a recipe and prints its stage graph in the order stages run: each
stage with its content key, its inputs (earlier stages or pinned sources)
and the command that starts it. --json prints the same as JSON
(apiVersion ftc.dev/plan/v1alpha1, documented in the README).`,
		Args: argsError(1),
		RunE: func(_ *cobra.Command, files []string) error {
			if len(files) > 1 {
				return usageError{fmt.Errorf("plan: one recipe at a time")}
			}
			overrides, err := flags.overrides()
			if err != nil {
				return err
			}
			p, diags, err := compiler.Plan(files[0], overrides)
			printDiags(stderr, diags)
			if err != nil {
				if len(diags) == 0 {
					fmt.Fprintf(stderr, "%s: %v\n", files[0], err)
				}
				return errFailed
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
	return cmd
}

func printPlan(w io.Writer, p *plan.Plan) {
	h := p.Hardware
	fmt.Fprintf(w, "recipe %s\n", p.Recipe)
	fmt.Fprintf(w, "environment %s (%s)\n", p.Environment.Profile, p.Environment.Key.Short())
	fmt.Fprintf(w, "hardware %d node(s) × %d %s, strategy %s, target %s\n\n", h.Nodes, h.GPUsPerNode, h.GPU, h.Strategy, h.Target)
	for i, s := range p.Stages {
		fmt.Fprintf(w, "%d. %s [%s]\n", i+1, s.Name, s.Kind)
		fmt.Fprintf(w, "   key   %s\n", s.Key)
		for _, in := range s.Inputs {
			fmt.Fprintf(w, "   in    %-10s %s\n", in.Role, describeInput(in))
		}
		if s.Launch.Server != nil {
			fmt.Fprintf(w, "   start %s  (GPUs %s, first)\n", strings.Join(s.Launch.Server.Argv, " "), ints(s.Launch.Server.GPUs))
		}
		for _, e := range launch.SortedEnv(s.Launch.Env) {
			fmt.Fprintf(w, "   env   %s\n", e)
		}
		fmt.Fprintf(w, "   run   %s\n", strings.Join(s.Launch.Argv, " "))
		if s.Launch.Processes > 1 || s.Launch.Nodes > 1 {
			fmt.Fprintf(w, "         %d process(es) on %d node(s)\n", s.Launch.Processes, s.Launch.Nodes)
		}
	}
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
		out += " (unpinned: locked by ftc run)"
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
