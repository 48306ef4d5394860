// Package publish makes a run into one OCI artifact that others can check
// (ftc publish) and reads one back, verified (ftc reproduce).
//
// The artifact is an OCI image manifest whose artifactType is
// ArtifactType. Its config blob is the Index (ConfigMediaType): the
// recipe's name, the flags that decided the stage keys, the image by
// digest, and per stage its key, the digest of its output tree in the
// cache and its final metrics. Each layer is one file, uncompressed, so a
// layer's digest is the file's sha256, with its path in the
// org.opencontainers.image.title annotation and its role in
// dev.ftc.role: the recipe and the files it names (reward functions,
// chat templates, data), ftc.lock, the plan as `ftc plan --json` prints
// it, the run record (events.jsonl, report.html), each stage's
// metrics.jsonl and output tree manifest (the cache's, so its digest is
// the output's), and an in-toto Statement v1 with a SLSA provenance v1
// predicate whose subjects are the stage outputs' tree digests.
//
// Outputs are referenced by digest and carried only when asked
// (RoleOutput): a rerun on another machine gives the same weights when
// the run is deterministic (CPU, fixed seed), and the tree manifests say
// which files differ when it does not (CompareOutput).
//
// Nothing in the artifact depends on the clock or the environment: the
// times in it are the run record's, so publishing the same run twice
// gives the same manifest digest. Secrets never enter it (a recipe names
// them; their values are never read here).
//
// Fetch reads an artifact back and verifies every blob against its
// digest before it is used; a changed byte is reported with the file's
// path (TamperedError).
//
// FromRun collects a run's artifact from its record (LastRecord), its plan
// and the cache; Reproduce is ftc reproduce's pipeline, with the steps
// that plan, build and run supplied by the caller and typed errors the
// CLI maps to its messages and exit codes.
package publish
