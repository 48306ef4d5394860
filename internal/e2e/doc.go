// Package e2e holds end-to-end tests of `ftc run` and the cache: the real
// ftc binary, a real process tree and file system, with the test trainer
// (internal/testtrainer) standing in for the Python entrypoints.
package e2e
