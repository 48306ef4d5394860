package pyast

import (
	"errors"
	"sort"
)

// ErrNoParser is returned by Parse when this build has no Python parser
// (it was built without cgo).
var ErrNoParser = errors.New("this ftc was built without cgo, and its Python parser needs cgo")

// Pos is a position in the source: a byte offset and the 1-based line and
// column (in bytes) it stands at.
type Pos struct {
	Offset, Line, Col int
}

// ParamKind is how a parameter can be passed.
type ParamKind int

const (
	// PositionalOnly parameters stand before a "/".
	PositionalOnly ParamKind = iota
	// PositionalOrKeyword is a plain parameter.
	PositionalOrKeyword
	// VarPositional is *args.
	VarPositional
	// KeywordOnly parameters follow *args or a bare "*".
	KeywordOnly
	// VarKeyword is **kwargs.
	VarKeyword
)

func (k ParamKind) String() string {
	switch k {
	case PositionalOnly:
		return "positional-only"
	case PositionalOrKeyword:
		return "positional-or-keyword"
	case VarPositional:
		return "*args"
	case KeywordOnly:
		return "keyword-only"
	case VarKeyword:
		return "**kwargs"
	}
	return "unknown"
}

// Param is one parameter of a function or lambda.
type Param struct {
	Name       string
	Kind       ParamKind
	HasDefault bool
	Pos        Pos
}

// BindingKind says what bound a module-level name.
type BindingKind int

const (
	// Function is a def or async def (possibly decorated).
	Function BindingKind = iota
	// Lambda is an assignment of a lambda expression: NAME = lambda ...: ...
	Lambda
	// Class is a class statement.
	Class
	// Assignment is any other assignment target (NAME = make_reward(400)).
	Assignment
	// Import is an import or from-import (import m as NAME, from m import NAME).
	Import
)

func (k BindingKind) String() string {
	switch k {
	case Function:
		return "function"
	case Lambda:
		return "lambda"
	case Class:
		return "class"
	case Assignment:
		return "assignment"
	case Import:
		return "import"
	}
	return "unknown"
}

// Binding is one module-level binding of a name.
type Binding struct {
	Name string
	Kind BindingKind
	// Params are the parameters of a Function or Lambda, in order.
	Params []Param
	// Decorated is set for a decorated function or class: the name is
	// bound to what the decorators return, which usually but not always
	// keeps the signature.
	Decorated bool
	// Pos is where the name is bound.
	Pos Pos
}

// HasSignature reports whether the binding's parameters are known: it is
// a function or a lambda. An assignment or import binds a value whose
// signature cannot be known without running Python.
func (b *Binding) HasSignature() bool { return b.Kind == Function || b.Kind == Lambda }

// SyntaxError is a place where the source is not valid Python.
type SyntaxError struct {
	Pos Pos
	Msg string
}

func (e SyntaxError) Error() string { return e.Msg }

// Module is what Parse reads from a file.
type Module struct {
	// Bindings are the module-level bindings in source order; a name may
	// appear more than once.
	Bindings []Binding
	// StarImport is set when the module has "from m import *": it may
	// bind names that cannot be listed.
	StarImport bool
	// Errors are the syntax errors, in source order. When there are any,
	// Bindings may be incomplete.
	Errors []SyntaxError
}

// Lookup returns the last module-level binding of name, the one Python
// sees after running the module, or nil.
func (m *Module) Lookup(name string) *Binding {
	for i := len(m.Bindings) - 1; i >= 0; i-- {
		if m.Bindings[i].Name == name {
			return &m.Bindings[i]
		}
	}
	return nil
}

// Names returns the sorted names whose last binding is of one of kinds.
func (m *Module) Names(kinds ...BindingKind) []string {
	last := map[string]BindingKind{}
	for _, b := range m.Bindings {
		last[b.Name] = b.Kind
	}
	var out []string
	for name, k := range last {
		for _, want := range kinds {
			if k == want {
				out = append(out, name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// checkParams adds the errors CPython reports for a parameter list that
// tree-sitter accepts.
func checkParams(m *Module, ps []Param, bareStar *Pos) {
	seen := map[string]bool{}
	sawDefault := false
	for _, p := range ps {
		if seen[p.Name] {
			m.Errors = append(m.Errors, SyntaxError{p.Pos, "duplicate argument '" + p.Name + "' in function definition"})
		}
		seen[p.Name] = true
		if p.Kind == PositionalOnly || p.Kind == PositionalOrKeyword {
			if p.HasDefault {
				sawDefault = true
			} else if sawDefault {
				m.Errors = append(m.Errors, SyntaxError{p.Pos, "parameter without a default follows parameter with a default"})
			}
		}
	}
	if bareStar != nil {
		for _, p := range ps {
			if p.Kind == KeywordOnly {
				return
			}
		}
		m.Errors = append(m.Errors, SyntaxError{*bareStar, "named arguments must follow bare *"})
	}
}

func sortErrors(m *Module) {
	sort.SliceStable(m.Errors, func(i, j int) bool { return m.Errors[i].Pos.Offset < m.Errors[j].Pos.Offset })
}
