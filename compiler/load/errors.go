package load

import (
	"fmt"
	"regexp"

	"cuelang.org/go/cue"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"

	"github.com/ftc-dev/ftc/compiler/diag"
)

func parseExpr(filename, src string) (ast.Expr, error) {
	return parser.ParseExpr(filename, src)
}

// converter turns CUE errors into diagnostics a user can act on.
type converter struct {
	// pos says where the user wrote each field, to place complaints the
	// schema makes about fields that were never written.
	pos diag.Positions
	// user is the user's value alone, to quote what they wrote.
	user cue.Value
}

// convert groups CUE's errors by path and rewrites the two kinds whose raw
// form is unhelpful:
//
//   - an "empty disjunction" is CUE trying every alternative of an enum or
//     a default; it becomes `"x" is not one of "a", "b"`, or the one
//     alternative's real complaint (e.g. "out of bound >=2");
//   - an "incomplete value" at a field the user never wrote is a missing
//     required field, reported at the enclosing field they did write.
func (c converter) convert(errs []errors.Error) diag.List {
	type group struct {
		path    string
		members []errors.Error
		disj    bool
	}
	var order []*group
	byPath := map[string]*group{}
	for _, e := range errs {
		p := recipePath(e)
		g := byPath[p]
		if g == nil {
			g = &group{path: p}
			byPath[p] = g
			order = append(order, g)
		}
		if strings.Contains(msgOf(e), "in empty disjunction") {
			g.disj = true
			continue
		}
		g.members = append(g.members, e)
	}
	var out diag.List
	for _, g := range order {
		if g.disj {
			out = append(out, c.disjunction(g.path, g.members)...)
			continue
		}
		for _, e := range g.members {
			out.Add(c.one(g.path, e))
		}
	}
	out = c.tidy(out)
	for _, d := range out {
		pinHint(d)
	}
	return out
}

// tidy drops the echoes one mistake leaves in CUE's error list: the same
// error seen through a stage's derived output, through a schema-internal
// definition, or once per missing sub-field of a block the user never
// wrote.
func (c converter) tidy(in diag.List) diag.List {
	type at struct {
		pos token.Pos
		msg string
	}
	best := map[at]*diag.Diagnostic{}
	var order []at
	for _, d := range in {
		if strings.HasPrefix(d.Message, "missing required field") {
			if short := c.highestUnwritten(d.Path); short != d.Path {
				// The hint described a field inside the block.
				d.Path, d.Hint = short, ""
			}
			d.Pos, _ = c.posOf(d.Path)
		}
		k := at{d.Pos, d.Message}
		prev, ok := best[k]
		if !ok {
			best[k] = d
			order = append(order, k)
			continue
		}
		if pathRank(d.Path) < pathRank(prev.Path) {
			best[k] = d
		}
	}
	var kept diag.List
	for _, k := range order {
		kept = append(kept, best[k])
	}
	out := c.dropEchoes(kept)
	if len(out) == 0 {
		return in
	}
	return out
}

// dropEchoes removes diagnostics that are consequences of another one:
//   - inside a stage whose method is wrong or missing (its fields are
//     judged against the wrong method, or none);
//   - under a stage's computed output, unless the user wrote it;
//   - inside schema definitions;
//   - a dataset's problem seen again through a stage that references it
//     (data.train, data.eval, data.mix.N.dataset).
func (c converter) dropEchoes(in diag.List) diag.List {
	badMethod := map[string]bool{}
	datasetMsgs := map[string]bool{}
	for _, d := range in {
		parts := strings.Split(d.Path, ".")
		if len(parts) == 3 && parts[0] == "stages" && parts[2] == "method" {
			badMethod[parts[1]] = true
		}
		if len(parts) >= 3 && parts[0] == "datasets" {
			datasetMsgs[strings.Join(parts[2:], ".")+"\x00"+d.Message] = true
			if d.Message == "missing required field" {
				// Seen through a stage's data, the missing field is
				// shortened to the first one the stage did not write
				// (stages.x.data.train.file for file.sha256).
				for n := 3; n < len(parts); n++ {
					datasetMsgs[strings.Join(parts[2:n], ".")+"\x00"+d.Message] = true
				}
			}
		}
	}
	notAllowed := map[string]bool{}
	for _, d := range in {
		if d.Message == "field not allowed" {
			notAllowed[d.Path] = true
		}
	}
	var out diag.List
	for _, d := range in {
		parts := strings.Split(d.Path, ".")
		switch {
		case d.Message == "field not allowed" && underAny(parts, notAllowed):
			// Inside a field that is not allowed itself.
			continue
		case pathRank(d.Path) == 2 && len(in) > 1:
			continue
		case len(parts) >= 3 && parts[0] == "stages" && badMethod[parts[1]] && parts[2] != "method":
			continue
		case len(parts) >= 3 && parts[0] == "stages" && parts[2] == "output" && !c.pos.Has(strings.Join(parts[:3], ".")):
			continue
		case len(parts) >= 5 && parts[0] == "stages" && parts[2] == "data" && (parts[3] == "train" || parts[3] == "eval") &&
			datasetMsgs[strings.Join(parts[4:], ".")+"\x00"+d.Message]:
			continue
		case len(parts) >= 7 && parts[0] == "stages" && parts[2] == "data" && parts[3] == "mix" && parts[5] == "dataset" &&
			datasetMsgs[strings.Join(parts[6:], ".")+"\x00"+d.Message]:
			continue
		}
		out.Add(d)
	}
	return out
}

