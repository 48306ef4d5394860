package diag

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"cuelang.org/go/cue/token"
)

// Severity says whether a diagnostic fails a recipe.
type Severity int

const (
	// Error fails `ftc vet`.
	Error Severity = iota
	// Warning is printed but does not fail.
	Warning
)

// Diagnostic is one positioned problem.
type Diagnostic struct {
	Pos      token.Pos
	Path     string // recipe path, e.g. "stages.sft.training.learningRate"
	Message  string
	Hint     string
	Severity Severity
	// Line, when Pos is unset, places the diagnostic in a file that is not
	// CUE (a data file's row): see FileLine.
	Line *FileLine
}

// Error implements error.
func (d *Diagnostic) Error() string {
	s := d.text()
	if d.Pos.IsValid() {
		s = d.Pos.String() + ": " + s
	} else if d.Line != nil {
		s = d.where("") + s
	}
	return s
}

func (d *Diagnostic) text() string {
	s := d.Message
	if d.Path != "" {
		s = d.Path + ": " + s
	}
	if d.Severity == Warning {
		s = "warning: " + s
	}
	return s
}

// List is an ordered set of diagnostics.
type List []*Diagnostic

// Add appends a diagnostic.
func (l *List) Add(d *Diagnostic) { *l = append(*l, d) }

// Errorf appends an error at pos.
func (l *List) Errorf(pos token.Pos, path, format string, args ...any) *Diagnostic {
	d := &Diagnostic{Pos: pos, Path: path, Message: fmt.Sprintf(format, args...)}
	l.Add(d)
	return d
}

// Warnf appends a warning at pos.
func (l *List) Warnf(pos token.Pos, path, format string, args ...any) *Diagnostic {
	d := &Diagnostic{Pos: pos, Path: path, Message: fmt.Sprintf(format, args...), Severity: Warning}
	l.Add(d)
	return d
}

// WithHint sets the hint of d and returns it.
func (d *Diagnostic) WithHint(format string, args ...any) *Diagnostic {
	d.Hint = fmt.Sprintf(format, args...)
	return d
}

// HasErrors reports whether any diagnostic is an error.
func (l List) HasErrors() bool {
	for _, d := range l {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Errors returns the diagnostics that are errors.
func (l List) Errors() List {
	var out List
	for _, d := range l {
		if d.Severity == Error {
			out = append(out, d)
		}
	}
	return out
}

// Err returns l as an error when it holds errors, and nil otherwise.
func (l List) Err() error {
	if !l.HasErrors() {
		return nil
	}
	return l
}

// Error implements error: one diagnostic per line.
func (l List) Error() string {
	var b strings.Builder
	for i, d := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(d.Error())
	}
	return b.String()
}

// Sort orders diagnostics by file, line, column and message, and drops
// exact duplicates, so output is stable whatever order checks ran in.
func (l List) Sort() List {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].position(), l[j].position()
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return l[i].text() < l[j].text()
	})
	out := l[:0]
	for i, d := range l {
		if i > 0 && d.Pos == l[i-1].Pos && d.position() == l[i-1].position() && d.text() == l[i-1].text() && d.Hint == l[i-1].Hint {
			continue
		}
		out = append(out, d)
	}
	return out
}

// Print writes each diagnostic as "file:line:col: path: message", with the
// hint on an indented line below. File names are made relative to dir when
// they lie below it, so messages read like a compiler's.
func (l List) Print(w io.Writer, dir string) {
	for _, d := range l {
		fmt.Fprintf(w, "%s%s\n", d.where(dir), d.text())
		if d.Hint != "" {
			fmt.Fprintf(w, "\thint: %s\n", d.Hint)
		}
	}
}

// Where formats pos as "file:line:col: " relative to dir, or "" when pos is
// unknown. Positions in command-line overrides print as the flag itself.
func Where(pos token.Pos, dir string) string {
	if !pos.IsValid() {
		return ""
	}
	p := pos.Position()
	name := p.Filename
	if strings.HasPrefix(name, OverridePrefix) {
		return name + ": "
	}
	if dir != "" && filepath.IsAbs(name) {
		if rel, err := filepath.Rel(dir, name); err == nil && !strings.HasPrefix(rel, "..") {
			name = rel
		}
	}
	return fmt.Sprintf("%s:%d:%d: ", name, p.Line, p.Column)
}

// OverridePrefix starts the file name of values given with --set, so
// diagnostics about them name the flag.
const OverridePrefix = "--set "
