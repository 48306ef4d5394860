package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/runtime/build"
)

func newLock(stdout, stderr io.Writer) *cobra.Command {
	var f builderFlags
	var update bool
	cmd := &cobra.Command{
		Use:   "lock FILE",
		Short: "Pin a recipe's image inputs in ftc.lock: base image digest, Python packages with hashes",
		Long: `lock pins what the recipe's image is built from and writes it to ftc.lock
next to the recipe: the base image's digest (looked up in its registry when
the profile names a tag) and the closure of the profile's Python packages
with the sha256 of every wheel, resolved by pip inside BuildKit, in the
base image itself. Commit ftc.lock: later builds (ftc build --frozen) need no
resolver.

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
			lr, err := build.Lock(ctx, build.New(o), r, lock, update)
			if err != nil {
				fmt.Fprintf(stderr, "ftc: %v\n", err)
				return errFailed
			}
			if err := lock.Write(lockPath); err != nil {
				return fmt.Errorf("writing %s: %w", lockPath, err)
			}
			fmt.Fprintf(stdout, "%s: base %s, %d Python package(s)", lockPath, lr.Base, len(lr.Packages))
			if lr.Resolved {
				fmt.Fprintf(stdout, " (resolved now)")
			}
			fmt.Fprintln(stdout)
			for _, p := range lr.Packages {
				fmt.Fprintf(stdout, "  %s==%s %s\n", p.Name, p.Version, p.Hashes[0])
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&update, "update", false, "pin the base tag and resolve the Python packages again even if the lock is current")
	return cmd
}
