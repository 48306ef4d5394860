// Command gendocs writes docs/cli.md, ftc's command reference, from the
// commands' own definitions (cli.CLIReference). Run it from the
// repository root after changing a command or a flag:
//
//	go run ./internal/cli/gendocs
//
// internal/cli's TestCLIReference fails while the file is stale
// (FTC_UPDATE_GOLDEN=1 go test ./internal/cli -run TestCLIReference
// refreshes it too).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ftc-dev/ftc/internal/cli"
)

func main() {
	out := flag.String("o", "docs/cli.md", "the file to write")
	flag.Parse()
	if err := os.WriteFile(*out, cli.CLIReference(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}
