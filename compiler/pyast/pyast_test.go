package pyast

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/internal/needs"
)

func parse(t *testing.T, src string) *Module {
	t.Helper()
	m, err := Parse([]byte(src))
	if errors.Is(err, ErrNoParser) {
		needs.Missing(t, "cgo (the Python parser is tree-sitter, in C)")
	}
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sig renders a binding's parameters as "name:kind[=]" words.
func sig(b *Binding) string {
	var w []string
	for _, p := range b.Params {
		s := p.Name + ":" + p.Kind.String()
		if p.HasDefault {
			s += "="
		}
		w = append(w, s)
	}
	return strings.Join(w, " ")
}

func TestParams(t *testing.T) {
	src := `def all_kinds(a, b=1, /, c: int = 2, *args: int, d, e=3, **kw: dict[str, int]) -> int | None:
    pass

def bare_star(x, *, y): pass

async def coro(prompts, completions, **k): pass

def commas(prompts, completions, pattern="a,b)", *, scale=1.0, **kwargs):
    return [0.0]

def annotated(prompts: list[dict[str, str]], completions: "list[str]", **kwargs) -> list[float]:
    return []

def generic[T](x: T, *xs: T) -> T: return x

def multiline(
    prompts,  # a comment, with a comma
    completions,
    **kwargs,
): pass

lam = lambda prompts, completions, *, scale=1, **kw: [scale for _ in completions]
`
	m := parse(t, src)
	if len(m.Errors) > 0 {
		t.Fatalf("errors: %v", m.Errors)
	}
	for name, want := range map[string]string{
		"all_kinds": "a:positional-only b:positional-only= c:positional-or-keyword= args:*args d:keyword-only e:keyword-only= kw:**kwargs",
		"bare_star": "x:positional-or-keyword y:keyword-only",
		"coro":      "prompts:positional-or-keyword completions:positional-or-keyword k:**kwargs",
		"commas":    "prompts:positional-or-keyword completions:positional-or-keyword pattern:positional-or-keyword= scale:keyword-only= kwargs:**kwargs",
		"annotated": "prompts:positional-or-keyword completions:positional-or-keyword kwargs:**kwargs",
		"generic":   "x:positional-or-keyword xs:*args",
		"multiline": "prompts:positional-or-keyword completions:positional-or-keyword kwargs:**kwargs",
		"lam":       "prompts:positional-or-keyword completions:positional-or-keyword scale:keyword-only= kw:**kwargs",
	} {
		b := m.Lookup(name)
		if b == nil {
			t.Errorf("%s not found", name)
			continue
		}
		if !b.HasSignature() {
			t.Errorf("%s: no signature (%v)", name, b.Kind)
		}
		if got := sig(b); got != want {
			t.Errorf("%s:\n got  %s\n want %s", name, got, want)
		}
	}
	if b := m.Lookup("lam"); b.Kind != Lambda {
		t.Errorf("lam is a %v", b.Kind)
	}
	if b := m.Lookup("commas"); b.Pos.Line != 8 || b.Pos.Col != 5 {
		t.Errorf("commas at %d:%d, want 8:5", b.Pos.Line, b.Pos.Col)
	}
}

func TestBindings(t *testing.T) {
	src := `import os.path, re as regex
from functools import partial
from .scoring import score as length_reward, other
from x import (a as b,
               c)

def twice(x): pass
def twice(prompts, completions, **kwargs): pass

def shadowed(prompts, completions, **kwargs): pass
shadowed = wrap(shadowed)

made = make_reward(400)
p = q = partial(made, scale=2)
u, (v, *w) = 1, (2, 3)
obj.attr = 1
seq[0] = 2
only_annotated: int
annotated_value: int = 3

class Scorer:
    def method(self): pass

@decorator
def decorated(prompts, completions, **kwargs): pass

if True:
    in_if = 1
elif False:
    def in_elif(): pass
else:
    def in_else(): pass
try:
    from fast import in_try
except ImportError:
    def in_except(): pass
finally:
    in_finally = 2
for loop_var in range(3):
    in_for = loop_var
with open("f") as handle:
    in_with = 1
match sys.platform:
    case "linux":
        in_case = 1

def outer():
    inner_name = 1
    def inner(): pass
`
	m := parse(t, src)
	if len(m.Errors) > 0 {
		t.Fatalf("errors: %v", m.Errors)
	}
	for name, want := range map[string]BindingKind{
		"os": Import, "regex": Import, "partial": Import, "length_reward": Import, "other": Import, "b": Import, "c": Import,
		"twice": Function, "shadowed": Assignment, "made": Assignment, "p": Assignment, "q": Assignment,
		"u": Assignment, "v": Assignment, "w": Assignment, "annotated_value": Assignment, "Scorer": Class,
		"decorated": Function, "in_if": Assignment, "in_elif": Function, "in_else": Function, "in_try": Import,
		"in_except": Function, "in_finally": Assignment, "loop_var": Assignment, "in_for": Assignment,
		"handle": Assignment, "in_with": Assignment, "in_case": Assignment,
	} {
		b := m.Lookup(name)
		if b == nil {
			t.Errorf("%s not bound", name)
			continue
		}
		if b.Kind != want {
			t.Errorf("%s is a %v, want %v", name, b.Kind, want)
		}
	}
	for _, name := range []string{"re", "score", "a", "x", "obj", "attr", "seq", "only_annotated", "method", "outer_name", "inner_name", "inner", "path"} {
		if b := m.Lookup(name); b != nil {
			t.Errorf("%s bound as %v at %d:%d", name, b.Kind, b.Pos.Line, b.Pos.Col)
		}
	}
	if got := sig(m.Lookup("twice")); got != "prompts:positional-or-keyword completions:positional-or-keyword kwargs:**kwargs" {
		t.Errorf("twice is not its last definition: %s", got)
	}
	if !m.Lookup("decorated").Decorated || m.Lookup("twice").Decorated {
		t.Error("Decorated is wrong")
	}
	if m.StarImport {
		t.Error("StarImport without a star import")
	}
	if got := fmt.Sprint(m.Names(Function)); got != "[decorated in_elif in_else in_except outer twice]" {
		t.Errorf("Names(Function) = %s", got)
	}
	if !parse(t, "from m import *\n").StarImport {
		t.Error("star import not seen")
	}
}

func TestModernSyntax(t *testing.T) {
	src := `from __future__ import annotations
import re

type Score = float | None

def f(prompts, completions, /, *, answer: str | None = None, **kwargs) -> list[Score]:
    if (n := len(completions)) > 3:
        pass
    out = [f"{c!r:>{n}} {'nested'} {n=}" for c in completions]
    match prompts:
        case [{"role": role, **rest}, *others] if role == "user":
            pass
        case _:
            pass
    return [0.0] * n

async def g(prompts, completions, **kwargs):
    async with lock:
        async for x in stream():
            await x
    return [await h(c) for c in completions]

@dataclass(frozen=True)
class C[T]:
    x: T
    def __call__(self, *args, **kwargs): ...

try:
    pass
except* ValueError as eg:
    pass

lambda_with_defaults = lambda *a, k=1, **kw: (a, k, kw)
x = 1_000_000 + 0x_ff + 1e-3j
s = rb"\d" + r"\n" + """multi
line""" + 'single'
print(*completions, sep="", end="\n")
del x
global_name: dict[str, list[int]] = {}
assert x, "message"
raise SystemExit from None
`
	m := parse(t, src)
	if len(m.Errors) > 0 {
		t.Fatalf("valid Python refused: %v at %+v", m.Errors[0].Msg, m.Errors[0].Pos)
	}
	if got := sig(m.Lookup("f")); got != "prompts:positional-only completions:positional-only answer:keyword-only= kwargs:**kwargs" {
		t.Errorf("f: %s", got)
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
		line, col       int
	}{
		{"mismatched bracket", "def f(prompts, completions, **kwargs):\n    return [len(c for c in completions]\n", "closing parenthesis ']' does not match opening parenthesis '('", 2, 39},
		{"mismatched on two lines", "x = (1,\n  2]\n", "closing parenthesis ']' does not match opening parenthesis '(' on line 1", 2, 4},
		{"never closed", "x = f(1,\n  2\ny = 3\n", "'(' was never closed", 1, 6},
		{"unmatched", "x = 1)\n", "unmatched ')'", 1, 6},
		{"brackets in strings", "x = ')' + f'{y}]'\nz = = 1\n", "invalid syntax", 2, 0},
		{"missing colon", "def f(prompts, completions, **kwargs)\n    return []\n", "invalid syntax", 1, 0},
		{"double equals", "x = = 1\n", "invalid syntax", 1, 0},
		{"unclosed string", "x = 'abc\ny = 2\n", "", 1, 0},
		{"python 2 print", "print 'hello'\n", "Missing parentheses in call to 'print'", 1, 1},
		{"duplicate param", "def f(a, b, a): pass\n", "duplicate argument 'a' in function definition", 1, 13},
		{"default order", "def f(a=1, b): pass\n", "parameter without a default follows parameter with a default", 1, 12},
		{"bare star", "def f(a, *): pass\n", "named arguments must follow bare *", 1, 10},
		{"bare star kwargs", "def f(a, *, **kw): pass\n", "named arguments must follow bare *", 1, 10},
		{"lambda duplicate", "g = lambda a, a: 0\n", "duplicate argument", 1, 15},
		{"stray dedent", "def f():\n    pass\n  x = 1\n", "unindent does not match any outer indentation level", 3, 3},
		{"dedent mismatch", "if x:\n    a = 1\n  b = 2\n", "unindent does not match any outer indentation level", 3, 3},
		{"deeper indent", "def f():\n    pass\n        x = 1\n", "unexpected indent", 3, 9},
		{"no indented block", "def f():\nreturn 1\n", "expected an indented block after line 1", 2, 1},
		{"nested def not indented", "class C:\n    def f(self):\n    def g(self): pass\n", "expected an indented block after line 2", 3, 5},
		{"keyword repeated", "x = f(a=1, b=2, a=3)\n", "keyword argument repeated: a", 1, 17},
		{"indented module", "  x = 1\n", "unexpected indent", 1, 3},
		{"keyword as name", "def class(): pass\n", "", 1, 0},
		{"missing paren", "def f(prompts, completions, **kwargs:\n    return []\n", "'(' was never closed", 1, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := parse(t, tc.src)
			if len(m.Errors) == 0 {
				t.Fatalf("no syntax error found in:\n%s", tc.src)
			}
			e := m.Errors[0]
			if !strings.Contains(e.Msg, tc.want) {
				t.Errorf("message %q, want %q", e.Msg, tc.want)
			}
			if e.Pos.Line != tc.line || tc.col != 0 && e.Pos.Col != tc.col {
				t.Errorf("at %d:%d, want %d:%d (%s)", e.Pos.Line, e.Pos.Col, tc.line, tc.col, e.Msg)
			}
		})
	}
}

