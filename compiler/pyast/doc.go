// Package pyast reads the top level of a Python source file: the names it
// binds (functions with their parameters, classes, assignments, imports)
// and its syntax errors, each at its line and column. The recipe checks
// use it to see, without running Python, that a reward function's file
// would import and that the function can be called the way trl calls it.
//
// The parser is tree-sitter's Python grammar (github.com/tree-sitter/
// go-tree-sitter with github.com/tree-sitter/tree-sitter-python), a cgo
// package. It was chosen over a pure-Go parser because none fits: the one
// maintained pure-Go Python parser (go-python/gpython) follows Python 3.4's
// grammar, without f-strings, the walrus operator, positional-only
// parameters or match, all of which reward files use; writing a full
// Python 3.12 parser here would be a second grammar to keep up with
// Python. Its cost: a C compiler at build time, and about 1 ms to parse a
// 2 KB file (BenchmarkParseExample). tree-sitter-python follows current Python (async def, decorators,
// PEP 604 unions, PEP 695 type parameters, except*, match), is what editors
// use, recovers from errors and marks them with ERROR and MISSING nodes,
// which become SyntaxErrors here. Parsing is pure: no files, no processes.
//
// What tree-sitter accepts but CPython refuses is checked here where it
// matters to a signature or is common: duplicate parameter names, a
// parameter without a default after one with a default, a bare * with no
// keyword-only parameter after it, and Python 2's print and exec
// statements. Other compile-time errors that CPython finds after parsing
// (return outside a function, assignment to a literal) are not reported.
//
// Without cgo (CGO_ENABLED=0, as when cross-compiling with GOOS=darwin)
// the package still builds, and Parse returns ErrNoParser; callers say
// that the file was not checked.
//
// What a name is bound to is read only as far as the source says it
// without running anything: a def's or a lambda's parameters. A name bound
// by an import, a class, or any other assignment (a factory's result,
// functools.partial(f, ...)) is a Binding without a signature.
//
// A name bound more than once keeps its last binding, as Python does when
// it runs the module top to bottom. Bindings inside top-level if, try,
// with, for, while and match blocks are module-level too; which branch
// runs is not known, so the last one in the source wins there as well.
package pyast
