//go:build cgo

package pyast

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"

	sitter "github.com/tree-sitter/go-tree-sitter"
	python "github.com/tree-sitter/tree-sitter-python/bindings/go"
)

var language = sync.OnceValue(func() *sitter.Language { return sitter.NewLanguage(python.Language()) })

// Parse reads the module-level bindings and the syntax errors of a Python
// source file. The error is non-nil only when there is no parser.
func Parse(src []byte) (*Module, error) {
	p := sitter.NewParser()
	defer p.Close()
	if err := p.SetLanguage(language()); err != nil {
		return nil, err
	}
	tree := p.Parse(src, nil)
	defer tree.Close()
	root := tree.RootNode()
	r := &reader{src: src, m: &Module{}}
	r.statements(root)
	r.errors(root)
	if len(r.parseErrs) > 0 {
		// A bracket left open or closed by the wrong one is the cause of
		// the parse errors around it, and says more than they do.
		if e, ok := r.brackets(root); ok {
			r.parseErrs = []SyntaxError{e}
		}
		r.m.Errors = append(r.m.Errors, r.parseErrs...)
	}
	sortErrors(r.m)
	return r.m, nil
}

type reader struct {
	src       []byte
	m         *Module
	parseErrs []SyntaxError // from tree-sitter's ERROR and MISSING nodes
}

var closing = map[string]string{"(": ")", "[": "]", "{": "}"}

// brackets matches the bracket tokens of the tree (those in strings and
// comments are not tokens) and returns the first mismatch, worded as
// CPython's tokenizer words it.
func (r *reader) brackets(root *sitter.Node) (SyntaxError, bool) {
	type open struct {
		kind string
		pos  Pos
	}
	var stack []open
	c := root.Walk()
	defer c.Close()
	for {
		n := c.Node()
		if n.ChildCount() == 0 && !n.IsMissing() {
			switch k := n.Kind(); k {
			case "(", "[", "{":
				stack = append(stack, open{k, pos(n)})
			case ")", "]", "}":
				if len(stack) == 0 {
					return SyntaxError{pos(n), "unmatched '" + k + "'"}, true
				}
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if closing[top.kind] != k {
					msg := fmt.Sprintf("closing parenthesis '%s' does not match opening parenthesis '%s'", k, top.kind)
					if top.pos.Line != pos(n).Line {
						msg += fmt.Sprintf(" on line %d", top.pos.Line)
					}
					return SyntaxError{pos(n), msg}, true
				}
			}
		}
		if c.GotoFirstChild() {
			continue
		}
		for !c.GotoNextSibling() {
			if !c.GotoParent() {
				if len(stack) > 0 {
					return SyntaxError{stack[len(stack)-1].pos, "'" + stack[len(stack)-1].kind + "' was never closed"}, true
				}
				return SyntaxError{}, false
			}
		}
	}
}

func (r *reader) text(n *sitter.Node) string { return n.Utf8Text(r.src) }

func pos(n *sitter.Node) Pos {
	p := n.StartPosition()
	return Pos{Offset: int(n.StartByte()), Line: int(p.Row) + 1, Col: int(p.Column) + 1}
}

func named(n *sitter.Node) []*sitter.Node {
	var out []*sitter.Node
	for i := uint(0); i < n.NamedChildCount(); i++ {
		if c := n.NamedChild(i); c != nil && c.Kind() != "comment" {
			out = append(out, c)
		}
	}
	return out
}

// fieldAll returns the children of n in field name.
func fieldAll(n *sitter.Node, name string) []sitter.Node {
	c := n.Walk()
	defer c.Close()
	return n.ChildrenByFieldName(name, c)
}

// compound holds the statements and clauses whose blocks run at module
// level when they stand there.
var compound = map[string]bool{
	"if_statement": true, "elif_clause": true, "else_clause": true,
	"try_statement": true, "except_clause": true, "except_group_clause": true, "finally_clause": true,
	"with_statement": true, "for_statement": true, "while_statement": true,
	"match_statement": true, "case_clause": true, "block": true,
}

