// Package load turns recipe files into a CUE value checked against ftc's
// schema.
//
// It overlays the embedded schema and stdlib into the recipe's directory in
// memory (as cue.mod/gen packages), so recipes import "ftc.dev/stdlib/..."
// without vendoring anything; applies --set overrides by editing the
// recipe's syntax tree, so an override replaces a value instead of
// conflicting with it; unifies the recipe with #Recipe; and converts every
// CUE error into a diagnostic at the position in the user's own file.
//
// cue.Value never leaves this package and compiler/config.
package load
