package load

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"

	"github.com/ftc-dev/ftc/compiler/diag"
)

// Reference cycles are found in the user's syntax before CUE sees the
// recipe with the schema. A stage whose model is its own output, or two
// stages that take each other's output, make CUE's evaluator (v0.17) run
// without end and without bound on memory: the schema derives a stage's
// output from its model, so the output is defined by itself. Checking the
// references here is cheap (linear in the recipe) and names each
// reference of the cycle where the user wrote it.

// ref is one reference the user wrote: the field at from refers to the
// recipe path to.
type ref struct {
	from string
	to   string
	pos  token.Pos
}

// step is one node of the search: a recipe path, and the reference that
// led to it (nil for the schema's derivation of a stage's output from its
// model).
type step struct {
	path string
	via  *ref
}

// refGraph holds the user's references by the path of the field whose
// value holds them.
type refGraph struct {
	at map[string][]*ref
	// under holds, for each path, the references written anywhere below
	// it: a reference to a struct depends on all of its fields.
	under map[string][]*ref
}

// maxCycleSteps bounds the search, so that no recipe makes it slow;
// beyond it the recipe is left to CUE (and the CLI's last-resort bound).
const maxCycleSteps = 200000

// maxRefDepth bounds the paths the search follows; a reference into
// itself (`a: a.b`) would otherwise grow a path without end.
const maxRefDepth = 64

// stageModelFields are the fields a stage's output is derived from (the
// schema's #Stage: model, or policy for PPO).
var stageModelFields = []string{"model", "policy"}

// referenceCycles reports every cycle of references among the user's
// files, each reference of a cycle at its position.
func referenceCycles(files []*ast.File) diag.List {
	g := collectRefs(files)
	if len(g.at) == 0 {
		return nil
	}
	var starts []*ref
	for _, rs := range g.at {
		starts = append(starts, rs...)
	}
	// A fixed order: cycles are found, and so reported, the same way on
	// every run.
	sort.Slice(starts, func(i, j int) bool { return starts[i].pos.Compare(starts[j].pos) < 0 })

	done := map[string]bool{}
	reported := map[token.Pos]bool{}
	steps := 0
	var out diag.List
	for _, s := range starts {
		if reported[s.pos] || done[s.from] || steps > maxCycleSteps {
			continue
		}
		stack := []step{{path: s.from}}
		onStack := map[string]bool{s.from: true}
		var visit func(p string) bool
		visit = func(p string) bool {
			steps++
			if steps > maxCycleSteps || strings.Count(p, ".") > maxRefDepth {
				return false
			}
			for _, next := range g.deps(p) {
				if i := cycleStart(stack, next.path); i >= 0 {
					cyc := append(append([]step{}, stack[i+1:]...), next)
					for _, d := range cycleDiags(cyc) {
						if !reported[d.Pos] {
							reported[d.Pos] = true
							out.Add(d)
						}
					}
					return true
				}
				if done[next.path] || onStack[next.path] {
					continue
				}
				stack = append(stack, next)
				onStack[next.path] = true
				found := visit(next.path)
				stack = stack[:len(stack)-1]
				delete(onStack, next.path)
				if found {
					return true
				}
				done[next.path] = true
			}
			return false
		}
		if !visit(s.from) {
			done[s.from] = true
		}
	}
	return out
}

// cycleStart is the index of the stack node that p closes a cycle with:
// p is that node, or a structure holding it (which then contains itself),
// or -1.
func cycleStart(stack []step, p string) int {
	for i, n := range stack {
		if n.path == p || strings.HasPrefix(n.path, p+".") {
			return i
		}
	}
	return -1
}

