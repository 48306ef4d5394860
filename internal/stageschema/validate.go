package stageschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
)

// keywords are the keywords Generate emits and Validate implements. The
// annotations ($schema, $id, title, description, x-ftc-configByKind)
// validate nothing.
var keywords = map[string]bool{
	"$schema": true, "$id": true, "$defs": true, "$ref": true, "title": true, "description": true,
	"x-ftc-configByKind": true,
	"type":               true, "enum": true, "properties": true, "required": true, "additionalProperties": true,
	"items": true, "oneOf": true,
}

// Validator checks JSON documents against a schema that uses only the
// keywords Generate emits.
type Validator struct {
	root map[string]any
}

// Compile parses a schema and refuses one that uses a keyword Validate
// does not implement, or a $ref it cannot resolve.
func Compile(schema []byte) (*Validator, error) {
	var root map[string]any
	if err := json.Unmarshal(schema, &root); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	v := &Validator{root: root}
	if err := v.check(root, "#"); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *Validator) check(s map[string]any, at string) error {
	var errs []error
	for k, val := range s {
		if !keywords[k] {
			errs = append(errs, fmt.Errorf("schema %s: keyword %q is not implemented by this validator", at, k))
			continue
		}
		sub := func(name string, x any) {
			m, ok := x.(map[string]any)
			if !ok {
				errs = append(errs, fmt.Errorf("schema %s/%s: not a schema object", at, name))
				return
			}
			errs = append(errs, v.check(m, at+"/"+name))
		}
		switch k {
		case "$defs", "properties":
			m, _ := val.(map[string]any)
			for name, x := range m {
				sub(k+"/"+name, x)
			}
		case "items":
			sub(k, val)
		case "additionalProperties":
			if _, isBool := val.(bool); !isBool {
				sub(k, val)
			}
		case "oneOf":
			l, _ := val.([]any)
			for i, x := range l {
				sub(fmt.Sprintf("oneOf/%d", i), x)
			}
		case "$ref":
			ref, _ := val.(string)
			if _, err := v.resolve(ref); err != nil {
				errs = append(errs, fmt.Errorf("schema %s: %w", at, err))
			}
		}
	}
	return errors.Join(errs...)
}

// resolve finds a local reference, "#" or "#/$defs/NAME".
func (v *Validator) resolve(ref string) (map[string]any, error) {
	if ref == "#" {
		return v.root, nil
	}
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not #/$defs/NAME", ref)
	}
	defs, _ := v.root["$defs"].(map[string]any)
	s, ok := defs[name].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("$ref %q names no definition", ref)
	}
	return s, nil
}

// Validate checks doc (JSON) against the schema's root.
func (v *Validator) Validate(doc []byte) error { return v.ValidateRef("#", doc) }

// ValidateRef checks doc (JSON) against the schema ref names ("#" or
// "#/$defs/NAME"). The error lists every violation, each with its path.
func (v *Validator) ValidateRef(ref string, doc []byte) error {
	s, err := v.resolve(ref)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return err
	}
	return errors.Join(v.validate(s, x, "$")...)
}

func (v *Validator) validate(s map[string]any, x any, at string) []error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{at}, args...)...))
	}
	if ref, ok := s["$ref"].(string); ok {
		t, err := v.resolve(ref)
		if err != nil {
			fail("%v", err)
			return errs
		}
		errs = append(errs, v.validate(t, x, at)...)
	}
	if t, ok := s["type"]; ok {
		var names []string
		switch t := t.(type) {
		case string:
			names = []string{t}
		case []any:
			for _, n := range t {
				s, _ := n.(string)
				names = append(names, s)
			}
		}
		match := false
		for _, n := range names {
			match = match || isType(x, n)
		}
		if !match {
			fail("%s is not %s", describe(x), strings.Join(names, " or "))
			return errs // the other keywords would only repeat it
		}
	}
	if e, ok := s["enum"].([]any); ok {
		found := false
		for _, val := range e {
			found = found || val == x
		}
		if !found {
			var vals []string
			for _, val := range e {
				vals = append(vals, fmt.Sprintf("%q", val))
			}
			fail("%s is not one of %s", describe(x), strings.Join(vals, ", "))
		}
	}
	if obj, ok := x.(map[string]any); ok {
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					fail("%q is required", r)
				}
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, v.validate(ps, obj[k], at+"."+k)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					fail("%q is not a known property", k)
				}
			case map[string]any:
				errs = append(errs, v.validate(ap, obj[k], at+"."+k)...)
			}
		}
	}
	if arr, ok := x.([]any); ok {
		if items, ok := s["items"].(map[string]any); ok {
			for i, el := range arr {
				errs = append(errs, v.validate(items, el, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	if alts, ok := s["oneOf"].([]any); ok {
		var matched int
		var why []string
		for i, a := range alts {
			sub := v.validate(a.(map[string]any), x, at)
			if len(sub) == 0 {
				matched++
				continue
			}
			why = append(why, fmt.Sprintf("(%d) %v", i, sub[0]))
		}
		switch {
		case matched == 0:
			fail("matches none of oneOf: %s", strings.Join(why, "; "))
		case matched > 1:
			fail("matches %d of oneOf, want exactly one", matched)
		}
	}
	return errs
}

func isType(x any, name string) bool {
	switch name {
	case "null":
		return x == nil
	case "boolean":
		_, ok := x.(bool)
		return ok
	case "string":
		_, ok := x.(string)
		return ok
	case "object":
		_, ok := x.(map[string]any)
		return ok
	case "array":
		_, ok := x.([]any)
		return ok
	case "number":
		_, ok := x.(json.Number)
		return ok
	case "integer":
		// JSON Schema: a number with no fractional part (1.0 included).
		n, ok := x.(json.Number)
		if !ok {
			return false
		}
		f, _, err := big.ParseFloat(string(n), 10, 256, big.ToNearestEven)
		return err == nil && f.IsInt()
	}
	return false
}

func describe(x any) string {
	switch x := x.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return fmt.Sprintf("%q", x)
	}
	return fmt.Sprint(x)
}

// ValidateStage checks a stage file against the schema's root and its
// config against the stage config its kind carries (x-ftc-configByKind):
// the root's oneOf alone would accept a prepare config in an sft stage.
func (v *Validator) ValidateStage(doc []byte) error {
	if err := v.Validate(doc); err != nil {
		return err
	}
	var sf struct {
		Kind   string          `json:"kind"`
		Config json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(doc, &sf); err != nil {
		return err
	}
	byKind, _ := v.root["x-ftc-configByKind"].(map[string]any)
	ref, ok := byKind[sf.Kind].(string)
	if !ok {
		return fmt.Errorf("$.kind: %q has no stage config in x-ftc-configByKind", sf.Kind)
	}
	if err := v.ValidateRef(ref, sf.Config); err != nil {
		return fmt.Errorf("$.config of a %s stage (%s): %w", sf.Kind, ref, err)
	}
	return nil
}
