package cli

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ftc-dev/ftc/runtime/resolve"
	"github.com/ftc-dev/ftc/runtime/runner"
)

func newPin(stdout, stderr io.Writer) *cobra.Command {
	var cache cacheFlag
	var check bool
	cmd := &cobra.Command{
		Use:   "pin FILE",
		Short: "Fill or update the sha256 of every local file the recipe names",
		Long: `pin hashes every local file a recipe file names in a file struct,
file: {path: "…"}, and writes its sha256 into that struct: a missing pin is
added, a stale one replaced. Only sha256 fields change; the file is
formatted as cue fmt would, comments kept. Hashes are remembered by file
identity in the cache's hashes/, as vet's are.

A pin written in another file (an imported package, another file of the
recipe's package) is not rewritten: pin says where it is. After writing,
pin vets the data pins of the result. --check writes nothing and exits 1
when a pin would change. Exit status: 0 all pins current, 1 otherwise.`,
		Args: argsError(1),
		RunE: func(_ *cobra.Command, files []string) error {
			if len(files) > 1 {
				return usageError{fmt.Errorf("pin: one recipe file at a time")}
			}
			return pinRecipe(files[0], cache, check, stdout, stderr)
		},
	}
	cache.register(cmd)
	cmd.Flags().BoolVar(&check, "check", false, "write nothing; exit 1 when a pin is missing or stale")
	return cmd
}

func pinRecipe(file string, cache cacheFlag, check bool, stdout, stderr io.Writer) error {
	hasher := &resolve.Hasher{MemoDir: cache.dirs().Hashes, Progress: hashProgress(stderr)}
	pins, err := runner.PinFile(file, hasher)
	if err != nil {
		return failed(err, stderr)
	}
	for _, s := range pins.Sites {
		at := fmt.Sprintf("%s:%d:%d", file, s.Pos.Line(), s.Pos.Column())
		switch {
		case s.Err != nil:
			fmt.Fprintf(stderr, "%s: %s: %v\n", at, s.Path, unwrapPath(s.Err))
		case s.Old == s.New:
		case s.Old == "":
			fmt.Fprintf(stdout, "%s: %s: sha256 %s (was missing)\n", at, s.Path, s.New)
		default:
			fmt.Fprintf(stdout, "%s: %s: sha256 %s (was %s)\n", at, s.Path, s.New, s.Old)
		}
	}
	note := ""
	if check && pins.Changed() {
		note = " (--check: nothing written)"
	} else if pins.Changed() {
		if err := resolve.ReplaceFile(file, pins.Out); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "%s: %d pin(s) added, %d updated, %d current%s\n", file, pins.Added, pins.Updated, pins.Current, note)
	if check {
		if pins.Failed || pins.Changed() {
			return errFailed
		}
		return nil
	}

	// The pins this file does not hold: vet says which are missing or
	// stale, and where they are written.
	rest := runner.PinsLeft(file, hasher)
	abs, _ := filepath.Abs(file)
	for _, d := range rest {
		if d.Pos.IsValid() && d.Pos.Filename() != abs {
			wd, _ := os.Getwd()
			where := d.Pos.Filename()
			if r, err := filepath.Rel(wd, where); err == nil {
				where = r
			}
			fmt.Fprintf(stderr, "ftc: %s is written in %s:%d:%d, not in %s: pin rewrites only the file it is given; change it there\n",
				d.Path, where, d.Pos.Line(), d.Pos.Column(), file)
		}
	}
	printDiags(stderr, rest)
	if pins.Failed || len(rest) > 0 {
		return errFailed
	}
	return nil
}

// unwrapPath drops the path an *fs.PathError repeats.
func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}
