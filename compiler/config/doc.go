// Package config holds the plain Go types of a validated recipe and the
// semantic checks that need more than CUE's field-by-field constraints.
//
// Decode is the one place a cue.Value becomes Go: after it, the compiler
// works on these types only. Checks never stop at the first problem; they
// return every diagnostic at once, each at the position of the field the
// user wrote.
package config