// statements records the bindings of the statements under n.
func (r *reader) statements(n *sitter.Node) {
	for _, s := range named(n) {
		switch k := s.Kind(); {
		case k == "function_definition":
			r.function(s, false)
		case k == "class_definition":
			r.bind(s.ChildByFieldName("name"), Class, nil, false)
		case k == "decorated_definition":
			if d := s.ChildByFieldName("definition"); d != nil {
				if d.Kind() == "function_definition" {
					r.function(d, true)
				} else {
					r.bind(d.ChildByFieldName("name"), Class, nil, true)
				}
			}
		case k == "expression_statement":
			for _, e := range named(s) {
				if e.Kind() == "assignment" {
					r.assignment(e)
				}
			}
		case k == "import_statement":
			for _, c := range fieldAll(s, "name") {
				if c.Kind() == "aliased_import" {
					r.bind(c.ChildByFieldName("alias"), Import, nil, false)
				} else if first := c.NamedChild(0); first != nil {
					r.bind(first, Import, nil, false) // import a.b binds a
				}
			}
		case k == "import_from_statement":
			for _, c := range named(s) {
				if c.Kind() == "wildcard_import" {
					r.m.StarImport = true
				}
			}
			for _, c := range fieldAll(s, "name") {
				if c.Kind() == "aliased_import" {
					r.bind(c.ChildByFieldName("alias"), Import, nil, false)
				} else if ids := named(&c); len(ids) > 0 {
					r.bind(ids[len(ids)-1], Import, nil, false)
				}
			}
		case k == "for_statement":
			r.targets(s.ChildByFieldName("left"), Assignment)
			r.statements(s)
		case k == "with_statement":
			r.withTargets(s)
			r.statements(s)
		case compound[k]:
			r.statements(s)
		}
	}
}

func (r *reader) bind(name *sitter.Node, kind BindingKind, params []Param, decorated bool) {
	if name == nil || name.Kind() != "identifier" {
		return
	}
	r.m.Bindings = append(r.m.Bindings, Binding{Name: r.text(name), Kind: kind, Params: params, Decorated: decorated, Pos: pos(name)})
}

func (r *reader) function(d *sitter.Node, decorated bool) {
	var params []Param
	if ps := d.ChildByFieldName("parameters"); ps != nil {
		params = r.params(ps)
	}
	r.bind(d.ChildByFieldName("name"), Function, params, decorated)
}

// assignment binds the targets of a = b = value; a lambda value keeps its
// parameters.
func (r *reader) assignment(a *sitter.Node) {
	var lefts []*sitter.Node
	right := a
	for right != nil && right.Kind() == "assignment" {
		if l := right.ChildByFieldName("left"); l != nil {
			lefts = append(lefts, l)
		}
		right = right.ChildByFieldName("right")
	}
	if right == nil {
		return // an annotation alone (x: int) binds nothing
	}
	if right.Kind() == "lambda" {
		var params []Param
		if ps := right.ChildByFieldName("parameters"); ps != nil {
			params = r.params(ps)
		}
		for _, l := range lefts {
			if l.Kind() == "identifier" {
				r.bind(l, Lambda, params, false)
			} else {
				r.targets(l, Assignment)
			}
		}
		return
	}
	for _, l := range lefts {
		r.targets(l, Assignment)
	}
}

// targets binds the names of an assignment target: a name, or the names in
// a tuple or list of targets; attributes and subscripts bind no name.
func (r *reader) targets(t *sitter.Node, kind BindingKind) {
	if t == nil {
		return
	}
	switch t.Kind() {
	case "identifier":
		r.bind(t, kind, nil, false)
	case "pattern_list", "tuple_pattern", "list_pattern", "list_splat_pattern", "parenthesized_expression", "expression_list", "tuple", "list":
		for _, c := range named(t) {
			r.targets(c, kind)
		}
	}
}

