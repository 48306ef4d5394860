package cli_test

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ftc-dev/ftc/internal/cli"
)

// TestMain lets scripts run ftc as a program: testscript re-executes this
// test binary as "ftc", which runs cli.Main.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ftc": func() { os.Exit(cli.Main()) },
	})
}

// TestScripts runs the scripts of testdata/script (CLI behaviour) and the
// broken-recipe corpus of testdata/vet (one archive per mistake, each
// comparing ftc vet's diagnostics with the archive's want.txt).
//
// FTC_UPDATE_GOLDEN=1 rewrites the archives' golden files (the files that
// cmp compares stdout or stderr with) from the actual output. Re-read every
// golden it changes: a golden must be what a user should see.
func TestScripts(t *testing.T) {
	for _, dir := range []string{"script", "vet"} {
		t.Run(dir, func(t *testing.T) {
			testscript.Run(t, params("testdata/"+dir))
		})
	}
}

func params(dir string) testscript.Params {
	return testscript.Params{
		Dir:           dir,
		UpdateScripts: os.Getenv("FTC_UPDATE_GOLDEN") != "",
		Cmds:          map[string]func(ts *testscript.TestScript, neg bool, args []string){"exitcode": exitcode},
		// $FTCBIN is the directory testscript puts ftc in (the first of
		// PATH), so that a script can run ftc with a PATH of its own
		// choosing: PATH=$WORK/bin:$FTCBIN has only the script's fakes.
		Setup: func(e *testscript.Env) error {
			for _, v := range e.Vars {
				if p, ok := strings.CutPrefix(v, "PATH="); ok {
					first, _, _ := strings.Cut(p, string(os.PathListSeparator))
					e.Setenv("FTCBIN", first)
				}
			}
			return nil
		},
	}
}

// exitcode N PROGRAM [ARGS...] runs a program like exec and checks that it
// exits with status N; stdout and stderr are kept for the commands that
// follow. ftc's exit status is part of its interface: 0 valid, 1 invalid,
// 2 usage error.
func exitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exitcode")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: bad status %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}
