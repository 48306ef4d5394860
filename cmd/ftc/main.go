// Command ftc compiles declarative CUE fine-tuning recipes.
package main

import (
	"os"

	"github.com/ftc-dev/ftc/internal/cli"
)

func main() { os.Exit(cli.Main()) }