func (r *reader) withTargets(s *sitter.Node) {
	var walk func(n *sitter.Node)
	walk = func(n *sitter.Node) {
		for _, c := range named(n) {
			switch c.Kind() {
			case "as_pattern_target":
				for _, t := range named(c) {
					r.targets(t, Assignment)
				}
			case "with_clause", "with_item", "as_pattern":
				walk(c)
			}
		}
	}
	walk(s)
}

// params reads a parameters or lambda_parameters node.
func (r *reader) params(ps *sitter.Node) []Param {
	var out []Param
	var bareStar *Pos
	kind := PositionalOrKeyword
	for _, c := range named(ps) {
		p := Param{Kind: kind, Pos: pos(c)}
		n := c
		switch c.Kind() {
		case "default_parameter", "typed_default_parameter":
			p.HasDefault = true
			n = c.ChildByFieldName("name")
		case "typed_parameter":
			n = c.NamedChild(0)
		case "positional_separator":
			for i := range out {
				out[i].Kind = PositionalOnly
			}
			continue
		case "keyword_separator":
			at := pos(c)
			bareStar = &at
			kind = KeywordOnly
			continue
		}
		if n == nil {
			continue
		}
		switch n.Kind() {
		case "list_splat_pattern":
			p.Kind = VarPositional
			kind = KeywordOnly
			n = n.NamedChild(0)
		case "dictionary_splat_pattern":
			p.Kind = VarKeyword
			n = n.NamedChild(0)
		}
		if n == nil || n.Kind() != "identifier" {
			continue // a Python 2 tuple parameter is reported as an error
		}
		p.Name = r.text(n)
		out = append(out, p)
	}
	checkParams(r.m, out, bareStar)
	return out
}

// errors records the nodes tree-sitter could not parse, and the statements
// it parses but Python 3 refuses.
func (r *reader) errors(root *sitter.Node) {
	c := root.Walk()
	defer c.Close()
	for {
		n := c.Node()
		descend := n.HasError()
		switch {
		case n.IsMissing():
			r.parseErrs = append(r.parseErrs, SyntaxError{pos(n), "expected " + describe(n.Kind())})
		case n.IsError():
			// An ERROR node may wrap much valid code around the fault
			// (up to the whole module): report its first inner fault.
			descend = childHasError(n)
			if !descend {
				r.parseErrs = append(r.parseErrs, SyntaxError{pos(n), "invalid syntax" + r.near(n)})
			}
		case n.Kind() == "print_statement":
			r.m.Errors = append(r.m.Errors, SyntaxError{pos(n), "Missing parentheses in call to 'print'. Did you mean print(...)?"})
		case n.Kind() == "exec_statement":
			r.m.Errors = append(r.m.Errors, SyntaxError{pos(n), "Missing parentheses in call to 'exec'"})
		case n.Kind() == "tuple_pattern" && n.Parent() != nil && strings.HasSuffix(n.Parent().Kind(), "parameters"):
			r.m.Errors = append(r.m.Errors, SyntaxError{pos(n), "tuple parameters are Python 2 only"})
		case n.Kind() == "identifier" && keywords[r.text(n)]:
			r.m.Errors = append(r.m.Errors, SyntaxError{pos(n), "invalid syntax: " + strconv.Quote(r.text(n)) + " is a keyword"})
		default:
			if n.Kind() == "argument_list" {
				r.keywordArguments(n)
			}
			if k := n.Kind(); k == "module" || k == "block" {
				r.indentation(n)
			}
			descend = true
		}
		if descend && c.GotoFirstChild() {
			continue
		}
		for !c.GotoNextSibling() {
			if !c.GotoParent() {
				return
			}
		}
	}
}

// keywordArguments reports a keyword given twice in one call.
func (r *reader) keywordArguments(n *sitter.Node) {
	seen := map[string]bool{}
	for _, a := range named(n) {
		if a.Kind() != "keyword_argument" {
			continue
		}
		if name := a.ChildByFieldName("name"); name != nil {
			k := r.text(name)
			if seen[k] {
				r.m.Errors = append(r.m.Errors, SyntaxError{pos(a), "keyword argument repeated: " + k})
			}
			seen[k] = true
		}
	}
}

