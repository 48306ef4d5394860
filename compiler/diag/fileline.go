package diag

import (
	"fmt"
	"path/filepath"
	"strings"

	"cuelang.org/go/cue/token"
)

// FileLine is a position in a file that is not CUE, such as a line of a
// data file: it prints as "file:line: ", with no column, since a row is
// a line. File is absolute, like the file names of CUE positions.
type FileLine struct {
	File string
	Line int // 1-based; 0 means the file as a whole
}

// DataErrorf appends an error at a line of a non-CUE file.
func (l *List) DataErrorf(at FileLine, path, format string, args ...any) *Diagnostic {
	d := &Diagnostic{Line: &at, Path: path, Message: fmt.Sprintf(format, args...)}
	l.Add(d)
	return d
}

// position returns where d sorts: its CUE position, or its file line.
func (d *Diagnostic) position() token.Position {
	if d.Line != nil && !d.Pos.IsValid() {
		return token.Position{Filename: d.Line.File, Line: d.Line.Line}
	}
	return d.Pos.Position()
}

// where formats d's position like Where, as "file:line: " for a file line.
func (d *Diagnostic) where(dir string) string {
	if d.Pos.IsValid() || d.Line == nil {
		return Where(d.Pos, dir)
	}
	name := d.Line.File
	if dir != "" && filepath.IsAbs(name) {
		if rel, err := filepath.Rel(dir, name); err == nil && !strings.HasPrefix(rel, "..") {
			name = rel
		}
	}
	if d.Line.Line <= 0 {
		return name + ": "
	}
	return fmt.Sprintf("%s:%d: ", name, d.Line.Line)
}
