package exec

// Status is what happened to a stage in a run.
type Status string

// The statuses a stage ends a run with.
const (
	StatusCached    Status = "cached"    // its key was in the cache, verified
	StatusRan       Status = "ran"       // it ran and its outputs were committed
	StatusWouldRun  Status = "would-run" // a dry run: it is not in the cache
	StatusFailed    Status = "failed"    // it ran and failed
	StatusSkipped   Status = "skipped"   // an input stage did not succeed
	StatusCancelled Status = "cancelled" // the run was interrupted
	StatusPreempted Status = "preempted" // it saved a checkpoint on SIGTERM and can resume
)

// Succeeded reports whether the stage's outputs are in the cache (or would
// be looked up there, in a dry run): what a downstream stage may read.
func (s Status) Succeeded() bool {
	return s == StatusCached || s == StatusRan || s == StatusWouldRun
}
