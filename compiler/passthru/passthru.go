package passthru

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/ftc-dev/ftc/stdlib"
)

// Table is one profile's fields.json.
type Table struct {
	Profile  string            `json:"profile"`
	Versions map[string]string `json:"versions"`
	Classes  map[string]Class  `json:"classes"`
}

// Class is one config class of a table.
type Class struct {
	// Lib is the library that defines it: "transformers", "trl", "peft".
	Lib string `json:"lib"`
	// Extends names the class it inherits fields from (TrainingArguments
	// for trl's configs); Fields then lists only the fields it adds or
	// retypes, and Removes those it drops.
	Extends string           `json:"extends,omitempty"`
	Removes []string         `json:"removes,omitempty"`
	Fields  map[string]Field `json:"fields"`
}

// Field is the value types a keyword takes.
type Field struct {
	// Types are JSON kinds: "bool", "int", "float", "str", "list",
	// "dict", "null", "any", or "object" for a Python object a recipe
	// cannot give.
	Types []string `json:"types"`
	// Choices, when set, are the only strings the field takes (an Enum).
	Choices []string `json:"choices,omitempty"`
}

var (
	once   sync.Once
	tables map[string]*Table
)

// Tables are the embedded tables by profile id.
func Tables() map[string]*Table {
	once.Do(func() {
		tables = map[string]*Table{}
		files, err := fs.Glob(stdlib.FieldTables, "python/envs/*/fields.json")
		if err != nil {
			panic(err) // cannot happen: a constant pattern
		}
		for _, f := range files {
			b, err := fs.ReadFile(stdlib.FieldTables, f)
			if err != nil {
				panic(err) // cannot happen: embedded
			}
			var t Table
			if err := json.Unmarshal(b, &t); err != nil {
				panic(fmt.Sprintf("%s: %v", f, err)) // a test reads every table
			}
			if want := path.Base(path.Dir(f)); t.Profile != want {
				panic(fmt.Sprintf("%s: profile %q", f, t.Profile))
			}
			tables[t.Profile] = &t
		}
	})
	return tables
}

// Profiles are the ids of the profiles with a table, sorted.
func Profiles() []string {
	var out []string
	for p := range Tables() {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Field is the field name of class, own or inherited.
func (t *Table) Field(class, name string) (Field, bool) {
	c, ok := t.Classes[class]
	if !ok {
		return Field{}, false
	}
	if f, ok := c.Fields[name]; ok {
		return f, true
	}
	if c.Extends == "" {
		return Field{}, false
	}
	for _, r := range c.Removes {
		if r == name {
			return Field{}, false
		}
	}
	return t.Field(c.Extends, name)
}

// Names are every field name of class, sorted.
func (t *Table) Names(class string) []string {
	seen := map[string]bool{}
	c := t.Classes[class]
	if c.Extends != "" {
		for _, n := range t.Names(c.Extends) {
			seen[n] = true
		}
		for _, r := range c.Removes {
			delete(seen, r)
		}
	}
	for n := range c.Fields {
		seen[n] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// LibOf is the library whose version decides whether class has field
// name: the class that declares it (TrainingArguments' fields are
// transformers', whatever trl class inherits them).
func (t *Table) LibOf(class, name string) string {
	c := t.Classes[class]
	if _, own := c.Fields[name]; own || c.Extends == "" {
		return c.Lib
	}
	return t.LibOf(c.Extends, name)
}

// Kind is the JSON kind of a value as a recipe gives it: "null", "bool",
// "int" (a number written without a fraction or exponent), "float",
// "str", "list" or "dict".
func Kind(raw json.RawMessage) string {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 {
		return "null"
	}
	switch b[0] {
	case 'n':
		return "null"
	case 't', 'f':
		return "bool"
	case '"':
		return "str"
	case '[':
		return "list"
	case '{':
		return "dict"
	}
	if bytes.ContainsAny(b, ".eE") {
		return "float"
	}
	return "int"
}

// Accepts reports whether f takes a value of kind (an int where a float
// is asked: Python's float fields take ints).
func (f Field) Accepts(kind string) bool {
	for _, t := range f.Types {
		if t == kind || t == "any" || t == "float" && kind == "int" {
			return true
		}
	}
	return false
}

// Settable reports whether a recipe can give the field a value at all.
func (f Field) Settable() bool {
	for _, t := range f.Types {
		if t != "object" {
			return true
		}
	}
	return false
}

// Describe says which values f takes ("a float or null").
func (f Field) Describe() string {
	names := map[string]string{"bool": "a bool", "int": "an int", "float": "a float", "str": "a string",
		"list": "a list", "dict": "a struct", "null": "null", "any": "any value", "object": "a Python object"}
	var parts []string
	for _, t := range f.Types {
		if t == "str" && len(f.Choices) > 0 {
			parts = append(parts, "one of "+quoteAll(f.Choices))
			continue
		}
		parts = append(parts, names[t])
	}
	switch len(parts) {
	case 0:
		return "nothing"
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}
