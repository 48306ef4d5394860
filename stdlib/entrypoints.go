package stdlib

import (
	"embed"
	"io/fs"
)

// python holds the training entrypoints package shipped inside images.
// "all:" keeps __init__.py files (names starting with "_" are otherwise
// left out); bytecode caches that a local test run leaves behind are
// embedded too but skipped when the image layer is made.
//
//go:embed all:python/ftc
var python embed.FS

// Entrypoints is the entrypoints package (stdlib/python/ftc) as ftc/… at
// the root of the file system: the files of the image's entrypoints layer.
func Entrypoints() fs.FS {
	sub, err := fs.Sub(python, "python")
	if err != nil {
		panic(err) // cannot happen: the directory is embedded
	}
	return sub
}
