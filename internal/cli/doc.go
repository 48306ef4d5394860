// Package cli is ftc's command line: one file per subcommand, each turning
// flags into options and calling a library. It is the only package that
// prints.
//
// Exit codes: 0 success, 1 the recipe (or run) has problems, 2 usage
// errors (unknown flag, missing argument).
package cli
