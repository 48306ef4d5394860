package load

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"cuelang.org/go/mod/modconfig"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	cueload "cuelang.org/go/cue/load"
	"cuelang.org/go/cue/token"

	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/schema"
	"github.com/ftc-dev/ftc/stdlib"
)

// Instance is a loaded recipe.
type Instance struct {
	// Value is the recipe unified with #Recipe, defaults applied.
	Value cue.Value
	// User is the user's files evaluated alone; its positions are the
	// user's, which Value's are not always.
	User cue.Value
	// Dir is the recipe's directory (absolute).
	Dir string
	// File is the recipe file (absolute).
	File string
	// Pos maps recipe paths to where the user wrote them.
	Pos diag.Positions
}

// Override is one --set path=value.
type Override struct {
	Path  string
	Value string
}

// ParseOverride splits "path=value".
func ParseOverride(s string) (Override, error) {
	p, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(p) == "" {
		return Override{}, fmt.Errorf("--set %q: want path=value", s)
	}
	return Override{Path: strings.TrimSpace(p), Value: v}, nil
}

// Load loads one recipe file with its overrides. Problems with the recipe
// come back as a diag.List; other failures (unreadable file) as plain
// errors.
func Load(file string, overrides []Override) (*Instance, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(abs); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read recipe: %w", err)
	} else if st.IsDir() {
		return nil, fmt.Errorf("reading recipe: %s is a directory; name the .cue file", file)
	}
	dir := filepath.Dir(abs)
	overlay, err := overlayFor(dir)
	if err != nil {
		return nil, err
	}
	cfg := &cueload.Config{Dir: dir, ModuleRoot: dir, Overlay: overlay, Registry: noRegistry}

	insts := cueload.Instances([]string{abs}, cfg)
	if err := insts[0].Err; err != nil {
		if src, rerr := os.ReadFile(abs); rerr == nil {
			if l := badImports(abs, src); len(l) > 0 {
				return nil, l.Sort()
			}
		}
		return nil, fromCUE(cueerrors.Errors(err), nil, cue.Value{})
	}
	if d := emptyRecipe(abs, insts[0].Files); d != nil {
		return nil, diag.List{d}
	}
	var diags diag.List
	pre := &presets{cfg: cfg, ctx: cuecontext.New()}
	notes := map[string]string{}
	for _, o := range overrides {
		if n := refNote(insts[0].Files, strings.Split(o.Path, ".")); n != "" {
			notes[diag.OverridePrefix+o.Path+"="+o.Value] = n
		}
		if d := applyOverride(insts[0].Files, o, pre); d != nil {
			diags.Add(d)
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}

	// A struct with very many fields takes CUE a time in their square.
	if big := tooManyFields(insts[0].Files); len(big) > 0 {
		return nil, big.Sort()
	}
	// A cycle of references hangs CUE's evaluation of the recipe with the
	// schema: find it in the syntax first.
	if cyc := referenceCycles(insts[0].Files); len(cyc) > 0 {
		return nil, cyc.Sort()
	}

	pos := diag.Positions{}
	pos.Record(insts[0].Files)

	ctx := cuecontext.New()
	// An error in the user's value alone (a bad value unified with a
	// preset) does not stop here: validating the whole recipe reports it
	// again together with everything else that is wrong.
	user := ctx.BuildInstance(insts[0])
	if big := tooManyInValue(user); len(big) > 0 {
		return nil, big.Sort()
	}
	sch := cueload.Instances([]string{schema.ImportPath}, cfg)
	if err := sch[0].Err; err != nil {
		return nil, fmt.Errorf("loading embedded schema: %w", err)
	}
	schemaV := ctx.BuildInstance(sch[0])
	if err := schemaV.Err(); err != nil {
		return nil, fmt.Errorf("building embedded schema: %w", err)
	}
	v := schemaV.LookupPath(cue.ParsePath(schema.Definition)).Unify(user)
	if err := v.Validate(cue.Concrete(true), cue.All()); err != nil {
		all := validateAll(v, err)
		def := schemaV.LookupPath(cue.ParsePath(schema.Definition))
		l := fromCUE(withUnknown(all, unknownFields(insts[0], sch[0], all), def, user), pos, user)
		for _, d := range l {
			if n := notes[d.Pos.Filename()]; n != "" && d.Pos.IsValid() {
				d.Hint = strings.TrimPrefix(d.Hint+"; "+n, "; ")
			}
		}
		return nil, l
	}
	recordLocalPins(pos, user)
	return &Instance{Value: v, User: user, Dir: dir, File: abs, Pos: pos}, nil
}

