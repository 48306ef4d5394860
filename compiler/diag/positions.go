package diag

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"
)

// Positions maps dotted recipe paths ("stages.sft.training") to where the
// user wrote them. It is built from the syntax of the user's files, so it
// never points into the embedded schema or stdlib.
type Positions map[string]token.Pos

// At returns the position of path, or of its nearest ancestor the user
// wrote, so a diagnostic about a defaulted field lands on the block that
// holds it.
func (p Positions) At(path string) token.Pos {
	for {
		if pos, ok := p[path]; ok {
			return pos
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			return p[""]
		}
		path = path[:i]
	}
}

// Has reports whether the user wrote path.
func (p Positions) Has(path string) bool {
	_, ok := p[path]
	return ok
}

// Record adds the positions of every field written in files. Fields inside
// a unification (`preset & {field: ...}`) and list elements count;
// references do not, since what they name was written elsewhere.
func (p Positions) Record(files []*ast.File) {
	for _, f := range files {
		if _, ok := p[""]; !ok && len(f.Decls) > 0 {
			p[""] = f.Decls[0].Pos()
		}
		p.decls("", f.Decls)
	}
}

func (p Positions) decls(prefix string, decls []ast.Decl) {
	for _, d := range decls {
		switch d := d.(type) {
		case *ast.Field:
			name, _, err := ast.LabelName(d.Label)
			if err != nil {
				continue
			}
			path := join(prefix, name)
			pos := d.Label.Pos()
			// A value given with --set is blamed at the flag, not at the
			// line of the recipe it replaced.
			if vp := d.Value.Pos(); vp.IsValid() && (!pos.IsValid() || strings.HasPrefix(vp.Filename(), OverridePrefix)) {
				pos = vp
			}
			if _, ok := p[path]; !ok || strings.HasPrefix(pos.Filename(), OverridePrefix) {
				p[path] = pos
			}
			p.expr(path, d.Value)
		case *ast.EmbedDecl:
			p.expr(prefix, d.Expr)
		}
	}
}

func (p Positions) expr(path string, e ast.Expr) {
	switch e := e.(type) {
	case *ast.StructLit:
		p.decls(path, e.Elts)
	case *ast.BinaryExpr:
		if e.Op == token.AND {
			p.expr(path, e.X)
			p.expr(path, e.Y)
		}
	case *ast.ListLit:
		for i, x := range e.Elts {
			ip := join(path, strconv.Itoa(i))
			if _, ok := p[ip]; !ok {
				p[ip] = x.Pos()
			}
			p.expr(ip, x)
		}
	case *ast.ParenExpr:
		p.expr(path, e.X)
	}
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// EmbeddedRoot is where the loader overlays ftc's schema and stdlib in a
// recipe's directory (CUE's place for packages a tool provides).
const EmbeddedRoot = "cue.mod/gen"

// IsEmbedded reports whether a file name belongs to ftc's overlaid schema
// or stdlib (or the module file the loader supplies) rather than to the
// user: positions there are never reported as the user's.
func IsEmbedded(filename string) bool {
	return strings.Contains(filepath.ToSlash(filename), "/"+EmbeddedRoot+"/") ||
		strings.HasSuffix(filepath.ToSlash(filename), "/cue.mod/module.cue")
}

// PinCommandHint names the command that writes the sha256 pins of the
// recipe file at pos.
func PinCommandHint(pos token.Pos) string {
	name := "RECIPE.cue"
	if pos.IsValid() && pos.Filename() != "" && !IsEmbedded(pos.Filename()) {
		name = filepath.Base(pos.Filename())
	}
	return fmt.Sprintf("pin the file's sha256 with: ftc pin %s", name)
}
