package exec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// newestCheckpoint returns the complete checkpoint with the highest step
// under dir, or "" when there is none.
func newestCheckpoint(dir string) (string, *CheckpointManifest, error) {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return "", nil, nil
	} else if err != nil {
		return "", nil, err
	}
	var best string
	var bestM *CheckpointManifest
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), CheckpointManifestFile))
		if err != nil {
			continue // no manifest: the checkpoint was never finished
		}
		var m CheckpointManifest
		if json.Unmarshal(b, &m) != nil || !m.Complete {
			continue
		}
		if bestM == nil || m.Step > bestM.Step {
			best, bestM = e.Name(), &m
		}
	}
	return best, bestM, nil
}

// ResumeError explains why a checkpoint cannot be resumed.
type ResumeError struct {
	Stage  string
	Reason string
}

func (e *ResumeError) Error() string {
	return fmt.Sprintf("stage %s: cannot resume: %s (rerun with --restart to start the stage over)", e.Stage, e.Reason)
}

// checkResume decides whether a checkpoint written by m can continue on
// world.
func checkResume(stage string, m *CheckpointManifest, world World) error {
	if m.Strategy != world.Strategy {
		return &ResumeError{Stage: stage, Reason: fmt.Sprintf("the checkpoint was written with strategy %s, this run uses %s", m.Strategy, world.Strategy)}
	}
	// Sharded strategies keep optimizer state (and for ZeRO-3 and FSDP
	// the parameters) in per-rank shards: their checkpoints load only
	// into the same number of processes.
	if m.Strategy.Sharded() && m.WorldSize != world.Processes {
		return &ResumeError{Stage: stage, Reason: fmt.Sprintf("%s checkpoints are sharded over %d processes, this run has %d", m.Strategy, m.WorldSize, world.Processes)}
	}
	return nil
}
