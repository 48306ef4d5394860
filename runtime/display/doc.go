// Package display renders what ftc's commands show a person: a run's
// progress (step / total, loss, tokens/s, ETA; redrawn in place on a
// terminal, sparse plain lines in a log), a transfer's bytes and rate,
// the plan as ftc plan prints it, the last run as ftc status prints it,
// and the environment check's table and fixes.
//
// Everything here writes to the io.Writer it is given and decides nothing
// about where that is: internal/cli picks the writer (stdout, stderr),
// whether it is a terminal, and the exit status (DESIGN.md: only
// internal/cli prints).
package display
