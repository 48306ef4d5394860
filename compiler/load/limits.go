package load

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"

	"github.com/ftc-dev/ftc/compiler/diag"
)

// MaxFields is the most fields one struct of a recipe may have (datasets,
// stages, columns, packages, ...). CUE v0.17 finds a struct's field by
// scanning the ones it has (adt's getArc, findConjunct), so evaluating a
// struct of n fields takes time in n²: 1,000 datasets vet in 0.3 s, 4,000
// in 1.6 s, 30,000 in 15-25 s. Real recipes have a handful; the bound
// keeps every recipe's vet within two seconds.
const MaxFields = 1000

// MaxTotalFields is the most fields and list elements a recipe may have
// in all. Evaluation time is linear in them, about 1 s per 60,000 on CI's
// machine (900 datasets with 300 renamed columns each, 3.7 MB, took
// 4.7 s); real recipes have a few hundred.
const MaxTotalFields = 50000

// MaxStages is the most stages a recipe may have. CUE derives each
// stage's output from its model, and a chain of stages that each train
// on the previous one's output takes it a time that grows with about the
// cube of its length: on CI's machine under load, 50 chained stages vet
// in 0.7 s, 100 in 2.0 s, 150 in 5 s, 999 in a minute. Independent
// stages (a sweep written as a comprehension) are far cheaper: 200 in
// 0.4 s. 64 keeps the worst shape near one second and leaves room for a
// sweep of 64 runs sharing one prepared dataset.
const MaxStages = 64

// fieldBound is the most fields the struct at path may have.
func fieldBound(path string) int {
	if path == "stages" {
		return MaxStages
	}
	return MaxFields
}

// tooMany words the complaint about the struct at path.
func tooMany(pos token.Pos, path, field string) *diag.Diagnostic {
	if path == "stages" {
		return &diag.Diagnostic{Pos: pos, Path: join(path, field),
			Message: fmt.Sprintf("the recipe has more than %d stages", MaxStages),
			Hint:    fmt.Sprintf("ftc vets at most %d stages in one recipe: split the pipeline into recipes", MaxStages)}
	}
	what := path
	if what == "" {
		what = "the recipe"
	}
	return &diag.Diagnostic{Pos: pos, Path: join(path, field),
		Message: fmt.Sprintf("%s has more than %d fields", what, MaxFields),
		Hint:    fmt.Sprintf("ftc vets at most %d fields in one struct (datasets, columns, ...): split the recipe", MaxFields)}
}

// tooManyFields reports the structs of the user's files with more than
// MaxFields fields, at the first field past the bound. Declarations of
// the same struct in several places count together.
func tooManyFields(files []*ast.File) diag.List {
	labels := map[string]map[string]bool{}
	reported := map[string]bool{}
	total := 0
	var out diag.List
	count := func(pos token.Pos, path string) {
		total++
		if total == MaxTotalFields+1 && !reported["\x00total"] {
			reported["\x00total"] = true
			out.Add(&diag.Diagnostic{Pos: pos, Path: path,
				Message: fmt.Sprintf("the recipe has more than %d fields and list elements", MaxTotalFields),
				Hint:    fmt.Sprintf("ftc vets recipes of at most %d fields and list elements: split the recipe", MaxTotalFields)})
		}
	}
	var decls func(prefix string, ds []ast.Decl)
	var expr func(path string, e ast.Expr)
	var comprehension func(path string, x *ast.Comprehension)
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
					count(x.Pos(), join(prefix, name))
					if len(set) > fieldBound(prefix) && !reported[prefix] {
						reported[prefix] = true
						out.Add(tooMany(x.Pos(), prefix, name))
					}
				}
				expr(join(prefix, name), x.Value)
			case *ast.EmbedDecl:
				expr(prefix, x.Expr)
			case *ast.Comprehension:
				comprehension(prefix, x)
			}
		}
	}
	// A comprehension's size is known in the syntax when it iterates over
	// list literals and list.Range of constants; evaluating one that
	// makes too many fields is what takes the time.
	comprehension = func(path string, x *ast.Comprehension) {
		if n := iterations(x); n > MaxFields && !reported[path] {
			reported[path] = true
			out.Add(&diag.Diagnostic{Pos: x.Pos(), Path: path,
				Message: fmt.Sprintf("this comprehension makes %d fields or elements, more than %d", n, MaxFields),
				Hint:    fmt.Sprintf("ftc vets at most %d fields in one struct or elements in one list", MaxFields)})
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
				if i == MaxFields && !reported[path] {
					reported[path] = true
					out.Add(&diag.Diagnostic{Pos: el.Pos(), Path: join(path, fmt.Sprint(i)),
						Message: fmt.Sprintf("%s has more than %d elements", path, MaxFields),
						Hint:    fmt.Sprintf("ftc vets at most %d elements in one list", MaxFields)})
				}
				count(el.Pos(), join(path, fmt.Sprint(i)))
				if c, ok := el.(*ast.Comprehension); ok {
					comprehension(path, c)
				}
				expr(join(path, fmt.Sprint(i)), el)
			}
		}
	}
	for _, f := range files {
		decls("", f.Decls)
	}
	return out
}

