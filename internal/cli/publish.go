package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/compiler/launch/shq"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/build"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/display"
	"github.com/ftc-dev/ftc/runtime/publish"
	"github.com/ftc-dev/ftc/runtime/resolve"
	"github.com/ftc-dev/ftc/runtime/runner"
)

func newPublish(stdout, stderr io.Writer) *cobra.Command {
	var f runFlags
	var layoutDir string
	var withOutputs []string
	var withModels bool
	cmd := &cobra.Command{
		Use:   "publish FILE [REF]",
		Short: "Push the last run of a recipe as one OCI artifact others can check (ftc reproduce)",
		Long: `publish makes the last recorded run of the recipe into one OCI artifact and
pushes it to REF (REGISTRY/REPO:TAG; credentials from the docker config), or
writes it into the OCI layout --layout DIR. The artifact holds, each as a
layer of its own: the recipe and the files it names (reward functions, chat
templates, data), ftc.lock, the plan (as ftc plan --json prints it), the run
record (events.jsonl, report.html), each stage's metrics, and an in-toto
provenance statement (SLSA provenance v1) whose subjects are the stage
outputs' digests in the cache. Its index gives each stage's key, output tree
digest and final metrics, the run's key flags, the image by digest
(--image) and each local model directory the run trained from (model:
path) by tree digest; --with-models carries that directory's files too
(without it, ftc reproduce is given a copy with --model). The plan is
made with the flags the run had (--set, --gpus, --cpu: the record has
them). Secrets are names only; nothing from the
environment is written. Publishing the same run twice gives the same digest.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError{errors.New("publish: want FILE REF, or FILE --layout DIR")}
			}
			if len(args) == 1 && layoutDir == "" {
				return usageError{errors.New("publish: give a REF to push to (REGISTRY/REPO:TAG) or --layout DIR")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			return publishRecipe(cmd.Context(), args[0], ref, layoutDir, withOutputs, withModels, &f, stdout, stderr)
		},
	}
	cmd.Flags().StringArrayVar(&f.recipe.dataRoots, "data-root", nil, "a `DIR` outside the recipe's directory that data files may reach through symlinks (as given to ftc run)")
	f.cache.register(cmd)
	cmd.Flags().StringVar(&f.image, "image", "", "the stage image by digest, `REF@sha256:…` (from ftc build), named in the artifact and its provenance")
	cmd.Flags().StringArrayVar(&withOutputs, "with-output", nil, "carry the files of `STAGE`'s output too (repeatable; e.g. sft.export, the exported model), not only its digest")
	cmd.Flags().BoolVar(&withModels, "with-models", false, "carry the files of the local model directories the run trained from (model: path), not only their tree digests")
	cmd.Flags().StringVar(&layoutDir, "layout", "", "write the artifact into the OCI layout `DIR` (made when absent) instead of pushing it; REF, when given, names it there")
	return cmd
}

func publishRecipe(ctx context.Context, file, ref, layoutDir string, withOutputs []string, withModels bool, f *runFlags, stdout, stderr io.Writer) error {
	if f.image != "" && !image.ByDigest(f.image) {
		return usageError{fmt.Errorf("--image %q: want REF@sha256:<64 hex digits> (ftc build prints it)", f.image)}
	}
	rec, err := lastRecord(file, f, stderr)
	if err != nil {
		return err
	}
	if err := f.setKeyFlags(rec.Start.Flags); err != nil {
		fmt.Fprintf(stderr, "ftc: the run record %s: %v\n", rec.Dir, err)
		return errFailed
	}
	r, p, res, err := planOffline(ctx, file, f, stderr)
	if err != nil {
		return err
	}
	if rec.Start.Message != p.Recipe {
		fmt.Fprintf(stderr, "ftc: the last run recorded in %s is of recipe %s, not %s: run `ftc run %s` first\n", f.cache.dirs().Records, rec.Start.Message, p.Recipe, file)
		return errFailed
	}
	for _, n := range withOutputs {
		if runner.UpTo(p, n).Stages == nil {
			return usageError{fmt.Errorf("--with-output %s: the recipe has no stage %q", n, n)}
		}
	}
	store, err := cas.Open(f.cache.dirs().Store)
	if err != nil {
		return err
	}
	art, err := publish.FromRun(publish.RunOptions{Record: rec, Recipe: r, RecipeFile: file, Plan: p, Resolved: res,
		Flags: f.keyFlags(), Image: f.image, Store: store, WithOutputs: withOutputs, WithModels: withModels, Builder: Version,
		Cache: runner.CacheRoot(f.cache.dir)})
	var nc *publish.NotCachedError
	if errors.As(err, &nc) {
		fmt.Fprintf(stderr, "ftc: %v; run `%s` first\n", err, shq.Join(append(append([]string{"ftc", "run"}, f.keyFlags()...), file)))
		return errFailed
	} else if err != nil {
		return err
	}
	t := publish.Target{Layout: layoutDir, Tag: ref, Ref: ref}
	if t.Tag == "" {
		t.Tag = p.Recipe
	}
	tty, _, _ := progressMode("auto", stdout)
	m := display.NewTransferMeter(stdout, "pushing", tty, nil)
	if layoutDir == "" {
		t.Bytes = m.Add
	}
	pub, err := publish.Publish(ctx, art, t)
	m.Finish()
	if err != nil {
		fmt.Fprintf(stderr, "ftc: publish: %v\n", err)
		return errFailed
	}
	where := "OCI layout " + layoutDir + " as " + t.Tag
	if layoutDir == "" {
		where = ref + " (pushed " + m.Summary() + ")"
	}
	idx := art.Index
	fmt.Fprintf(stdout, "published %s (run %s, %d stage(s)) to %s\n  manifest %s: %d file(s), %s, and a provenance statement (manifest %d bytes)\n",
		p.Recipe, idx.Record, len(idx.Stages), where, pub.Digest, len(art.Files), display.HumanBytes(art.Bytes()), pub.Size)
	check := []string{"ftc", "reproduce"}
	if layoutDir != "" {
		check = append(check, "--layout", layoutDir)
		if ref != "" {
			check = append(check, ref)
		}
	} else {
		check = append(check, ref)
	}
	for _, m := range idx.Models {
		if m.Carried {
			fmt.Fprintf(stdout, "  model %s: carried (%d file(s), %s, tree sha256:%.12s)\n", m.Path, m.Files, display.HumanBytes(m.Bytes), m.Tree)
			continue
		}
		fmt.Fprintf(stdout, "  model %s: not carried, by tree sha256:%.12s only (%d file(s), %s): reproduce with --model %s=DIR, or publish --with-models\n",
			m.Path, m.Tree, m.Files, display.HumanBytes(m.Bytes), m.Path)
		check = append(check, "--model", m.Path+"=DIR")
	}
	fmt.Fprintf(stdout, "  check it: %s\n", shq.Join(check))
	return nil
}

// lastRecord reads the newest run record of the recipe
// (publish.LastRecord): by the recipe's name (vetted without flags), or
// the latest run when the recipe cannot be vetted without them.
func lastRecord(file string, f *runFlags, stderr io.Writer) (*publish.Record, error) {
	vo, err := f.recipe.vetOptions()
	if err != nil {
		return nil, err
	}
	name := ""
	if r, _, err := runner.Vet(file, nil, vo); err == nil && r != nil {
		name = r.Name
	}
	rec, err := publish.LastRecord(f.cache.dirs().Records, name)
	if errors.Is(err, publish.ErrNoRecord) {
		fmt.Fprintf(stderr, "ftc: no run recorded in %s: run `ftc run %s` first\n", f.cache.dirs().Records, file)
		return nil, errFailed
	} else if err != nil {
		fmt.Fprintf(stderr, "ftc: %v\n", err)
		return nil, errFailed
	}
	return rec, nil
}

// setKeyFlags sets the flags that decide the keys from a record's
// (exec.Event.Flags: --set V, --gpus N, --cpu).
func (f *runFlags) setKeyFlags(flags []string) error {
	k, err := publish.ParseKeyFlags(flags)
	if err == nil {
		f.applyKeyFlags(k)
	}
	return err
}

func (f *runFlags) applyKeyFlags(k publish.KeyFlags) {
	f.recipe.sets = append(f.recipe.sets, k.Sets...)
	f.cpu = f.cpu || k.CPU
	if k.GPUsSet {
		f.gpus, f.gpusSet = k.GPUs, true
	}
}

// planOffline vets and plans file as ftc run does, offline (the lock
// pins what ran), with f's key flags.
func planOffline(ctx context.Context, file string, f *runFlags, stderr io.Writer) (*config.Recipe, *plan.Plan, *resolve.Result, error) {
	hasher := &resolve.Hasher{MemoDir: f.cache.dirs().Hashes, Defer: true}
	overrides, vo, err := f.planOptions(hasher)
	if err != nil {
		return nil, nil, nil, err
	}
	r, err := vetReported(file, overrides, vo, stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	f.offline = true // the lock pins what ran; ftc reproduce --rerun stays offline too
	rs, err := runner.ResolveAndPlan(ctx, r, runner.ResolveOptions{Lock: f.pending, Hasher: hasher, Image: f.image})
	if err != nil {
		fmt.Fprintf(stderr, "ftc: %v\n", err)
		return nil, nil, nil, errFailed
	}
	hasher.Flush()
	return r, rs.Plan, rs.Resolve, nil
}

func newReproduce(stdout, stderr io.Writer) *cobra.Command {
	var f runFlags
	var layoutDir, dir, rerun string
	var tol float64
	var rebuildImage bool
	var b buildFlags
	var models []string
	cmd := &cobra.Command{
		Use:   "reproduce [REF]",
		Short: "Pull a published run, verify it, re-plan it here and compare (optionally rerun a stage)",
		Long: `reproduce pulls the artifact ftc publish made from REF (or the OCI layout
--layout DIR; REF then names it when the layout holds several) into a fresh
directory (--dir, default a new temporary one), verifies every blob against
its digest (a file changed after publishing is reported by its path, status
1), plans the recipe there with its ftc.lock and the published key flags,
and compares each stage key with the published plan's.

--rerun STAGE runs the recipe's stages up to STAGE in a fresh cache in that
directory, as ftc run does with the same flags (in the environment ftc env
create made for the lock, found in the usual cache, else --python), and
compares the stage's output tree with the published one, file by file when
the digests differ: for a --cpu run a weights file that differs (or a file
on one side only) fails and other files that differ (run metadata) are
shown; a GPU run is not bit-exact, so its differences are shown, not
failed. Final metrics are compared within --tolerance (timing and memory
metrics are shown only).

--rebuild builds the stage image from the pulled recipe and ftc.lock with
the published flags, as ftc build --frozen does (BuildKit: --buildkit or
$BUILDKIT_HOST; wheels from --wheels, --index-url or PyPI), and compares
its digest with the one the artifact names (ftc publish --image). Give
--source-date-epoch when the image was built with one.

A run that trained from a local model directory (model: path) names it by
tree digest; unless it was published --with-models, give a copy with
--model PATH=DIR (PATH as the recipe names it): its files must have the
published tree digest, and are placed (hard-linked where possible) in the
pulled recipe's directory.

It prints a table: what | published | here | match, and exits 1 when
anything differs.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 || (len(args) == 0 && layoutDir == "") {
				return usageError{errors.New("reproduce: want REF, or --layout DIR [REF]")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) == 1 {
				ref = args[0]
			}
			f.pythonSet = cmd.Flags().Changed("python")
			var rb *buildFlags
			if rebuildImage {
				rb = &b
			}
			given := map[string]string{}
			for _, m := range models {
				p, d, ok := strings.Cut(m, "=")
				if !ok || p == "" || d == "" {
					return usageError{fmt.Errorf("--model %q: want PATH=DIR (the model's path in the recipe, a directory here)", m)}
				}
				if _, dup := given[p]; dup {
					return usageError{fmt.Errorf("--model %s: given twice", p)}
				}
				given[p] = d
			}
			return reproduce(cmd.Context(), ref, layoutDir, dir, rerun, tol, rb, given, &f, stdout, stderr)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&layoutDir, "layout", "", "read the artifact from the OCI layout `DIR` (ftc publish --layout) instead of a registry")
	fl.StringVar(&dir, "dir", "", "pull into `DIR` (absent or empty; default a new temporary directory): the recipe's files, and the cache of --rerun")
	fl.StringVar(&rerun, "rerun", "", "run the stages up to `STAGE` here, in a fresh cache, and compare its output and final metrics with the published ones")
	fl.StringArrayVar(&models, "model", nil, "`PATH=DIR`: a copy of the local model directory the recipe names PATH, which the artifact does not carry (repeatable)")
	fl.Float64Var(&tol, "tolerance", 0.01, "relative tolerance of the metrics' comparison (0: exactly)")
	fl.StringVar(&f.python, "python", "python", "Python interpreter that runs the stages of --rerun (as ftc run --python)")
	fl.Lookup("python").DefValue = ""
	fl.StringVar(&f.entrypoint, "entrypoint", os.Getenv("FTC_ENTRYPOINT"), "command standing in for the launcher and `python -m ftc.entry` in --rerun (as ftc run --entrypoint; default $FTC_ENTRYPOINT)")
	fl.BoolVar(&f.allowEnv, allowEnvFlag, false, "--rerun goes on when the local interpreter's packages are not the profile's (as ftc run)")
	fl.BoolVar(&rebuildImage, "rebuild", false, "build the image here from the recipe and lock (as ftc build --frozen) and compare its digest with the published one")
	fl.StringVar(&b.buildkit, "buildkit", "", "with --rebuild: BuildKit daemon `ADDR` (default $BUILDKIT_HOST, else "+build.DefaultAddress+")")
	fl.StringVar(&b.wheels, "wheels", "", "with --rebuild: local wheel `DIR` to install the Python packages from, without network")
	fl.StringVar(&b.indexURL, "index-url", "", "with --rebuild: Python package index `URL` (default: pip's, PyPI)")
	fl.StringVar(&b.epoch, "source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "with --rebuild: the image's timestamps, as given to ftc build (default $SOURCE_DATE_EPOCH, else 0)")
	b.progress = "auto"
	return cmd
}

// reproduce pulls, verifies, re-plans and compares; rebuild, when set,
// holds the builder flags of --rebuild.
func reproduce(ctx context.Context, ref, layoutDir, dir, rerun string, tol float64, rebuild *buildFlags, models map[string]string, f *runFlags, stdout, stderr io.Writer) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "ftc-reproduce-")
		if err != nil {
			return err
		}
		dir = d
	} else if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return usageError{fmt.Errorf("--dir %s: not empty (reproduce pulls into a fresh directory)", dir)}
	}
	tty, _, _ := progressMode("auto", stdout)
	m := display.NewTransferMeter(stdout, "pulling", tty, nil)
	o := publish.ReproduceOptions{Ref: ref, Layout: layoutDir, Dir: dir, Bytes: m.Add, Rerun: rerun, Tolerance: tol, Models: models,
		Pulled: func(got *publish.Fetched) {
			m.Finish()
			fmt.Fprintf(stdout, "pulled %s (%s, %d file(s), every blob verified; %s) into %s\n", got.Index.Recipe, got.Digest, len(got.Files), m.Summary(), got.Dir)
		},
		// The published flags, in a fresh cache; the environments ftc
		// env create made stay the user's ($FTC_CACHE or the default).
		Plan: func(ctx context.Context, file string, k publish.KeyFlags) (*plan.Plan, error) {
			f.cache.envsDir = (&cacheFlag{}).dirs().Envs
			f.cache.dir = filepath.Join(dir, "cache")
			f.applyKeyFlags(k)
			_, p, _, err := planOffline(ctx, file, f, stderr)
			return p, err
		},
		RunStage: func(ctx context.Context, file, stage string) (*cas.Store, error) {
			f.until, f.engine, f.progress, f.prepareOn = stage, "local", "auto", "host"
			if err := runRecipe(ctx, file, f, false, stdout, stderr); err != nil {
				if !errors.Is(err, errFailed) {
					fmt.Fprintf(stderr, "ftc: %v\n", err)
				}
				return nil, err
			}
			return cas.Open(f.cache.dirs().Store)
		},
	}
	if rebuild != nil {
		o.Rebuild = func(ctx context.Context, file string) (string, error) {
			rebuild.recipe, rebuild.cache, rebuild.frozen = f.recipe, f.cache, true
			bt, err := buildRecipe(ctx, file, rebuild, nil, stdout, stderr)
			if err != nil {
				return "", err
			}
			return bt.Digest.String(), nil
		}
	}
	res, err := publish.Reproduce(ctx, o)
	m.Finish()
	var (
		re *publish.ReproduceError
		ns *publish.NoStageError
	)
	switch {
	case err == nil:
	case errors.Is(err, publish.ErrNoImage):
		return usageError{errors.New("--rebuild: the artifact names no image (ftc publish --image REF@sha256:…)")}
	case errors.As(err, &ns):
		return usageError{fmt.Errorf("--rerun %s: %v", rerun, err)}
	case errors.As(err, &re):
		switch re.Step {
		case publish.StepFetch:
			source := ref
			if layoutDir != "" {
				source = "OCI layout " + layoutDir
			}
			fmt.Fprintf(stderr, "ftc: reproduce %s: %v\n", source, re.Err)
		case publish.StepFlags:
			fmt.Fprintf(stderr, "ftc: the artifact's flags: %v\n", re.Err)
		case publish.StepModels:
			var (
				mm *publish.MissingModelsError
				um *publish.UnknownModelError
			)
			switch {
			case errors.As(re.Err, &um):
				return usageError{fmt.Errorf("--model %v", re.Err)}
			case errors.As(re.Err, &mm):
				fmt.Fprintf(stderr, "ftc: reproduce: %v\n", re.Err)
				for _, x := range mm.Models {
					fmt.Fprintf(stderr, "  give a copy with --model %s=DIR (its files must have that tree digest), or ask for the artifact published with --with-models\n", x.Path)
				}
			default:
				fmt.Fprintf(stderr, "ftc: reproduce: %v\n", re.Err)
			}
		case publish.StepRebuild:
			fmt.Fprintf(stderr, "ftc: reproduce: rebuilding the image failed\n")
		case publish.StepRerun:
			fmt.Fprintf(stderr, "ftc: reproduce: rerunning %s failed\n", rerun)
		default:
			fmt.Fprintf(stderr, "ftc: reproduce: %v\n", re.Err)
		}
		return errFailed
	default:
		return err // planOffline's, which said why
	}
	display.Compared(stdout, res.Rows)
	if failed := res.Failed(); failed > 0 {
		fmt.Fprintf(stderr, "ftc: reproduce: %d of %d check(s) differ\n", failed, len(res.Rows))
		return errFailed
	}
	fmt.Fprintf(stdout, "reproduced: every check matched (%d)\n", len(res.Rows))
	return nil
}
