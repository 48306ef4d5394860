package load

import (
	"fmt"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"

	"github.com/ftc-dev/ftc/compiler/diag"
)

// PinSite is one `file: {path: …, sha256: …}` of a recipe file, as
// RewritePins found and left it.
type PinSite struct {
	Pos  token.Pos
	Path string
	// Old is the pin as written ("" when there was none), New the file's
	// sha256 ("" when it could not be hashed: Err says why).
	Old, New string
	Err      error
}

// Changed reports whether the site's pin was written or rewritten.
func (s PinSite) Changed() bool { return s.Err == nil && s.Old != s.New }

// RewritePins fills or updates the sha256 of every file struct of one CUE
// source file whose path is a string literal, with sum(path), and returns
// the file formatted as cue fmt would (comments kept) and what it found.
// Only sha256 fields change; a pin that is not a string literal, or a
// path that is not one, is left alone. The hashing is the caller's (sum),
// so the compiler reads no file here.
func RewritePins(filename string, src []byte, sum func(path string) (string, error)) ([]byte, []PinSite, error) {
	f, err := parser.ParseFile(filename, src, parser.ParseComments)
	if err != nil {
		return nil, nil, err
	}
	var sites []PinSite
	ast.Walk(f, func(n ast.Node) bool {
		fd, ok := n.(*ast.Field)
		if !ok {
			return true
		}
		if name, _, err := ast.LabelName(fd.Label); err != nil || name != "file" {
			return true
		}
		sl, ok := fd.Value.(*ast.StructLit)
		if !ok {
			return true
		}
		var path string
		var pin *ast.Field
		for _, e := range sl.Elts {
			ef, ok := e.(*ast.Field)
			if !ok {
				continue
			}
			name, _, err := ast.LabelName(ef.Label)
			if err != nil {
				continue
			}
			switch name {
			case "path":
				if lit, ok := ef.Value.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					path, _ = literal.Unquote(lit.Value)
				}
			case "sha256":
				pin = ef
			}
		}
		if path == "" {
			return true
		}
		site := PinSite{Pos: fd.Pos(), Path: path}
		var lit *ast.BasicLit
		if pin != nil {
			l, ok := pin.Value.(*ast.BasicLit)
			if !ok || l.Kind != token.STRING {
				site.Err = fmt.Errorf("its sha256 is not a string literal; left alone")
				sites = append(sites, site)
				return true
			}
			lit = l
			site.Old, _ = literal.Unquote(l.Value)
		}
		site.New, site.Err = sum(path)
		sites = append(sites, site)
		if !site.Changed() {
			return true
		}
		if lit != nil {
			lit.Value = literal.String.Quote(site.New)
			return true
		}
		nf := &ast.Field{Label: ast.NewIdent("sha256"), Value: ast.NewString(site.New)}
		switch {
		case !sl.Lbrace.IsValid():
			// file: path: "x" becomes file: {path: "x", sha256: "…"}.
			sl.Lbrace, sl.Rbrace = token.Blank.Pos(), token.Blank.Pos()
			ast.SetRelPos(nf, token.Blank)
		case len(sl.Elts) > 0 && sl.Lbrace.Line() == sl.Elts[len(sl.Elts)-1].Pos().Line():
			ast.SetRelPos(nf, token.Blank) // a one-line struct stays one line
		default:
			ast.SetRelPos(nf, token.Newline)
		}
		sl.Elts = append(sl.Elts, nf)
		return true
	}, nil)
	out, err := format.Node(f)
	if err != nil {
		return nil, nil, err
	}
	return out, sites, nil
}

// pinHint is the hint of a missing, malformed or stale data pin: the
// command that writes it.
func pinHint(d *diag.Diagnostic) {
	if !strings.HasSuffix(d.Path, ".file.sha256") {
		return
	}
	if d.Message != "missing required field" && !strings.HasSuffix(d.Message, " is malformed") {
		return
	}
	if d.Pos.IsValid() && strings.HasPrefix(d.Pos.Filename(), diag.OverridePrefix) {
		// The value came from --set, not from a file ftc pin could
		// rewrite: the pattern's hint is the whole story.
		return
	}
	if strings.HasSuffix(d.Message, " is malformed") && d.Hint != "" {
		d.Hint += "; or " + diag.PinCommandHint(d.Pos) // a typo keeps its pattern
		return
	}
	d.Hint = diag.PinCommandHint(d.Pos)
}
