package stdlib

import "embed"

// Files holds the CUE presets, one directory per package, imported by
// recipes as "ftc.dev/stdlib/<dir>".
//
//go:embed models/*.cue gpus/*.cue topologies/*.cue strategies/*.cue profiles/*.cue
var Files embed.FS

// ImportPrefix is the CUE import path of the presets' root.
const ImportPrefix = "ftc.dev/stdlib"

// FieldTables holds each profile's passthrough field table,
// python/envs/PROFILE/fields.json (written by python/envs/fieldtable.py in
// the profile's locked environment; compiler/passthru reads them).
//
//go:embed python/envs/*/fields.json
var FieldTables embed.FS