// recordLocalPins adds the positions of data pins written in the recipe's
// own packages (ftc.local/recipe/DIR) rather than in its file: a stale pin
// is then reported where it is written, which is where it must be
// changed (ftc pin rewrites only the file it is given).
func recordLocalPins(pos diag.Positions, user cue.Value) {
	it, err := user.LookupPath(cue.ParsePath("datasets")).Fields()
	if err != nil {
		return
	}
	for it.Next() {
		path := "datasets." + it.Selector().String() + ".file.sha256"
		if pos.Has(path) {
			continue
		}
		at := it.Value().LookupPath(cue.ParsePath("file.sha256")).Pos()
		if at.IsValid() && at.Filename() != "" && !IsEmbedded(at.Filename()) {
			pos[path] = at
		}
	}
}

// localModule is the module a recipe's directory is, when it has no
// cue.mod of its own: its folders are importable as localModule/DIR.
const localModule = "ftc.local/recipe"

// genRoot is where the embedded packages are overlaid: cue.mod/gen is
// noRegistry is the module registry of every recipe load: none. ftc's
// own packages come from the overlay and a recipe's from its directory,
// so vetting a recipe never reaches the network, whatever a cue.mod file
// in the recipe's directory declares or CUE_REGISTRY says.
var noRegistry = &modconfig.LazyRegistry{New: func() (modconfig.CachedRegistry, error) {
	return nil, errors.New("ftc recipes import only ftc's packages (ftc.dev/...) and the recipe's own (ftc.local/recipe/...): no CUE module is fetched from a registry")
}}

// CUE's place for packages a tool provides.
const genRoot = diag.EmbeddedRoot

// overlayFor places the schema and stdlib under dir/cue.mod/gen, and a
// module file when the directory has none.
func overlayFor(dir string) (map[string]cueload.Source, error) {
	ov := map[string]cueload.Source{}
	modFile := filepath.Join(dir, "cue.mod", "module.cue")
	if _, err := os.Stat(modFile); err != nil {
		ov[modFile] = cueload.FromString("module: \"" + localModule + "\"\nlanguage: version: \"v0.17.0\"\n")
	}
	add := func(fsys fs.FS, importPath string) error {
		return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || path.Ext(p) != ".cue" {
				return err
			}
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			ov[filepath.Join(dir, genRoot, filepath.FromSlash(path.Join(importPath, p)))] = cueload.FromBytes(b)
			return nil
		})
	}
	if err := add(schema.Files, schema.ImportPath); err != nil {
		return nil, fmt.Errorf("embedding schema: %w", err)
	}
	if err := add(stdlib.Files, stdlib.ImportPrefix); err != nil {
		return nil, fmt.Errorf("embedding stdlib: %w", err)
	}
	return ov, nil
}

// IsEmbedded reports whether a file name belongs to the overlaid schema or
// stdlib rather than to the user (diag.IsEmbedded).
func IsEmbedded(filename string) bool { return diag.IsEmbedded(filename) }

// applyOverride rewrites the recipe's syntax so that the field at o.Path
// has the value o.Value: an existing field's value is replaced, a missing
// one is added. The new value's position names the flag, so any error in
// it points at --set.
//
// quotedPath quotes each dot-separated name of path that is not a CUE
// identifier: stages.sft-lr1e-5.x becomes stages."sft-lr1e-5".x. Names
// with dots of their own cannot be told apart here and are left alone.
func quotedPath(path string) string {
	parts := strings.Split(path, ".")
	for i, p := range parts {
		if p != "" && !ast.IsValidIdent(p) && !strings.HasPrefix(p, `"`) {
			parts[i] = strconv.Quote(p)
		}
	}
	return strings.Join(parts, ".")
}

