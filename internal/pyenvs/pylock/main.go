// Command pylock locks the Python test environments (package pyenvs):
// for each stock profile, the closure of its Python packages with the
// sha256 of every wheel, by ftc lock's resolution without BuildKit, into
// stdlib/python/envs/PROFILE/requirements.txt (and the sdists ftc builds
// from source, with theirs, into requirements-sdist.txt beside it). It
// needs the package index.
//
//	go run ./internal/pyenvs/pylock [PROFILE...]
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/google/renameio/v2"

	"github.com/ftc-dev/ftc/internal/pyenvs"
	"github.com/ftc-dev/ftc/runtime/build"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	profiles := os.Args[1:]
	if len(profiles) == 0 {
		profiles = pyenvs.Profiles
	}
	for _, p := range profiles {
		if err := lock(ctx, p); err != nil {
			fmt.Fprintf(os.Stderr, "pylock: %v\n", err)
			os.Exit(1)
		}
	}
}

func lock(ctx context.Context, profile string) error {
	e, err := pyenvs.Load(".", profile)
	if err != nil {
		return err
	}
	t := pyenvs.Target()
	t.IndexURL = os.Getenv("FTC_INDEX_URL")
	pkgs, err := build.ResolvePythonLocal(ctx, e.Requirements, t)
	if err != nil {
		return fmt.Errorf("%s: %w", profile, err)
	}
	path, spath := pyenvs.RequirementsPath(".", profile), pyenvs.SdistRequirementsPath(".", profile)
	wheels, sdists := e.Render(pkgs)
	if err := renameio.WriteFile(path, wheels, 0o644); err != nil {
		return err
	}
	if sdists == nil {
		if err := os.Remove(spath); err != nil && !os.IsNotExist(err) {
			return err
		}
	} else if err := renameio.WriteFile(spath, sdists, 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: %d packages\n", path, len(pkgs))
	return nil
}
