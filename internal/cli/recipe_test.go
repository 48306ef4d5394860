package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/compiler/diag"
)

// TestBoundedGivesUp: a compiler call that does not return is abandoned
// with an error that says so, rather than hanging the command.
func TestBoundedGivesUp(t *testing.T) {
	defer func(b time.Duration) { evalBound = b }(evalBound)
	evalBound = time.Millisecond
	block := make(chan struct{})
	defer close(block)
	_, _, err := bounded("r.cue", func() (int, diag.List, error) { <-block; return 0, nil, nil })
	if err == nil || !strings.Contains(err.Error(), "did not finish within") {
		t.Fatalf("err = %v", err)
	}
	v, _, err := bounded("r.cue", func() (int, diag.List, error) { return 7, nil, nil })
	if v != 7 || err != nil {
		t.Fatalf("got %d, %v", v, err)
	}
}