func TestNoErrorsInValidFile(t *testing.T) {
	// Positions are bytes from the line start, as CUE's are.
	m := parse(t, "s = 'é'\ndef f(a, a): pass\n")
	if len(m.Errors) != 1 || m.Errors[0].Pos.Line != 2 || m.Errors[0].Pos.Col != 10 || m.Errors[0].Pos.Offset != len("s = 'é'\n")+9 {
		t.Errorf("got %+v", m.Errors)
	}
}

// Every Python file of this repository (the training entrypoints, the
// examples' reward functions, test scripts) is valid: none may be refused.
func TestRepositoryPythonParses(t *testing.T) {
	n := 0
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != "../.." {
			return filepath.SkipDir
		}
		if d.IsDir() || filepath.Ext(path) != ".py" {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		for _, e := range parse(t, string(src)).Errors {
			t.Errorf("%s:%d:%d: %s", path, e.Pos.Line, e.Pos.Col, e.Msg)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("found only %d Python files", n)
	}
}

// BenchmarkParseExample parses the reward functions of the
// grpo-reward-funcs example, what ftc vet does once per file.
func BenchmarkParseExample(b *testing.B) {
	src, err := os.ReadFile("../../examples/grpo-reward-funcs/rewards.py")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Parse(src); errors.Is(err, ErrNoParser) {
		b.Skip("built without cgo")
	}
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		Parse(src)
	}
}