// deps are the paths the value at p depends on, each with the reference
// (or schema derivation) that makes it so.
func (g refGraph) deps(p string) []step {
	var out []step
	// References written at p or anywhere inside it.
	for _, r := range g.at[p] {
		out = append(out, step{path: r.to, via: r})
	}
	for _, r := range g.under[p] {
		out = append(out, step{path: r.to, via: r})
	}
	// A reference at an enclosing field: p is selected from what it names.
	parts := strings.Split(p, ".")
	for n := len(parts) - 1; n >= 1; n-- {
		prefix := strings.Join(parts[:n], ".")
		for _, r := range g.at[prefix] {
			out = append(out, step{path: r.to + "." + strings.Join(parts[n:], "."), via: r})
		}
	}
	// The schema derives stages.S.output from the stage's model.
	if len(parts) >= 3 && parts[0] == "stages" && parts[2] == "output" {
		rest := strings.Join(parts[3:], ".")
		for _, f := range stageModelFields {
			q := "stages." + parts[1] + "." + f
			if rest != "" {
				q += "." + rest
			}
			out = append(out, step{path: q})
		}
	}
	return out
}

// cycleDiags words the diagnostics of one cycle: one per reference the
// user wrote, at it. cyc holds the cycle's steps in order; the last one
// closes it.
func cycleDiags(cyc []step) diag.List {
	// The stages whose derived output is part of the cycle, in order; a
	// reference belongs to the stage whose model it helps to define,
	// i.e. the stage of the derivation before it.
	var stages []string
	owner := make([]int, len(cyc))
	for i, s := range cyc {
		if s.via == nil {
			stages = append(stages, stageOf(cyc[(i+len(cyc)-1)%len(cyc)].path))
		}
		owner[i] = len(stages) - 1
	}
	// References before the first derivation belong to the last stage.
	for i := range owner {
		if owner[i] < 0 {
			owner[i] = len(stages) - 1
		}
	}
	var out diag.List
	for i, s := range cyc {
		if s.via == nil {
			continue
		}
		d := &diag.Diagnostic{Pos: s.via.pos, Path: s.via.from}
		switch {
		case len(stages) == 1:
			d.Message = fmt.Sprintf("stage %q uses its own output", stages[0])
			d.Hint = "a stage's model is a Hub model or the output of another stage"
		case len(stages) > 1:
			k := owner[i]
			var b strings.Builder
			fmt.Fprintf(&b, "stage %q uses the output of %q", stages[k], stages[(k+1)%len(stages)])
			for j := 2; j <= len(stages); j++ {
				fmt.Fprintf(&b, ", which uses the output of %q", stages[(k+j)%len(stages)])
			}
			d.Message = b.String()
			d.Hint = "stages must form a chain without cycles: one of them needs a Hub model"
		case len(cyc) == 1 && strings.HasPrefix(s.via.from, s.via.to+"."):
			d.Message = fmt.Sprintf("refers to %s, which contains it: a structure cannot contain itself", s.via.to)
		default:
			// A cycle among plain references, written from this one.
			names := []string{s.via.from}
			for j := 1; j < len(cyc); j++ {
				if v := cyc[(i+j)%len(cyc)].via; v != nil {
					names = append(names, v.from)
				}
			}
			names = append(names, s.via.from)
			d.Message = "reference cycle: " + strings.Join(names, " → ")
		}
		out.Add(d)
	}
	return out
}

// stageOf is S of a path stages.S...., the path itself otherwise.
func stageOf(p string) string {
	parts := strings.Split(p, ".")
	if len(parts) >= 2 && parts[0] == "stages" {
		return parts[1]
	}
	return p
}

