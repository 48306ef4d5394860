package exec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/runtime/backend"
)

// TestPreemptionContractMatchesTheEntrypoints: the exit status and the
// marker's name are stated in Go and in the entrypoints' Python; they must
// be one.
func TestPreemptionContractMatchesTheEntrypoints(t *testing.T) {
	b, err := os.ReadFile("../../stdlib/python/ftc/preempt.py")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{fmt.Sprintf("EXIT_PREEMPTED = %d\n", ExitPreempted), fmt.Sprintf("MARKER = %q\n", PreemptedMarker)} {
		if !strings.Contains(string(b), want) {
			t.Errorf("ftc/preempt.py lacks %q", want)
		}
	}
}

func TestPreemptedByExitStatusOrMarker(t *testing.T) {
	dir := t.TempDir()
	if pe := preempted(dir, &backend.ExitError{Code: 1}); pe != nil {
		t.Errorf("exit 1 without a marker read as preempted: %v", pe)
	}
	if pe := preempted(dir, nil); pe != nil {
		t.Errorf("success read as preempted")
	}
	pe := preempted(dir, fmt.Errorf("slurm job 7 FAILED: %w", &backend.ExitError{Code: ExitPreempted}))
	if pe == nil || pe.Checkpoint != "" {
		t.Fatalf("exit 75 without a marker: %+v", pe)
	}
	// torchrun exits 1 when a worker exits 75: the marker tells.
	if err := os.WriteFile(filepath.Join(dir, PreemptedMarker), []byte(`{"step": 12, "checkpoint": "checkpoint-12", "exitCode": 75}`), 0o644); err != nil {
		t.Fatal(err)
	}
	launcher := &backend.ExitError{Code: 1}
	pe = preempted(dir, launcher)
	if pe == nil || pe.Step != 12 || pe.Checkpoint != filepath.Join("checkpoints", "checkpoint-12") || !errors.Is(pe, launcher) {
		t.Fatalf("marker: %+v", pe)
	}
}
