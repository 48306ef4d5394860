package schema

import "embed"

// Files holds the schema's CUE files, package "ftc.dev/schema".
//
//go:embed *.cue
var Files embed.FS

// Version is the apiVersion this schema accepts.
const Version = "ftc.dev/v1alpha1"

// ImportPath is the CUE import path the schema is loaded under.
const ImportPath = "ftc.dev/schema"

// Definition is the definition a recipe is unified with.
const Definition = "#Recipe"
