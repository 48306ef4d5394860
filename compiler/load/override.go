package load

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	cueload "cuelang.org/go/cue/load"
	"cuelang.org/go/cue/token"

	"github.com/ftc-dev/ftc/compiler/diag"
)

// presets evaluates the packages a recipe imports, to write out the
// presets an override replaces a field of.
type presets struct {
	cfg  *cueload.Config
	ctx  *cue.Context
	pkgs map[string]cue.Value
}

// pkg is the evaluated package at importPath, or an error value.
func (p *presets) pkg(importPath string) cue.Value {
	if v, ok := p.pkgs[importPath]; ok {
		return v
	}
	if p.pkgs == nil {
		p.pkgs = map[string]cue.Value{}
	}
	var v cue.Value
	if insts := cueload.Instances([]string{importPath}, p.cfg); len(insts) == 1 && insts[0].Err == nil {
		v = p.ctx.BuildInstance(insts[0])
	}
	p.pkgs[importPath] = v
	return v
}

// inline replaces, in e and the operands of its unifications, each
// reference to an imported preset that sets the path rest by the
// preset's value written out as a struct literal. Other expressions are
// left as they are.
func (p *presets) inline(e ast.Expr, rest []string) ast.Expr {
	if p == nil {
		return e
	}
	switch x := e.(type) {
	case *ast.BinaryExpr:
		if x.Op == token.AND {
			x.X = p.inline(x.X, rest)
			x.Y = p.inline(x.Y, rest)
		}
		return x
	case *ast.ParenExpr:
		x.X = p.inline(x.X, rest)
		return x
	case *ast.SelectorExpr:
		base, sels, ok := refChain(x)
		if !ok {
			return e
		}
		spec, ok := base.Node.(*ast.ImportSpec)
		if !ok {
			return e
		}
		path, err := strconv.Unquote(spec.Path.Value)
		if err != nil {
			return e
		}
		v := p.pkg(path)
		if !v.Exists() {
			return e
		}
		var cs []cue.Selector
		for _, s := range sels {
			cs = append(cs, cue.Str(s))
		}
		v = v.LookupPath(cue.MakePath(cs...))
		var rs []cue.Selector
		for _, s := range rest {
			rs = append(rs, cue.Str(s))
		}
		if !v.Exists() || !v.LookupPath(cue.MakePath(rs...)).Exists() {
			return e
		}
		st, ok := v.Syntax(cue.Final(), cue.Docs(false)).(*ast.StructLit)
		if !ok {
			return e
		}
		// Errors in the written-out value are the preset's: place them at
		// the user's reference.
		ast.Walk(st, func(n ast.Node) bool {
			ast.SetPos(n, x.Pos())
			return true
		}, nil)
		return st
	}
	return e
}

// missingEntry reports an override of a field of a stage or dataset the
// recipe does not have, with the nearest name it has: adding one field
// would make a stage or dataset of it, with every other required field
// missing. A whole new entry (--set 'stages.x={...}') is allowed.
func missingEntry(files []*ast.File, labels []string, at token.Pos) *diag.Diagnostic {
	if len(labels) < 3 || (labels[0] != "stages" && labels[0] != "datasets") {
		return nil
	}
	names := map[string]bool{}
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.Field)
			if !ok {
				continue
			}
			if n, _, err := ast.LabelName(fd.Label); err != nil || n != labels[0] {
				continue
			}
			st, ok := fd.Value.(*ast.StructLit)
			if !ok {
				return nil // written as an expression: its names are not known here
			}
			for _, e := range st.Elts {
				switch e := e.(type) {
				case *ast.Field:
					n, _, err := ast.LabelName(e.Label)
					if err != nil {
						return nil
					}
					names[n] = true
				case *ast.Attribute, *ast.CommentGroup:
				default:
					return nil
				}
			}
		}
	}
	if names[labels[1]] {
		return nil
	}
	kind := "stage"
	if labels[0] == "datasets" {
		kind = "dataset"
	}
	d := &diag.Diagnostic{Pos: at, Path: labels[0] + "." + labels[1], Message: fmt.Sprintf("the recipe has no %s %q", kind, labels[1])}
	var all []string
	for n := range names {
		all = append(all, n)
	}
	d.Hint = NearestHint(labels[1], kind, all)
	return d
}

// NearestHint is the hint for an unknown name of a kind ("stage",
// "dataset") among names: the nearest one when it is near enough to be a
// typo, else all of them ("" when there are none). --set and the stage
// flags of ftc run say it alike.
func NearestHint(name, kind string, names []string) string {
	all := append([]string(nil), names...)
	sortStrings(all)
	best, bestD := "", 1<<30
	for _, n := range all {
		if dd := editDistance(name, n); dd < bestD {
			best, bestD = n, dd
		}
	}
	switch {
	case best != "" && bestD <= max(2, len(name)/3):
		return fmt.Sprintf("did you mean %q?", best)
	case len(all) > 0:
		return fmt.Sprintf("its %ss are %s", kind, quoteAll(all))
	}
	return ""
}

func sortStrings(s []string) { sort.Strings(s) }

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}

// refNote explains an override that passes through a field whose value is
// a reference to another field of the recipe (policy: stages.sft.output):
// the override is unified with what that field gives, and cannot replace
// it; the note names the field to set instead. "" when there is none.
func refNote(files []*ast.File, labels []string) string {
	for _, f := range files {
		if n := refNoteIn(f.Decls, labels, 0); n != "" {
			return n
		}
	}
	return ""
}

func refNoteIn(decls []ast.Decl, labels []string, i int) string {
	if i >= len(labels)-1 {
		return ""
	}
	for _, d := range decls {
		fd, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		if n, _, err := ast.LabelName(fd.Label); err != nil || n != labels[i] {
			continue
		}
		var operands []ast.Expr
		var collect func(e ast.Expr)
		collect = func(e ast.Expr) {
			switch x := e.(type) {
			case *ast.BinaryExpr:
				if x.Op == token.AND {
					collect(x.X)
					collect(x.Y)
					return
				}
			case *ast.ParenExpr:
				collect(x.X)
				return
			}
			operands = append(operands, e)
		}
		collect(fd.Value)
		for _, op := range operands {
			if st, ok := op.(*ast.StructLit); ok {
				if n := refNoteIn(st.Elts, labels, i+1); n != "" {
					return n
				}
				continue
			}
			base, sels, ok := refChain(op)
			if !ok {
				continue
			}
			if _, isImport := base.Node.(*ast.ImportSpec); isImport || base.Node == nil && !isRecipeField(base.Name) {
				continue
			}
			ref := strings.Join(append([]string{base.Name}, sels...), ".")
			field := strings.Join(labels[:i+1], ".")
			rest := strings.Join(labels[i+1:], ".")
			if len(sels) == 2 && base.Name == "stages" && sels[1] == "output" {
				return fmt.Sprintf("%s is %s, which stage %q derives from its model: set stages.%s.model.%s instead", field, ref, sels[0], sels[0], rest)
			}
			return fmt.Sprintf("%s is %s: set %s.%s instead", field, ref, ref, rest)
		}
	}
	return ""
}
