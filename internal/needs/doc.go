// Package needs decides what a test does when the machine lacks something
// it needs — root, an installed program, a started service.
//
// On a developer's machine the test skips and says what it needed, so
// `go test ./...` without root or apt packages reports skips with reasons
// and no failures. Under CI (CI=true, which .ci/run sets) it fails instead:
// the CI scripts install and start everything the tests need, so a missing
// requirement there is a broken script, and a skip would hide a feature
// that should have been tested.
//
// Skips a developer asks for (-short) are not requirements and do not go
// through here.
package needs
