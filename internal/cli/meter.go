package cli

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/ftc-dev/ftc/runtime/display"
	"github.com/ftc-dev/ftc/runtime/remote"
)

// progressMode resolves --progress: auto is tty on a terminal (not dumb),
// plain elsewhere.
func progressMode(mode string, w io.Writer) (tty bool, width int, err error) {
	f, isFile := w.(*os.File)
	terminal := isFile && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb"
	if terminal {
		width, _, _ = term.GetSize(int(f.Fd()))
	}
	switch mode {
	case "auto":
		return terminal, width, nil
	case "tty":
		return true, width, nil
	case "plain":
		return false, 0, nil
	}
	return false, 0, fmt.Errorf("--progress %q: want auto, plain or tty", mode)
}

// meterCache attaches a transfer meter to a remote cache: its bytes, and,
// when lines is set, its per-entry lines.
func meterCache(c *remote.Cache, w io.Writer, verb string, lines bool) *display.TransferMeter {
	tty, _, _ := progressMode("auto", w)
	m := display.NewTransferMeter(w, verb, tty, nil)
	c.Bytes = m.Add
	if lines {
		c.Progress = m.Line
	}
	return m
}
