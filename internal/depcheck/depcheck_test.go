package depcheck

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/ftc-dev/ftc"

type pkg struct {
	Name       string
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
	Standard   bool
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 8 {
		t.Fatalf("go list found only %d packages; is the module layout intact?", len(pkgs))
	}
	return pkgs
}

func standard(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "list", "std").Output()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, l := range strings.Fields(string(out)) {
		m[l] = true
	}
	return m
}

func under(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// The compiler is pure: nothing from the runtime, no BuildKit client, no
// network or process packages of its own.
func TestCompilerIsPure(t *testing.T) {
	banned := []string{"net", "net/http", "os/exec", "github.com/moby/buildkit", "github.com/google/go-containerregistry", module + "/runtime", module + "/internal/cli"}
	for _, p := range listPackages(t) {
		if !under(p.ImportPath, module+"/compiler") {
			continue
		}
		for _, imp := range p.Imports {
			for _, b := range banned {
				if under(imp, b) {
					t.Errorf("%s imports %s", p.ImportPath, imp)
				}
			}
		}
		for _, dep := range p.Deps {
			for _, b := range banned[3:] {
				if under(dep, b) {
					t.Errorf("%s depends on %s", p.ImportPath, dep)
				}
			}
		}
	}
}

// Keys are computed from the standard library alone, so their encoding
// cannot change under a dependency upgrade.
func TestKeyImportsStandardLibraryOnly(t *testing.T) {
	std := standard(t)
	for _, p := range listPackages(t) {
		if p.ImportPath != module+"/compiler/key" {
			continue
		}
		for _, imp := range p.Imports {
			if !std[imp] {
				t.Errorf("compiler/key imports %s, which is not in the standard library", imp)
			}
		}
		return
	}
	t.Fatal("compiler/key not found")
}

// cue.Value stays in compiler/load: config.Decode takes the recipe as
// JSON (config.Source), and the rest of the code works on plain Go types.
func TestCUEValueStaysInLoad(t *testing.T) {
	for _, p := range listPackages(t) {
		for _, imp := range p.Imports {
			if imp == "cuelang.org/go/cue" && p.ImportPath != module+"/compiler/load" {
				t.Errorf("%s imports cuelang.org/go/cue; only compiler/load may hold a cue.Value", p.ImportPath)
			}
		}
	}
}

// Everything after the loader links neither it nor CUE's evaluator, even
// through another package: checked on the transitive dependencies. Only
// the compiler package itself (the facade that calls the loader) and the
// commands above it may. (CUE's token package, for positions, is allowed:
// diag reports errors at CUE positions.)
func TestNothingAfterTheLoaderLinksCUEsEvaluator(t *testing.T) {
	banned := []string{module + "/compiler/load", "cuelang.org/go/cue/load", "cuelang.org/go/cue/cuecontext", "cuelang.org/go/internal/core/eval"}
	for _, p := range listPackages(t) {
		if !strings.HasPrefix(p.ImportPath, module+"/compiler/") || under(p.ImportPath, module+"/compiler/load") {
			continue
		}
		for _, dep := range p.Deps {
			for _, b := range banned {
				if dep == b {
					t.Errorf("%s depends on %s", p.ImportPath, dep)
				}
			}
			if dep == "cuelang.org/go/cue" {
				t.Errorf("%s depends on cuelang.org/go/cue (the evaluator's API)", p.ImportPath)
			}
		}
	}
}

// Only internal/cli and commands (package main) print; libraries return
// values and errors.
func TestOnlyCLIPrints(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.Name == "main" || under(p.ImportPath, module+"/internal/cli") || under(p.ImportPath, module+"/bench") {
			continue // commands and the CLI are where printing belongs
		}
		for _, f := range p.GoFiles {
			path := filepath.Join(p.Dir, f)
			file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				x, ok := sel.X.(*ast.Ident)
				if !ok {
					return true
				}
				switch {
				case x.Name == "fmt" && (sel.Sel.Name == "Print" || sel.Sel.Name == "Println" || sel.Sel.Name == "Printf"),
					x.Name == "os" && (sel.Sel.Name == "Stdout" || sel.Sel.Name == "Stderr"),
					x.Name == "log" && strings.HasPrefix(sel.Sel.Name, "Print"):
					t.Errorf("%s: %s.%s: only internal/cli prints", path, x.Name, sel.Sel.Name)
				}
				return true
			})
		}
	}
}

// tree-sitter, the Python parser, is cgo: only compiler/pyast imports it,
// and only from files built with cgo, so the module still builds without a
// C compiler or when cross-compiling (CGO_ENABLED=0, GOOS=darwin), where
// vet says it could not check reward functions.
func TestTreeSitterOnlyInPyastWithCgo(t *testing.T) {
	const ts = "github.com/tree-sitter"
	for _, p := range listPackages(t) {
		for _, imp := range p.Imports {
			if under(imp, ts) && p.ImportPath != module+"/compiler/pyast" {
				t.Errorf("%s imports %s; only compiler/pyast may", p.ImportPath, imp)
			}
		}
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", module+"/...")
	cmd.Dir = "../.."
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list without cgo: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if under(p, ts) {
			t.Errorf("without cgo the module still depends on %s", p)
		}
	}
}
