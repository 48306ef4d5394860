package exec

import (
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/plan"
)

// StageFile is what a stage's entrypoint reads (stage.json in its run
// directory). Paths are relative to the run directory. Its JSON Schema,
// generated from these types, is stdlib/python/ftc/stage.schema.json
// (internal/stageschema): regenerate it with FTC_UPDATE_GOLDEN=1 after a
// change here or to a stage config.
type StageFile struct {
	APIVersion string    `json:"apiVersion"`
	Name       string    `json:"name"`
	Kind       plan.Kind `json:"kind"`
	Key        string    `json:"key"`
	// Config is the plan's stage config.
	Config any `json:"config"`
	// Inputs maps roles to where each input is.
	Inputs map[string]StageInput `json:"inputs"`
	// Output is the directory the stage writes its results to; it is
	// committed to the cache when the stage succeeds.
	Output string `json:"output"`
	// Checkpoints is where checkpoints go, one directory each, with a
	// CheckpointManifest written last.
	Checkpoints string `json:"checkpoints"`
	// ResumeFrom is the checkpoint to resume from, or "".
	ResumeFrom string `json:"resumeFrom,omitempty"`
	// Metrics is a JSON-lines file the stage appends metrics to.
	Metrics string `json:"metrics"`
	// World is the process layout of this attempt.
	World World `json:"world"`
	// GraceSeconds bounds the checkpoint a training stage saves after
	// SIGTERM (the recipe's hardware.preemption.graceSeconds; 0: the
	// entrypoint's default). Not part of any key.
	GraceSeconds int `json:"graceSeconds,omitempty"`
}

// StageFileVersion is StageFile's apiVersion.
const StageFileVersion = "ftc.dev/stage/v1alpha1"

// StageInput is one input: a local path, or a Hub reference the
// entrypoint loads itself.
type StageInput struct {
	Path     string `json:"path,omitempty"`
	Repo     string `json:"repo,omitempty"`
	Revision string `json:"revision,omitempty"`
	Kind     string `json:"kind"`
}

// World is the process layout.
type World struct {
	Processes int             `json:"processes"`
	Strategy  config.Strategy `json:"strategy"`
}

// CheckpointManifest is written last into each checkpoint directory; a
// checkpoint without one is incomplete and ignored.
type CheckpointManifest struct {
	Step      int               `json:"step"`
	WorldSize int               `json:"worldSize"`
	Strategy  config.Strategy   `json:"strategy"`
	Libraries map[string]string `json:"libraries,omitempty"`
	Complete  bool              `json:"complete"`
}

// CheckpointManifestFile is the manifest's file name.
const CheckpointManifestFile = "ftc-checkpoint.json"