// tooManyInValue is tooManyFields for what the syntax does not show:
// fields and list elements that comprehensions make (`for i in
// list.Range(0, 30000, 1) {...}`). It walks the user's value alone,
// before the schema is unified with it; lists count too (each element is
// checked against the schema one by one).
func tooManyInValue(user cue.Value) diag.List {
	var out diag.List
	total := 0
	var walk func(v cue.Value, path string, depth int)
	walk = func(v cue.Value, path string, depth int) {
		if depth > 8 || total > MaxTotalFields {
			return
		}
		if total++; total > MaxTotalFields {
			out.Add(&diag.Diagnostic{Pos: v.Pos(), Path: path,
				Message: fmt.Sprintf("the recipe has more than %d fields and list elements", MaxTotalFields),
				Hint:    fmt.Sprintf("ftc vets recipes of at most %d fields and list elements: split the recipe", MaxTotalFields)})
			return
		}
		switch v.IncompleteKind() {
		case cue.StructKind:
			it, err := v.Fields(cue.Optional(true))
			if err != nil {
				return
			}
			var kids []cue.Value
			var names []string
			for it.Next() {
				if len(kids) == fieldBound(path) {
					out.Add(tooMany(it.Value().Pos(), path, it.Selector().String()))
					return
				}
				kids = append(kids, it.Value())
				names = append(names, it.Selector().String())
			}
			for i, k := range kids {
				walk(k, join(path, names[i]), depth+1)
			}
		case cue.ListKind:
			it, err := v.List()
			if err != nil {
				return
			}
			var kids []cue.Value
			for it.Next() {
				if len(kids) == MaxFields {
					out.Add(&diag.Diagnostic{Pos: it.Value().Pos(), Path: join(path, fmt.Sprint(len(kids))),
						Message: fmt.Sprintf("%s has more than %d elements", path, MaxFields),
						Hint:    fmt.Sprintf("ftc vets at most %d elements in one list", MaxFields)})
					return
				}
				kids = append(kids, it.Value())
			}
			for i, k := range kids {
				walk(k, join(path, fmt.Sprint(i)), depth+1)
			}
		}
	}
	walk(user, "", 0)
	return out
}

// iterations is how many values a comprehension yields at most, as far as
// its for clauses show: the product of their list literals' lengths and
// list.Range counts (other sources count 1).
func iterations(x *ast.Comprehension) int64 {
	n := int64(1)
	for _, c := range x.Clauses {
		f, ok := c.(*ast.ForClause)
		if !ok {
			continue
		}
		k := int64(1)
		switch src := f.Source.(type) {
		case *ast.ListLit:
			k = int64(len(src.Elts))
		case *ast.CallExpr:
			if sel, ok := src.Fun.(*ast.SelectorExpr); ok && len(src.Args) == 3 {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "list" {
					if name, _, _ := ast.LabelName(sel.Sel); name == "Range" {
						var a [3]float64
						ok := true
						for i, arg := range src.Args {
							lit, isLit := arg.(*ast.BasicLit)
							if !isLit {
								ok = false
								break
							}
							v, err := strconv.ParseFloat(strings.ReplaceAll(lit.Value, "_", ""), 64)
							if err != nil {
								ok = false
								break
							}
							a[i] = v
						}
						if ok && a[2] != 0 {
							if c := math.Ceil((a[1] - a[0]) / a[2]); c > 0 {
								k = int64(min(c, 1e12))
							}
						}
					}
				}
			}
		}
		n *= max(k, 1)
		if n > 1e12 {
			return n
		}
	}
	return n
}