// A field that a preset sets (hardware.strategy of strategies.DDP) is
// replaced too: the preset's reference is replaced by its value, written
// out, and the field in it is set. Unifying would conflict with the
// preset's value, and overriding a preset's choice is what --set is most
// used for.
func applyOverride(files []*ast.File, o Override, pre *presets) *diag.Diagnostic {
	sel := cue.ParsePath(o.Path)
	if err := sel.Err(); err != nil {
		d := &diag.Diagnostic{Message: fmt.Sprintf("--set %s: invalid path: %v", o.Path, err)}
		if q := quotedPath(o.Path); q != o.Path && cue.ParsePath(q).Err() == nil {
			d.Hint = fmt.Sprintf("a name that is not an identifier (with '-', or starting with a digit) is quoted, as in CUE: --set '%s=%s'", q, o.Value)
		}
		return d
	}
	var labels []string
	for _, s := range sel.Selectors() {
		if s.LabelType() != cue.StringLabel {
			return &diag.Diagnostic{Message: fmt.Sprintf("--set %s: only plain field names can be set", o.Path)}
		}
		labels = append(labels, s.Unquoted())
	}
	name := diag.OverridePrefix + o.Path + "=" + o.Value
	expr := overrideExpr(name, o.Value)
	if len(files) == 0 {
		return &diag.Diagnostic{Message: "--set: the recipe has no files"}
	}
	if d := missingEntry(files, labels, expr.Pos()); d != nil {
		return d
	}
	found := false
	for _, f := range files {
		if setIn(&f.Decls, labels, expr, false, pre.inline) {
			found = true
		}
	}
	if !found {
		setIn(&files[0].Decls, labels, expr, true, pre.inline)
	}
	return nil
}

// overrideExpr parses a --set value. Literals (numbers, booleans, null,
// quoted strings, structs, lists) are CUE; anything else is taken as a
// plain string, so `--set model.revision=abc123` needs no quoting.
func overrideExpr(filename, value string) ast.Expr {
	if e, err := parseExpr(filename, value); err == nil && isLiteral(e) {
		return e
	}
	s := ast.NewString(value)
	f := token.NewFile(filename, -1, len(value)+1)
	f.SetLinesForContent([]byte(value))
	s.ValuePos = f.Pos(0, token.NoRelPos)
	return s
}

func isLiteral(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit, *ast.StructLit, *ast.ListLit:
		return true
	case *ast.UnaryExpr:
		_, ok := e.X.(*ast.BasicLit)
		return ok && (e.Op == token.SUB || e.Op == token.ADD)
	case *ast.Ident:
		return e.Name == "true" || e.Name == "false" || e.Name == "null"
	}
	return false
}

// setIn sets labels to expr within decls. It descends into struct literals
// of matching fields; with create it adds whatever is missing. It reports
// whether a field was set.
//
// inline, when not nil, writes out the presets a field's value refers to
// that set the rest of the path, so that the field can be replaced in
// them.
func setIn(decls *[]ast.Decl, labels []string, expr ast.Expr, create bool, inline func(ast.Expr, []string) ast.Expr) bool {
	set := false
	for _, d := range *decls {
		f, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		name, _, err := ast.LabelName(f.Label)
		if err != nil || name != labels[0] {
			continue
		}
		if len(labels) == 1 {
			f.Value = expr
			set = true
			continue
		}
		if inline != nil {
			f.Value = inline(f.Value, labels[1:])
		}
		switch v := f.Value.(type) {
		case *ast.StructLit:
			if setIn(&v.Elts, labels[1:], expr, create, inline) {
				set = true
			}
		case *ast.BinaryExpr:
			// preset & {field: ...}: replace the field where the user
			// wrote it, in a struct literal of the unification.
			if !create && setInUnification(v, labels[1:], expr, inline) {
				set = true
				continue
			}
			if create && !set {
				st := ast.NewStruct()
				setIn(&st.Elts, labels[1:], expr, true, nil)
				f.Value = &ast.BinaryExpr{X: f.Value, Op: token.AND, Y: st}
				set = true
			}
		default:
			if create && !set {
				// The field's value is an expression (a preset, a
				// reference): refine it rather than replace it.
				st := ast.NewStruct()
				setIn(&st.Elts, labels[1:], expr, true, nil)
				f.Value = &ast.BinaryExpr{X: f.Value, Op: token.AND, Y: st}
				set = true
			}
		}
	}
	if set || !create {
		return set
	}
	// The fields made here are what --set typed: they carry its position,
	// so that an error in one of them (a misspelt name halfway along the
	// path) points at the flag, as an error in the value does.
	label := func(name string) *ast.Ident {
		id := ast.NewIdent(name)
		id.NamePos = expr.Pos()
		return id
	}
	var val ast.Expr = expr
	for i := len(labels) - 1; i >= 1; i-- {
		st := ast.NewStruct(&ast.Field{Label: label(labels[i]), Value: val})
		st.Lbrace = expr.Pos()
		val = st
	}
	*decls = append(*decls, &ast.Field{Label: label(labels[0]), Value: val})
	return true
}

