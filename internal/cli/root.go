package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Version is ftc's version, set at link time by the Makefile.
var Version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks errors in how ftc was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// failed marks a command that has already printed why it failed.
var errFailed = errors.New("failed")

// Main runs ftc with os.Args and returns the exit code.
func Main() int {
	return Run(os.Args[1:], os.Stdout, os.Stderr)
}

// stopsOnSignal are the commands that stop what they run when ftc gets
// SIGINT or SIGTERM, through their context, and then exit: ftc run stops
// its stages (which keep their checkpoints; further signals are caught
// until they have stopped, so none is orphaned), ftc build and ftc lock
// stop their solves, ftc reproduce its rerun. Every other command keeps
// the default behaviour: a signal ends it at once.
var stopsOnSignal = map[string]bool{"ftc run": true, "ftc build": true, "ftc lock": true, "ftc reproduce": true}

// Run runs ftc with args, writing to stdout and stderr.
//
// The one signal-aware context is made here, for the commands in
// stopsOnSignal; every command gets its context as cmd.Context().
func Run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	ctx := context.Background()
	if cmd, _, err := root.Find(args); err == nil && stopsOnSignal[cmd.CommandPath()] {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errFailed):
		return exitFailure
	}
	var ue usageError
	var lu interface{ IsUsage() bool } // a runtime library's usage error (runner.UsageError)
	if errors.As(err, &ue) || errors.As(err, &lu) && lu.IsUsage() || isCobraUsage(err) {
		fmt.Fprintf(stderr, "ftc: %v\nRun 'ftc --help' for usage.\n", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "ftc: %v\n", err)
	return exitFailure
}

// isCobraUsage recognises cobra's own argument errors, which it returns
// as plain errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "flag needs an argument", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "ftc",
		Short: "ftc compiles declarative CUE fine-tuning recipes into reproducible, cached pipelines",
		Long: `ftc compiles one CUE recipe for LLM fine-tuning (SFT, reward model, PPO, GRPO)
into a validated stage graph with content keys and launch commands.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newVet(stdout, stderr), newPlan(stdout, stderr), newRun(stdout, stderr),
		newCache(stdout, stderr), newStatus(stdout, stderr), newVersion(stdout),
		newBuild(stdout, stderr), newLock(stdout, stderr), newEnv(stdout, stderr), newPin(stdout, stderr),
		newExport(stdout, stderr), newPublish(stdout, stderr), newReproduce(stdout, stderr), newDebug(stdout))
	return root
}

func argsError(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError{fmt.Errorf("%s: missing recipe file", cmd.Name())}
		}
		return nil
	}
}
