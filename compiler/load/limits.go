package load

import (
	"fmt"

	"cuelang.org/go/cue/ast"

	"github.com/ftc-dev/ftc/compiler/diag"
)

// MaxFields is the most fields one struct of a recipe may have (datasets,
// stages, columns, packages, ...). CUE v0.17 finds a struct's field by
// scanning the ones it has (adt's getArc, findConjunct), so evaluating a
// struct of n fields takes time in n²: 1,000 datasets vet in 0.3 s, 4,000
// in 1.6 s, 30,000 in 15-25 s. Real recipes have a handful; the bound
// keeps every recipe's vet within two seconds.
const MaxFields = 1000

// tooManyFields reports the structs of the user's files with more than
// MaxFields fields, at the first field past the bound. Declarations of
// the same struct in several places count together.
func tooManyFields(files []*ast.File) diag.List {
	labels := map[string]map[string]bool{}
	reported := map[string]bool{}
	var out diag.List
	var decls func(prefix string, ds []ast.Decl)
	var expr func(path string, e ast.Expr)
	decls = func(prefix string, ds []ast.Decl) {
		for _, d := range ds {
			switch x := d.(type) {
			case *ast.Field:
				name, _, err := ast.LabelName(x.Label)
				if err != nil {
					continue
				}
				set := labels[prefix]
				if set == nil {
					set = map[string]bool{}
					labels[prefix] = set
				}
				if !set[name] {
					set[name] = true
					if len(set) > MaxFields && !reported[prefix] {
						reported[prefix] = true
						what := prefix
						if what == "" {
							what = "the recipe"
						}
						out.Add(&diag.Diagnostic{Pos: x.Pos(), Path: join(prefix, name),
							Message: fmt.Sprintf("%s has more than %d fields", what, MaxFields),
							Hint:    fmt.Sprintf("ftc vets at most %d fields in one struct (datasets, stages, ...): split the recipe", MaxFields)})
					}
				}
				expr(join(prefix, name), x.Value)
			case *ast.EmbedDecl:
				expr(prefix, x.Expr)
			}
		}
	}
	expr = func(path string, e ast.Expr) {
		switch x := e.(type) {
		case *ast.StructLit:
			decls(path, x.Elts)
		case *ast.BinaryExpr:
			expr(path, x.X)
			expr(path, x.Y)
		case *ast.ParenExpr:
			expr(path, x.X)
		case *ast.ListLit:
			for i, el := range x.Elts {
				expr(join(path, fmt.Sprint(i)), el)
			}
		}
	}
	for _, f := range files {
		decls("", f.Decls)
	}
	return out
}
