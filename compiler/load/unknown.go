package load

import (
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/ast/astutil"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"

	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/schema"
)

// unknownField is a field of the user's recipe that the schema does not
// allow at its place, with the closest allowed name when one is near.
type unknownField struct {
	err     cueerrors.Error
	suggest string
	// hint, when set, says where ftc keeps a setting the user wrote
	// under another library's name (foreignNames).
	hint string
}

// newUnknown makes the unknownField of e, a "field not allowed" error.
func newUnknown(e cueerrors.Error, def, user cue.Value) *unknownField {
	u := &unknownField{err: e}
	p := e.Path()
	if len(p) > 0 && p[0] == schema.Definition {
		p = p[1:]
	}
	if u.hint = methodFieldHint(user, p); u.hint == "" {
		u.hint = foreignHint(user, p)
	}
	if u.hint == "" {
		u.suggest = suggestion(def, user, e.Path())
	}
	return u
}

func (u *unknownField) Position() token.Pos          { return u.err.Position() }
func (u *unknownField) InputPositions() []token.Pos  { return u.err.InputPositions() }
func (u *unknownField) Path() []string               { return u.err.Path() }
func (u *unknownField) Msg() (string, []interface{}) { return u.err.Msg() }
func (u *unknownField) Error() string                { return u.err.Error() }

// unknownFields finds the misspelt and unknown fields that CUE did not
// report: it reports them only while nothing else in the same struct is
// wrong, so a typo next to a bad value would surface one run later. The
// fields already reported are taken out of the user's files and the
// recipe is validated again; what is "not allowed" then is new. It
// changes inst's files.
func unknownFields(inst, schemaInst *build.Instance, first []cueerrors.Error) []cueerrors.Error {
	bad := map[token.Position]bool{}
	for _, e := range first {
		if p := userPos(e); p.IsValid() && !IsEmbedded(p.Filename()) {
			bad[p.Position()] = true
		}
	}
	// The instance's files are changed in place: inst is used up (the
	// caller has built its value and recorded its positions already).
	var out []cueerrors.Error
	seen := map[token.Position]bool{}
	// Each round takes out what is reported so far; a misspelling inside
	// a struct hides one in the struct around it, so a few rounds may be
	// needed, one per level.
	for round := 0; round < 6 && len(bad) > 0; round++ {
		for i, f := range inst.Files {
			inst.Files[i] = astutil.Apply(f, func(c astutil.Cursor) bool {
				if fd, ok := c.Node().(*ast.Field); ok && fd.Value != nil &&
					(bad[fd.Value.Pos().Position()] || bad[fd.Label.Pos().Position()]) {
					c.Delete()
					return false
				}
				return true
			}, nil).(*ast.File)
		}
		for p := range bad {
			seen[p] = true
		}
		// A new context each round: one compiles an instance once and
		// keeps the result.
		ctx := cuecontext.New()
		def := ctx.BuildInstance(schemaInst).LookupPath(cue.ParsePath(schema.Definition))
		v := def.Unify(ctx.BuildInstance(inst))
		err := v.Validate(cue.Concrete(true), cue.All())
		if err == nil {
			break
		}
		bad = map[token.Position]bool{}
		for _, e := range validateAll(v, err) {
			p := userPos(e).Position()
			if msgOf(e) != "field not allowed" || seen[p] || bad[p] {
				continue
			}
			bad[p] = true
			out = append(out, newUnknown(e, def, v))
		}
	}
	return out
}

// suggestion is the schema field nearest to the last label of path, in
// the struct that holds it: a plausible misspelling (at most two edits,
// or a third of the name). A user-named stage or dataset is added to the
// schema (with the stage's method, which decides its fields) to look
// inside it.
func suggestion(def, user cue.Value, path []string) string {
	if len(path) < 2 {
		return ""
	}
	name := path[len(path)-1]
	labels := path[1 : len(path)-1] // path[0] is #Recipe
	if len(labels) >= 2 && (labels[0] == "stages" || labels[0] == "datasets") {
		entry := cue.MakePath(cue.Str(labels[0]), cue.Str(labels[1]))
		fill := map[string]any{}
		if m, err := user.LookupPath(entry).LookupPath(cue.ParsePath("method")).String(); err == nil && labels[0] == "stages" {
			fill["method"] = m
		}
		def = def.FillPath(entry, fill)
	}
	var sels []cue.Selector
	for _, l := range labels {
		if n, err := strconv.Atoi(l); err == nil {
			sels = append(sels, cue.Index(n)) // a list element: rewards.0
			continue
		}
		sels = append(sels, cue.Str(l))
	}
	it, err := def.LookupPath(cue.MakePath(sels...)).Fields(cue.Optional(true))
	if err != nil {
		return ""
	}
	best, bestD := "", 1<<30
	for it.Next() {
		cand := it.Selector().Unquoted()
		if d := editDistance(strings.ToLower(name), strings.ToLower(cand)); d < bestD {
			best, bestD = cand, d
		}
	}
	if bestD <= max(2, len(name)/3) && bestD < len(name) {
		return best
	}
	return ""
}

// editDistance is diag.EditDistance: one measure of "near" for every
// "did you mean".
func editDistance(a, b string) int { return diag.EditDistance(a, b) }
