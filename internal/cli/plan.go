package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/display"
	"github.com/ftc-dev/ftc/runtime/publish"
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
			overrides, vo, err := flags.options()
			if err != nil {
				return err
			}
			vo.Digest = dataDigests(cacheFlag{}, stderr)
			vo.Plan = plan.Options{Image: img}
			if cmd.Flags().Changed("gpus") {
				vo.Plan.GPUs = gpus
			}
			vo.Plan.CPU = cpu
			if err := runner.LockArchs(files[0], &vo); err != nil {
				return err
			}
			if img != "" && !image.ByDigest(img) {
				return usageError{fmt.Errorf("--image %q: want REF@sha256:<64 hex digits> (ftc build prints it)", img)}
			}
			p, diags, err := runner.Plan(files[0], overrides, vo)
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
					if msg := display.ImageNotes(p); msg != "" {
						fmt.Fprint(stderr, msg)
					}
				}
			}
			if asJSON { // the bytes ftc publish puts in the artifact
				b, err := publish.PlanJSON(p)
				if err != nil {
					return err
				}
				_, err = stdout.Write(b)
				return err
			}
			display.Plan(stdout, p)
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
