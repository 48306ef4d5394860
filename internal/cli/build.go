package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/runtime/build"
	"github.com/ftc-dev/ftc/runtime/display"
	"github.com/ftc-dev/ftc/stdlib"
)

// builderFlags are the flags build and lock share.
type builderFlags struct {
	recipe   recipeFlags
	cache    cacheFlag
	buildkit string
	wheels   string
	indexURL string
	progress string
	inBase   bool   // resolve inside the base with BuildKit
	pip      string // the interpreter that runs pip's resolver here
}

func (f *builderFlags) register(cmd *cobra.Command) {
	f.recipe.register(cmd)
	f.cache.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.buildkit, "buildkit", "", "BuildKit daemon `ADDR` (default $BUILDKIT_HOST, else "+build.DefaultAddress+"); docker-container://NAME uses a buildx builder")
	fl.StringVar(&f.wheels, "wheels", "", "local wheel `DIR` to resolve and install Python packages from, without network (where PyPI is not reachable)")
	fl.StringVar(&f.indexURL, "index-url", "", "Python package index `URL` (default: pip's, PyPI)")
	fl.StringVar(&f.progress, "progress", "auto", "progress display on stderr: auto, plain, tty or quiet")
	fl.BoolVar(&f.inBase, "in-base", false, "resolve the Python closure inside the base image with BuildKit (needs a daemon and the base pinned), not on this machine for the profile's Python")
	fl.StringVar(&f.pip, "pip-python", "python3", "the interpreter that runs pip's resolver on this machine (pip ≥ 22.2; its own version does not matter)")
}

func (f *builderFlags) lockOptions(update bool) build.LockOptions {
	return build.LockOptions{Update: update, InBase: f.inBase, Pip: f.pip}
}

func (f *builderFlags) options(stderr io.Writer) (build.Options, error) {
	switch f.progress {
	case "auto", "plain", "tty", "quiet":
	default:
		return build.Options{}, usageError{fmt.Errorf("--progress %q: want auto, plain, tty or quiet", f.progress)}
	}
	if f.wheels != "" && f.indexURL != "" {
		return build.Options{}, usageError{errors.New("--wheels and --index-url: give one source of wheels")}
	}
	if f.wheels != "" {
		if fi, err := os.Stat(f.wheels); err != nil || !fi.IsDir() {
			return build.Options{}, usageError{fmt.Errorf("--wheels %s: not a directory", f.wheels)}
		}
	}
	// BuildKit's client libraries log warnings (e.g. fsverity support) to
	// stderr; what matters reaches the user as an error or the display.
	logrus.SetLevel(logrus.ErrorLevel)
	return build.Options{
		BuildKit: f.buildkit, Cache: f.cache.dirs().Images,
		Wheels: f.wheels, IndexURL: f.indexURL, Progress: stderr, ProgressMode: f.progress,
	}, nil
}

// vet vets a recipe with the flags' overrides and data roots.
func (f *builderFlags) vet(file string, stderr io.Writer) (*config.Recipe, error) {
	overrides, vo, err := f.recipe.options()
	if err != nil {
		return nil, err
	}
	return vetReported(file, overrides, vo, stderr)
}

type buildFlags struct {
	builderFlags
	output  string
	push    string
	name    string
	frozen  bool
	epoch   string
	noCache bool
	iidfile string
}