// underAny reports whether a proper prefix of the path parts is in set.
func underAny(parts []string, set map[string]bool) bool {
	for n := 1; n < len(parts); n++ {
		if set[strings.Join(parts[:n], ".")] {
			return true
		}
	}
	return false
}

// pathRank orders how well a path names what the user wrote: a plain
// recipe path (0) beats a stage's derived output (1), which beats a path
// inside the schema's own definitions (2).
func pathRank(p string) int {
	parts := strings.Split(p, ".")
	switch {
	case p == "" || strings.HasPrefix(p, "#") || !isRecipeField(parts[0]):
		return 2
	case len(parts) >= 3 && parts[0] == "stages" && parts[2] == "output":
		return 1
	}
	return 0
}

func isRecipeField(s string) bool {
	switch s {
	case "apiVersion", "name", "description", "seed", "environment", "hardware", "datasets", "stages", "secrets":
		return true
	}
	return false
}

// highestUnwritten shortens a missing field's path to the first element
// the user did not write: a stage without a data block gets one
// "stages.x.data: missing required field", not one per field inside it.
func (c converter) highestUnwritten(path string) string {
	if c.pos == nil {
		return path
	}
	parts := strings.Split(path, ".")
	for n := 1; n <= len(parts); n++ {
		p := strings.Join(parts[:n], ".")
		if !c.pos.Has(p) {
			return p
		}
	}
	return path
}

func (c converter) one(path string, e errors.Error) *diag.Diagnostic {
	msg := msgOf(e)
	pos := userPos(e)
	if strings.HasPrefix(msg, "incomplete value") || strings.HasPrefix(msg, "non-concrete value") {
		want := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(msg, "incomplete value"), "non-concrete value"))
		if p, written := c.posOf(path); !written {
			d := &diag.Diagnostic{Pos: p, Path: path, Message: "missing required field"}
			if want != "" {
				d.Hint = "want " + want
			}
			return d
		}
		return &diag.Diagnostic{Pos: pos, Path: path, Message: "value is not concrete: want " + want}
	}
	if p, written := c.posOf(path); written && (IsEmbedded(pos.Filename()) || strings.HasPrefix(p.Filename(), diag.OverridePrefix)) {
		pos = p
	}
	if m := outOfBound.FindStringSubmatch(msg); m != nil {
		what := " is out of range"
		if strings.HasPrefix(m[2], "=~") || strings.HasPrefix(m[2], "!~") {
			what = " is malformed"
		}
		return &diag.Diagnostic{Pos: pos, Path: path, Message: m[1] + what, Hint: "want " + m[2]}
	}
	if msg == "field not allowed" {
		parts := strings.Split(path, ".")
		if len(parts) == 2 && (parts[0] == "stages" || parts[0] == "datasets") {
			return &diag.Diagnostic{Pos: pos, Path: path, Message: fmt.Sprintf("%q is not a valid %s name", parts[1], strings.TrimSuffix(parts[0], "s")),
				Hint: "names are lower-case letters, digits and \"-\", starting with a letter"}
		}
		if u, ok := e.(*unknownField); ok && u.hint != "" {
			return &diag.Diagnostic{Pos: pos, Path: path, Message: "field not allowed", Hint: u.hint}
		}
		if u, ok := e.(*unknownField); ok && u.suggest != "" {
			return &diag.Diagnostic{Pos: pos, Path: path, Message: "field not allowed", Hint: fmt.Sprintf("did you mean %q?", u.suggest)}
		}
	}
	if m := conflicting.FindStringSubmatch(msg); m != nil {
		// One side is what the user wrote; the other is what is wanted.
		if got := c.userValue(path); got == m[1] || got == m[2] {
			want := m[1]
			if got == m[1] {
				want = m[2]
			}
			return &diag.Diagnostic{Pos: pos, Path: path, Message: got + " is not allowed", Hint: "want " + want}
		}
	}
	if strings.HasPrefix(msg, "incompatible") && strings.Contains(msg, "bounds") {
		// CUE says "incompatible integer bounds >0 and <1" when an integer
		// meets a fractional range; say what was given and what is wanted.
		bounds := msg[strings.Index(msg, "bounds")+len("bounds "):]
		d := &diag.Diagnostic{Pos: pos, Path: path, Message: "value out of range"}
		if got := c.userValue(path); got != "" {
			d.Message = got + " is out of range"
		}
		d.Hint = "want " + strings.ReplaceAll(bounds, " and ", " & ")
		return d
	}
	return &diag.Diagnostic{Pos: pos, Path: path, Message: msg}
}

