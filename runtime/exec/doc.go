// Package exec runs a plan the way a build system does.
//
// For each stage, in dependency order and in parallel where GPUs allow: a
// verified cache hit is reused; otherwise the stage's execution lock is
// taken (so two `ftc run` processes never run the same stage), the cache is
// checked again, inputs are laid out in the stage's run directory, the
// backend runs the launcher, and on success the outputs are committed to
// the store and the action entry written last.
//
// The run directory is named by the stage's resume key and survives
// crashes: checkpoints written there (each with a manifest, written last)
// let the next run resume from the newest complete one, or refuse with a
// reason when the topology changed in a way the strategy cannot resume
// from. Partial checkpoints are never cache entries.
package exec
