// Package compiler turns a recipe file into a validated config and a plan.
//
// It is pure: no network, no clock, no environment variables, no
// randomness. Its only inputs are the recipe, the files next to it and the
// embedded schema and stdlib, so the same recipe compiles to the same plan
// and keys on every machine. Subpackages do the work; this package is the
// short path through them that the CLI calls.
package compiler