// Odd input is reported, never a crash.
func TestOddInput(t *testing.T) {
	for _, src := range []string{
		"", "\x00", "\xff\xfe\x00d\x00e\x00f", "def", "((((((", ")))", "\ufeffdef f(prompts, completions, **kw): pass\n",
		strings.Repeat("(", 5000), strings.Repeat("if x:\n", 200), "x = '''\n", "def f(\n",
		strings.Repeat("    ", 100) + "x = 1\n", "\tdef f(): pass\n", "def f():\r\n    pass\r\n",
	} {
		m := parse(t, src)
		for _, e := range m.Errors {
			if e.Pos.Line < 1 || e.Pos.Col < 1 || e.Pos.Offset < 0 || e.Pos.Offset > len(src) {
				t.Errorf("%q: error %q at %+v", src, e.Msg, e.Pos)
			}
		}
	}
	if m := parse(t, "def f():\r\n    pass\r\n"); len(m.Errors) > 0 {
		t.Errorf("CRLF line ends refused: %v", m.Errors)
	}
	if m := parse(t, "\ufeffdef f(prompts, completions, **kw): pass\n"); len(m.Errors) > 0 || m.Lookup("f") == nil {
		t.Errorf("a file starting with a byte-order mark: %v", m.Errors)
	}
}