// keywords are Python's reserved words, which tree-sitter accepts as
// names in some places.
var keywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields("False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield") {
		keywords[k] = true
	}
}

// indentation checks that the statements of a module or block that begin
// a line begin it at one column: tree-sitter accepts a stray indent or
// dedent that Python refuses.
func (r *reader) indentation(n *sitter.Node) {
	want := -1
	if n.Kind() == "module" {
		want = 0
	}
	header := -1
	if p := n.Parent(); n.Kind() == "block" && p != nil {
		header = r.indentOf(int(p.StartByte()))
	}
	stmts := named(n)
	if n.Kind() == "block" && len(stmts) == 0 && n.Parent() != nil {
		r.m.Errors = append(r.m.Errors, SyntaxError{r.nextToken(int(n.EndByte())), fmt.Sprintf("expected an indented block after line %d", n.Parent().StartPosition().Row+1)})
		return
	}
	var prev *sitter.Node
	for _, s := range stmts {
		p := pos(s)
		last := prev
		prev = s
		if !r.startsLine(p) {
			continue
		}
		col := p.Col - 1
		switch {
		case want < 0 && col <= header:
			r.m.Errors = append(r.m.Errors, SyntaxError{p, fmt.Sprintf("expected an indented block after line %d", n.Parent().StartPosition().Row+1)})
			return
		case want < 0:
			want = col
		case col > want && last != nil && col < r.indentOf(int(last.EndByte())):
			// Back out of the previous statement's block, but not
			// back to this one's column.
			r.m.Errors = append(r.m.Errors, SyntaxError{p, "unindent does not match any outer indentation level"})
			return
		case col > want:
			r.m.Errors = append(r.m.Errors, SyntaxError{p, "unexpected indent"})
			return
		case col < want:
			r.m.Errors = append(r.m.Errors, SyntaxError{p, "unindent does not match any outer indentation level"})
			return
		}
	}
}

// indentOf returns the indentation of the line holding offset.
func (r *reader) indentOf(offset int) int {
	start := offset
	for start > 0 && r.src[start-1] != '\n' {
		start--
	}
	i := start
	for i < len(r.src) && (r.src[i] == ' ' || r.src[i] == '\t' || r.src[i] == '\f') {
		i++
	}
	return i - start
}

// nextToken returns the position of the first character from offset on
// that is neither blank nor in a comment.
func (r *reader) nextToken(offset int) Pos {
	i := offset
	for i < len(r.src) {
		switch c := r.src[i]; {
		case c == ' ' || c == '\t' || c == '\f' || c == '\r' || c == '\n':
			i++
			continue
		case c == '#':
			for i < len(r.src) && r.src[i] != '\n' {
				i++
			}
			continue
		}
		break
	}
	p := Pos{Offset: i, Line: 1 + bytes.Count(r.src[:i], []byte("\n"))}
	p.Col = i - (bytes.LastIndexByte(r.src[:i], '\n') + 1) + 1
	return p
}

// startsLine reports whether only blanks stand before p on its line.
func (r *reader) startsLine(p Pos) bool {
	return strings.Trim(string(r.src[p.Offset-(p.Col-1):p.Offset]), " \t\f") == ""
}

func childHasError(n *sitter.Node) bool {
	for i := uint(0); i < n.ChildCount(); i++ {
		if c := n.Child(i); c != nil && (c.HasError() || c.IsMissing()) {
			return true
		}
	}
	return false
}

// near quotes the start of an ERROR node's text.
func (r *reader) near(n *sitter.Node) string {
	s := r.text(n)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if len(s) > 30 {
		s = s[:30] + "…"
	}
	if s == "" {
		return ""
	}
	return " at " + strconv.Quote(s)
}

// describe names a missing token: a name, or the token in quotes.
func describe(kind string) string {
	if kind == "identifier" {
		return "a name"
	}
	return strconv.Quote(kind)
}