func newBuild(stdout, stderr io.Writer) *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build FILE",
		Short: "Build the image a recipe's stages run in, reproducibly, identified by digest",
		Long: `build makes the image every stage of a recipe runs in: the environment
(the profile's base image by digest and its Python packages, installed from
ftc.lock with --require-hashes by BuildKit, cached by content) and thin ftc
layers (the entrypoints package and the recipe's own files) appended with
go-containerregistry. The same recipe and lock give the same digest on any
machine; hyperparameters never enter the image.

Without --frozen, what ftc.lock lacks is pinned first, as ftc lock does. The
image is written to an OCI layout directory (default oci:ftc-image), an OCI
archive (oci-archive:FILE) and/or pushed (--push REPO[:TAG]), with an SBOM and
a provenance statement attached as OCI referrers. Feed the digest reference
to 'ftc plan --image'.`,
		Args: argsError(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if len(files) > 1 {
				return usageError{fmt.Errorf("build: one recipe at a time")}
			}
			return runBuild(cmd.Context(), files[0], &f, stdout, stderr)
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", "", "write the image to `DEST`: oci:DIR (an OCI layout; the default, oci:ftc-image, unless --push) or oci-archive:FILE")
	fl.StringVar(&f.push, "push", "", "push the image to a registry as `REF` (REPO[:TAG]); credentials from the docker config")
	fl.StringVar(&f.name, "name", "", "the image's name in an OCI layout or archive (default: the recipe's name)")
	fl.BoolVar(&f.frozen, "frozen", false, "refuse anything unpinned: the base digest and the Python lock must be in ftc.lock and current")
	fl.StringVar(&f.epoch, "source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "every timestamp in the image, in `SECONDS` since 1970 (default $SOURCE_DATE_EPOCH, else 0)")
	fl.BoolVar(&f.noCache, "no-cache", false, "build the environment image again even if it is cached")
	fl.StringVar(&f.iidfile, "iidfile", "", "write the image reference by digest to `FILE` (REPO@sha256:… when pushed, else sha256:…)")
	return cmd
}

func runBuild(ctx context.Context, file string, f *buildFlags, stdout, stderr io.Writer) error {
	publishers, err := f.publishers(stderr)
	if err != nil {
		return err
	}
	b, err := buildRecipe(ctx, file, f, publishers, stdout, stderr)
	if err != nil {
		return err
	}
	if strings.Contains(b.Ref, "@") {
		fmt.Fprintf(stdout, "plan with it: ftc plan --image %s %s\n", b.Ref, file)
	}
	return nil
}

// buildRecipe vets file and builds its image (build.Recipe), saying each
// step on stdout: ftc build, and, without publishers, ftc reproduce
// --rebuild.
func buildRecipe(ctx context.Context, file string, f *buildFlags, publishers func(string) []build.Publisher, stdout, stderr io.Writer) (*build.Built, error) {
	var epoch int64
	if f.epoch != "" {
		var err error
		if epoch, err = strconv.ParseInt(f.epoch, 10, 64); err != nil || epoch < 0 {
			return nil, usageError{fmt.Errorf("--source-date-epoch %q: want seconds since 1970", f.epoch)}
		}
	}
	o, err := f.options(stderr)
	if err != nil {
		return nil, err
	}
	o.NoCache = f.noCache
	r, err := f.vet(file, stderr)
	if err != nil {
		return nil, err
	}
	b, err := build.Recipe(ctx, r, build.RecipeOptions{
		Builder: build.New(o), Frozen: f.frozen, LockOptions: f.lockOptions(false),
		Entrypoints: stdlib.Entrypoints(), Version: Version, Epoch: epoch,
		Publishers: publishers, IIDFile: f.iidfile, Observer: display.BuildReport{W: stdout},
	})
	if err != nil {
		var u image.Unpinned
		if errors.As(err, &u) && f.frozen {
			fmt.Fprintf(stderr, "ftc: --frozen: %v\n", err)
			return nil, errFailed
		}
		fmt.Fprintf(stderr, "ftc: %v\n", err)
		return nil, errFailed
	}
	return b, nil
}

// publishers turns -o and --push into publishers, made once the image's
// name (--name, else the recipe's) is known.
func (f *buildFlags) publishers(stderr io.Writer) (func(recipe string) []build.Publisher, error) {
	d := build.Destinations{Output: f.output, Push: f.push, Name: f.name, Progress: stderr}
	if f.progress == "quiet" {
		d.Progress = nil
	}
	d.Epoch, _ = strconv.ParseInt(f.epoch, 10, 64) // checked by buildRecipe before anything is published
	ps, err := d.Publishers()
	if err != nil { // only a given --output can be wrong
		return nil, usageError{fmt.Errorf("--output %q: %w", f.output, err)}
	}
	return ps, nil
}
