package load

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"

	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/schema"
	"github.com/ftc-dev/ftc/stdlib"
)

// Packages are the import paths of ftc's own CUE packages: the schema and
// the stdlib presets.
func Packages() []string {
	seen := map[string]bool{schema.ImportPath: true}
	_ = fs.WalkDir(stdlib.Files, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && path.Ext(p) == ".cue" {
			seen[path.Join(stdlib.ImportPrefix, path.Dir(p))] = true
		}
		return nil
	})
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// badImports explains the imports of a recipe that CUE could not load
// (its own message is "import failed"): a package of ftc's that does not
// exist, or a package from a module, which a recipe cannot use. nil when
// every import looks fine, so that CUE's error is reported instead.
func badImports(file string, src []byte) diag.List {
	f, err := parser.ParseFile(file, src, parser.ImportsOnly)
	if err != nil {
		return nil
	}
	known := map[string]bool{}
	pkgs := Packages()
	for _, p := range pkgs {
		known[p] = true
	}
	var out diag.List
	var specs []*ast.ImportSpec
	for _, d := range f.Decls {
		if id, ok := d.(*ast.ImportDecl); ok {
			specs = append(specs, id.Specs...)
		}
	}
	for _, spec := range specs {
		p, err := strconv.Unquote(spec.Path.Value)
		if err != nil {
			continue
		}
		first, _, _ := strings.Cut(p, "/")
		switch {
		case known[p]:
		case strings.HasPrefix(p, "ftc.dev/"):
			d := &diag.Diagnostic{Pos: spec.Path.Pos(), Message: fmt.Sprintf("cannot import %q: ftc has no such package", p)}
			if path.Base(p) == "datasets" {
				d.Hint = "datasets are written in the recipe (datasets: NAME: {file: ..., format: ...}), not imported; ftc's packages are " + quoteAll(pkgs)
			} else if near := nearestPackage(p, pkgs); near != "" {
				d.Hint = fmt.Sprintf("did you mean %q? ftc's packages are %s", near, quoteAll(pkgs))
			} else {
				d.Hint = "ftc's packages are " + quoteAll(pkgs)
			}
			out.Add(d)
		case strings.HasPrefix(p, localModule+"/"):
			// The recipe's own packages: folders under its directory.
			dir := strings.TrimPrefix(p, localModule+"/")
			out.Add(&diag.Diagnostic{Pos: spec.Path.Pos(), Message: fmt.Sprintf("cannot import %q: the recipe's directory has no package %s", p, dir),
				Hint: fmt.Sprintf("%s/DIR is the folder DIR beside the recipe (relative to the recipe's directory, or to the folder holding cue.mod): put the package's .cue files in %s/", localModule, dir)})
		case strings.Contains(first, "."):
			out.Add(&diag.Diagnostic{Pos: spec.Path.Pos(), Message: fmt.Sprintf("cannot import %q: a recipe imports ftc's packages, CUE's standard library and its own folders (%s/DIR), not modules", p, localModule),
				Hint: "ftc's packages are " + quoteAll(pkgs)})
		}
	}
	return out
}

// nearestPackage is the package whose last element is closest to p's,
// within a third of its length, or "".
func nearestPackage(p string, pkgs []string) string {
	name := path.Base(p)
	best, bestD := "", 1<<30
	for _, c := range pkgs {
		if d := editDistance(name, path.Base(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(2, len(name)/3) && bestD < len(name) {
		return best
	}
	return ""
}

// emptyRecipe reports a recipe file without a single field (0 bytes,
// blank, comments or a package clause only), at the file. Without it, the
// first complaint would be an unpositioned "name: missing required field".
func emptyRecipe(file string, files []*ast.File) *diag.Diagnostic {
	for _, f := range files {
		for _, d := range f.Decls {
			switch d.(type) {
			case *ast.Package, *ast.ImportDecl, *ast.CommentGroup, *ast.Attribute:
			default:
				return nil
			}
		}
	}
	tf := token.NewFile(file, -1, 1)
	return &diag.Diagnostic{Pos: tf.Pos(0, token.NoRelPos), Message: "the recipe is empty",
		Hint: "a recipe sets apiVersion, name, environment, hardware, datasets and stages; the examples directory has one per scenario"}
}
