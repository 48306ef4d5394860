package stdlib

import "embed"

// Files holds the CUE presets, one directory per package, imported by
// recipes as "ftc.dev/stdlib/<dir>".
//
//go:embed models/*.cue gpus/*.cue topologies/*.cue strategies/*.cue profiles/*.cue
var Files embed.FS

// ImportPrefix is the CUE import path of the presets' root.
const ImportPrefix = "ftc.dev/stdlib"