// validateAll collects errors subtree by subtree. CUE's validation of
// the whole value can stop at the first failing part of a struct and leave
// errors in sibling fields unreported; a user fixing one error at a time
// would pay a run each. Validating every section, dataset, stage and stage
// field on its own surfaces them all; duplicates are merged later.
func validateAll(v cue.Value, first error) []cueerrors.Error {
	if first == nil {
		return nil
	}
	var all errSet
	all.add(first)
	var walk func(v cue.Value, depth int)
	walk = func(v cue.Value, depth int) {
		if depth == 0 {
			return
		}
		it, err := v.Fields()
		if err != nil {
			return
		}
		for it.Next() {
			f := it.Value()
			if err := f.Validate(cue.Concrete(true), cue.All()); err != nil {
				all.add(err)
				walk(f, depth-1)
			}
		}
	}
	walk(v, 4)
	return all.list
}

// errSet collects CUE errors without repeating one. CUE's errors.Append
// looks for the new error in the whole list each time: with a few
// thousand errors (a large recipe with a mistake repeated in each
// dataset) that search was most of vet's time.
type errSet struct {
	list []cueerrors.Error
	seen map[any]bool
}

func (s *errSet) add(err error) {
	for _, e := range cueerrors.Errors(err) {
		s.addOne(e)
	}
}

func (s *errSet) addOne(e cueerrors.Error) {
	if e == nil {
		return
	}
	if reflect.TypeOf(e).Comparable() {
		if s.seen == nil {
			s.seen = map[any]bool{}
		}
		if s.seen[e] {
			return
		}
		s.seen[e] = true
	}
	s.list = append(s.list, e)
}

// withUnknown adds the unknown fields to CUE's errors, and gives CUE's own
// "field not allowed" errors the nearest allowed name of the schema def.
func withUnknown(errs []cueerrors.Error, unknown []cueerrors.Error, def, user cue.Value) []cueerrors.Error {
	seen := map[string]bool{}
	var all errSet
	for _, u := range unknown {
		seen[strings.Join(u.Path(), ".")] = true
		all.addOne(u)
	}
	for _, e := range errs {
		if msgOf(e) == "field not allowed" {
			if seen[strings.Join(e.Path(), ".")] {
				continue
			}
			e = newUnknown(e, def, user)
		}
		all.addOne(e)
	}
	return all.list
}

// setInUnification sets labels within the struct literals of an &
// expression, reporting whether one of them held the field.
func setInUnification(e *ast.BinaryExpr, labels []string, expr ast.Expr, inline func(ast.Expr, []string) ast.Expr) bool {
	if e.Op != token.AND {
		return false
	}
	set := false
	for _, side := range []ast.Expr{e.X, e.Y} {
		switch v := side.(type) {
		case *ast.StructLit:
			if setIn(&v.Elts, labels, expr, false, inline) {
				set = true
			}
		case *ast.BinaryExpr:
			if setInUnification(v, labels, expr, inline) {
				set = true
			}
		}
	}
	return set
}

// fromCUE converts CUE errors into diagnostics at user positions.
func fromCUE(errs []cueerrors.Error, pos diag.Positions, user cue.Value) diag.List {
	return converter{pos: pos, user: user}.convert(errs).Sort()
}

// userPos picks the position an error should be reported at: the first
// one in the user's files or overrides, else the primary one.
func userPos(e cueerrors.Error) token.Pos {
	cands := append([]token.Pos{e.Position()}, e.InputPositions()...)
	// A value from --set is what the user just typed: blame it first.
	for _, p := range cands {
		if p.IsValid() && strings.HasPrefix(p.Filename(), diag.OverridePrefix) {
			return p
		}
	}
	for _, p := range cands {
		if p.IsValid() && !IsEmbedded(p.Filename()) {
			return p
		}
	}
	return e.Position()
}

// recipePath renders an error's path without the schema's #Recipe prefix.
func recipePath(e cueerrors.Error) string {
	p := e.Path()
	if len(p) > 0 && p[0] == schema.Definition {
		p = p[1:]
	}
	return strings.Join(p, ".")
}
