//go:build !cgo

package pyast

// Parse returns ErrNoParser: tree-sitter's parser is C, and this build
// has no cgo.
func Parse(src []byte) (*Module, error) { return nil, ErrNoParser }
