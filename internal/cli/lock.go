package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/runtime/build"
)

func newLock(stdout, stderr io.Writer) *cobra.Command {
	var f builderFlags
	var update bool
	cmd := &cobra.Command{
		Use:   "lock FILE",
		Short: "Pin a recipe's image inputs in ftc.lock: base image digest, Python packages with hashes",
		Long: `lock pins what the recipe's image and environment are made from and writes
it to ftc.lock next to the recipe: the closure of the profile's Python
packages with the sha256 of every wheel, and the base image's digest (looked
up in its registry when the profile names a tag). Commit ftc.lock: later
builds (ftc build --frozen) and environments (ftc env create) need no
resolver.

The closure is resolved on this machine by pip's resolver (a dry run with an
installation report), for the profile's CPython release and manylinux x86_64
wheels (glibc up to 2.` + fmt.Sprint(image.LockGlibc) + `): no BuildKit daemon and no base image are needed,
and the same closure serves the image and ftc env create. --in-base resolves
inside the base image with BuildKit instead, for a base whose Python differs
from the profile's. Where the base cannot be pinned (its registry is not
reachable), the closure is still written and lock fails saying so.

Where PyPI is not reachable, resolve from a local wheel directory:
--wheels DIR (no network is used), or from another index: --index-url URL.
An up-to-date lock is kept unless --update.`,
		Args: argsError(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if len(files) > 1 {
				return usageError{fmt.Errorf("lock: one recipe at a time")}
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			o, err := f.options(stderr)
			if err != nil {
				return err
			}
			r, lock, lockPath, err := f.vet(files[0], stderr)
			if err != nil {
				return err
			}
			lr, err := build.Lock(ctx, build.New(o), r, lock, f.lockOptions(update))
			if lr == nil {
				fmt.Fprintf(stderr, "ftc: %v\n", err)
				return errFailed
			}
			// With an error too: what was locked stays locked (build.Lock).
			if werr := lock.Write(lockPath); werr != nil {
				return fmt.Errorf("writing %s: %w", lockPath, werr)
			}
			base := lr.Base
			if base == "" {
				base = "not pinned"
			}
			fmt.Fprintf(stdout, "%s: base %s, %d Python package(s)", lockPath, base, len(lr.Packages))
			if lr.Resolved {
				fmt.Fprintf(stdout, " (resolved now %s)", lr.Target)
			}
			fmt.Fprintln(stdout)
			for _, p := range lr.Packages {
				fmt.Fprintf(stdout, "  %s==%s %s\n", p.Name, p.Version, p.Hashes[0])
			}
			if err != nil {
				fmt.Fprintf(stderr, "ftc: %v\n", err)
				return errFailed
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&update, "update", false, "pin the base tag and resolve the Python packages again even if the lock is current")
	return cmd
}