// collectRefs walks the user's files and records each reference with the
// absolute recipe path of the field that holds it and of what it names.
// Only references the parser resolved to a field of the recipe (or a let
// clause) are followed; imports and comprehension variables are not
// references into the recipe.
func collectRefs(files []*ast.File) refGraph {
	type raw struct {
		from string
		base *ast.Ident
		sels []string
		pos  token.Pos
	}
	var raws []raw
	nodePath := map[ast.Node]string{}
	topLevel := map[string]bool{}

	var expr func(from string, e ast.Expr)
	var decls func(prefix string, ds []ast.Decl)
	decls = func(prefix string, ds []ast.Decl) {
		for _, d := range ds {
			switch x := d.(type) {
			case *ast.Field:
				name, _, err := ast.LabelName(x.Label)
				if err != nil {
					// A pattern or computed label: its value has no fixed
					// path; references inside are not followed.
					continue
				}
				p := join(prefix, name)
				if prefix == "" {
					topLevel[name] = true
				}
				v := x.Value
				if a, ok := v.(*ast.Alias); ok {
					v = a.Expr
				}
				nodePath[v] = p
				expr(p, v)
			case *ast.LetClause:
				p := join(prefix, "let "+x.Ident.Name+"@"+x.Pos().String())
				nodePath[x] = p
				expr(p, x.Expr)
			case *ast.EmbedDecl:
				expr(prefix, x.Expr)
			case *ast.Comprehension:
				// The value's fields are added to prefix's struct.
				if st, ok := x.Value.(*ast.StructLit); ok {
					decls(prefix, st.Elts)
				}
			}
		}
	}
	expr = func(from string, e ast.Expr) {
		switch x := e.(type) {
		case nil:
		case *ast.StructLit:
			decls(from, x.Elts)
		case *ast.ListLit:
			for i, el := range x.Elts {
				expr(join(from, strconv.Itoa(i)), el)
			}
		case *ast.Ident, *ast.SelectorExpr, *ast.IndexExpr:
			if base, sels, ok := refChain(e); ok {
				raws = append(raws, raw{from: from, base: base, sels: sels, pos: e.Pos()})
				return
			}
			switch x := e.(type) {
			case *ast.SelectorExpr:
				expr(from, x.X)
			case *ast.IndexExpr:
				expr(from, x.X)
				expr(from, x.Index)
			}
		case *ast.BinaryExpr:
			expr(from, x.X)
			expr(from, x.Y)
		case *ast.UnaryExpr:
			expr(from, x.X)
		case *ast.ParenExpr:
			expr(from, x.X)
		case *ast.CallExpr:
			expr(from, x.Fun)
			for _, a := range x.Args {
				expr(from, a)
			}
		case *ast.SliceExpr:
			expr(from, x.X)
			expr(from, x.Low)
			expr(from, x.High)
		case *ast.Interpolation:
			for _, el := range x.Elts {
				expr(from, el)
			}
		case *ast.Comprehension:
			if st, ok := x.Value.(*ast.StructLit); ok {
				decls(from, st.Elts)
			}
		}
	}
	for _, f := range files {
		decls("", f.Decls)
	}

	g := refGraph{at: map[string][]*ref{}, under: map[string][]*ref{}}
	for _, r := range raws {
		var base string
		switch n := r.base.Node.(type) {
		case nil:
			// Unresolved in its own file: a top-level field of another
			// file of the package.
			if !topLevel[r.base.Name] {
				continue
			}
			base = r.base.Name
		default:
			p, ok := nodePath[n]
			if !ok {
				continue // an import, a comprehension variable, an alias
			}
			base = p
		}
		to := base
		for _, s := range r.sels {
			to = join(to, s)
		}
		rr := &ref{from: r.from, to: to, pos: r.pos}
		g.at[r.from] = append(g.at[r.from], rr)
		parts := strings.Split(r.from, ".")
		for n := 1; n < len(parts); n++ {
			p := strings.Join(parts[:n], ".")
			g.under[p] = append(g.under[p], rr)
		}
	}
	return g
}

// refChain splits a reference such as stages.sft.output or
// stages["sft"].output into its identifier and the labels selected from
// it.
func refChain(e ast.Expr) (*ast.Ident, []string, bool) {
	var sels []string
	for {
		switch x := e.(type) {
		case *ast.Ident:
			for i, j := 0, len(sels)-1; i < j; i, j = i+1, j-1 {
				sels[i], sels[j] = sels[j], sels[i]
			}
			return x, sels, true
		case *ast.SelectorExpr:
			name, _, err := ast.LabelName(x.Sel)
			if err != nil {
				return nil, nil, false
			}
			sels = append(sels, name)
			e = x.X
		case *ast.IndexExpr:
			lit, ok := x.Index.(*ast.BasicLit)
			if !ok {
				return nil, nil, false
			}
			switch lit.Kind {
			case token.STRING:
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					return nil, nil, false
				}
				sels = append(sels, s)
			case token.INT:
				sels = append(sels, lit.Value)
			default:
				return nil, nil, false
			}
			e = x.X
		default:
			return nil, nil, false
		}
	}
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}