// disjunction explains a failed enum or defaulted value.
func (c converter) disjunction(path string, members []errors.Error) diag.List {
	var specific, conflicts []errors.Error
	for _, e := range members {
		if strings.HasPrefix(msgOf(e), "conflicting values") {
			conflicts = append(conflicts, e)
		} else {
			specific = append(specific, e)
		}
	}
	var out diag.List
	if len(specific) > 0 {
		for _, e := range specific {
			out.Add(c.one(path, e))
		}
		return out
	}
	if len(conflicts) == 0 {
		return out
	}
	// Each conflict is "conflicting values A and B"; the value common to
	// all of them is the user's, the others are the allowed ones.
	counts := map[string]int{}
	var seen []string
	for _, e := range conflicts {
		_, args := e.Msg()
		for _, a := range args[:min(2, len(args))] {
			s := fmt.Sprint(a)
			if counts[s] == 0 {
				seen = append(seen, s)
			}
			counts[s]++
		}
	}
	got := ""
	var allowed []string
	for _, s := range seen {
		if counts[s] == len(conflicts) && got == "" && len(conflicts) > 1 {
			got = s
			continue
		}
		allowed = append(allowed, s)
	}
	allowed = dropCoveredDefaults(allowed)
	if got == "" {
		for _, e := range conflicts {
			out.Add(c.one(path, e))
		}
		return out
	}
	pos := userPos(conflicts[0])
	d := &diag.Diagnostic{Pos: pos, Path: path, Message: fmt.Sprintf("%s is not allowed", got)}
	if len(allowed) == 1 {
		d.Hint = "want " + allowed[0]
	} else {
		d.Hint = "want one of " + strings.Join(allowed, ", ")
	}
	out.Add(d)
	return out
}

// dropCoveredDefaults removes a default's literal from the alternatives
// when a type alternative covers it: `*2048 | int` reads as "want int".
func dropCoveredDefaults(alts []string) []string {
	has := map[string]bool{}
	for _, a := range alts {
		has[a] = true
	}
	numeric := has["int"] || has["number"] || has["float"]
	var out []string
	for _, a := range alts {
		isNum := len(a) > 0 && (a[0] >= '0' && a[0] <= '9' || a[0] == '-')
		isStr := strings.HasPrefix(a, "\"")
		isBool := a == "true" || a == "false"
		if isNum && numeric || isStr && has["string"] || isBool && has["bool"] {
			continue
		}
		out = append(out, a)
	}
	return out
}

// posOf finds where path was written by the user, or else where its
// nearest written ancestor was, and reports whether path itself was.
func (c converter) posOf(path string) (token.Pos, bool) {
	if c.pos == nil {
		return token.NoPos, false
	}
	return c.pos.At(path), c.pos.Has(path)
}

var (
	outOfBound  = regexp.MustCompile(`^invalid value (.*) \(out of bound (.*)\)$`)
	conflicting = regexp.MustCompile(`^conflicting values (.*) and (.*?)(?: \(mismatched types .*\))?$`)
)

// userValue renders the concrete value the user gave at path, or "".
func (c converter) userValue(path string) string {
	if !c.user.Exists() {
		return ""
	}
	v := c.user.LookupPath(cue.ParsePath(path))
	if !v.Exists() || !v.IsConcrete() {
		return ""
	}
	b, err := v.MarshalJSON()
	if err != nil {
		return ""
	}
	return string(b)
}

func msgOf(e errors.Error) string {
	f, args := e.Msg()
	return fmt.Sprintf(f, args...)
}
