package stageschema

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/exec"
)

// File is where the generated schema is committed, relative to the
// repository root.
const File = "stdlib/python/ftc/stage.schema.json"

// ID is the schema's $id: the stage file's apiVersion it describes.
const ID = "https://ftc.dev/schema/" + exec.StageFileVersion + "/stage.schema.json"

// ConfigByKind names the $defs entry of the stage config a stage of each
// kind carries (StageFile.Config is an interface in Go). The schema
// records it as x-ftc-configByKind, which validators ignore and the
// tests of both sides check.
var ConfigByKind = map[plan.Kind]reflect.Type{
	plan.KindPrepare: reflect.TypeFor[plan.PrepareConfig](),
	plan.KindSFT:     reflect.TypeFor[plan.StageConfig](),
	plan.KindReward:  reflect.TypeFor[plan.StageConfig](),
	plan.KindPPO:     reflect.TypeFor[plan.StageConfig](),
	plan.KindGRPO:    reflect.TypeFor[plan.StageConfig](),
	plan.KindRLOO:    reflect.TypeFor[plan.StageConfig](),
	plan.KindExport:  reflect.TypeFor[plan.ExportConfig](),
	plan.KindDPO:     reflect.TypeFor[plan.StageConfig](),
	plan.KindORPO:    reflect.TypeFor[plan.StageConfig](),
	plan.KindSimPO:   reflect.TypeFor[plan.StageConfig](),
	plan.KindKTO:     reflect.TypeFor[plan.StageConfig](),
	// The reference stage of a DPO stage.
	plan.KindReference: reflect.TypeFor[plan.ReferenceConfig](),
	plan.KindEval:      reflect.TypeFor[plan.EvalConfig](),
}

// enums are the named string types with a fixed set of values. Neither
// type exports its set (each has Valid()); TestEnumsAreValid checks every
// value here against it.
var enums = map[reflect.Type][]string{
	reflect.TypeFor[plan.Kind](): {
		string(plan.KindPrepare), string(plan.KindSFT), string(plan.KindReward),
		string(plan.KindPPO), string(plan.KindGRPO), string(plan.KindRLOO), string(plan.KindExport),
		string(plan.KindDPO), string(plan.KindORPO), string(plan.KindSimPO), string(plan.KindKTO), string(plan.KindReference), string(plan.KindEval),
	},
	reflect.TypeFor[config.Strategy](): {
		string(config.StrategySingle), string(config.StrategyDDP), string(config.StrategyFSDP),
		string(config.StrategyZeRO2), string(config.StrategyZeRO3),
	},
}

// custom are the schemas of types that marshal themselves: reflection
// cannot see their JSON form, so each is written here by hand, next to
// the MarshalJSON it describes.
var custom = map[reflect.Type]*Schema{
	// config.Targets.MarshalJSON: "all-linear" or a list of module names.
	reflect.TypeFor[config.Targets](): {OneOf: []*Schema{
		{Type: "string", Enum: []string{"all-linear"}},
		{Type: "array", Items: &Schema{Type: "string"}},
	}},
	// Passthrough values are any JSON the recipe wrote.
	reflect.TypeFor[json.RawMessage](): {},
}

// Schema is one JSON Schema (draft 2020-12) node, with only the keywords
// Generate emits.
type Schema struct {
	Schema      string             `json:"$schema,omitempty"`
	ID          string             `json:"$id,omitempty"`
	Title       string             `json:"title,omitempty"`
	Description string             `json:"description,omitempty"`
	Ref         string             `json:"$ref,omitempty"`
	Type        any                `json:"type,omitempty"` // a name, or a list of names
	Enum        []string           `json:"enum,omitempty"`
	Properties  map[string]*Schema `json:"properties,omitempty"`
	Required    []string           `json:"required,omitempty"`
	// AdditionalProperties is false (closed struct) or a schema (map).
	AdditionalProperties any                `json:"additionalProperties,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	OneOf                []*Schema          `json:"oneOf,omitempty"`
	Defs                 map[string]*Schema `json:"$defs,omitempty"`
	ConfigByKind         map[string]string  `json:"x-ftc-configByKind,omitempty"`
}

// Generate returns the schema of stage.json, indented, with a trailing
// newline: the bytes of File.
func Generate() ([]byte, error) {
	g := &generator{defs: map[string]*Schema{}, named: map[string]reflect.Type{}}
	root, err := g.schema(reflect.TypeFor[exec.StageFile](), "")
	if err != nil {
		return nil, err
	}
	// The stage file's config is one of the stage configs, picked by kind.
	sf := g.defs["StageFile"]
	byKind := map[string]string{}
	var alts []*Schema
	seen := map[string]bool{}
	kinds := make([]string, 0, len(ConfigByKind))
	for k := range ConfigByKind {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		ref, err := g.schema(ConfigByKind[plan.Kind(k)], "")
		if err != nil {
			return nil, err
		}
		byKind[k] = ref.Ref
		if !seen[ref.Ref] {
			seen[ref.Ref] = true
			alts = append(alts, ref)
		}
	}
	sort.Slice(alts, func(i, j int) bool { return alts[i].Ref < alts[j].Ref })
	sf.Properties["config"] = &Schema{OneOf: alts}
	top := &Schema{
		Schema: "https://json-schema.org/draft/2020-12/schema",
		ID:     ID,
		Title:  "stage.json",
		Description: "The stage file the runtime writes into a stage's run directory and the entrypoints read. " +
			"Generated from the Go types by internal/stageschema; do not edit (FTC_UPDATE_GOLDEN=1 go test ./internal/stageschema).",
		Ref:          root.Ref,
		Defs:         g.defs,
		ConfigByKind: byKind,
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(top); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

type generator struct {
	defs  map[string]*Schema
	named map[string]reflect.Type // def name -> the type it was made from
}

var (
	marshaler     = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// schema returns the schema of t; where names the field for errors.
func (g *generator) schema(t reflect.Type, where string) (*Schema, error) {
	if s, ok := custom[t]; ok {
		c := *s
		return &c, nil
	}
	if vals, ok := enums[t]; ok {
		return &Schema{Type: "string", Enum: vals}, nil
	}
	if t.Implements(marshaler) || reflect.PointerTo(t).Implements(marshaler) ||
		t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
		return nil, fmt.Errorf("%s: %s marshals itself; describe its JSON in stageschema's custom table", where, t)
	}
	switch t.Kind() {
	case reflect.Bool:
		return &Schema{Type: "boolean"}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &Schema{Type: "integer"}, nil
	case reflect.Float32, reflect.Float64:
		return &Schema{Type: "number"}, nil
	case reflect.String:
		return &Schema{Type: "string"}, nil
	case reflect.Interface:
		return &Schema{}, nil // any JSON value
	case reflect.Pointer:
		s, err := g.schema(t.Elem(), where)
		if err != nil {
			return nil, err
		}
		return nullable(s), nil
	case reflect.Slice, reflect.Array:
		items, err := g.schema(t.Elem(), where+"[]")
		if err != nil {
			return nil, err
		}
		return &Schema{Type: "array", Items: items}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%s: map key %s is not a string", where, t.Key())
		}
		v, err := g.schema(t.Elem(), where+"{}")
		if err != nil {
			return nil, err
		}
		return &Schema{Type: "object", AdditionalProperties: v}, nil
	case reflect.Struct:
		return g.structRef(t)
	}
	return nil, fmt.Errorf("%s: %s has no JSON schema", where, t)
}

// structRef puts the schema of struct t under $defs (once) and returns a
// reference to it.
func (g *generator) structRef(t reflect.Type) (*Schema, error) {
	name := t.Name()
	if name == "" {
		return nil, fmt.Errorf("anonymous struct %s: give it a name", t)
	}
	ref := &Schema{Ref: "#/$defs/" + name}
	if prev, ok := g.named[name]; ok {
		if prev != t {
			return nil, fmt.Errorf("two types named %s (%s, %s): $defs needs one name each", name, prev, t)
		}
		return ref, nil
	}
	g.named[name] = t
	s := &Schema{Type: "object", Title: t.String(), Properties: map[string]*Schema{}, AdditionalProperties: false}
	g.defs[name] = s // before the fields: a type may refer to itself
	if err := g.fields(s, t); err != nil {
		return nil, err
	}
	sort.Strings(s.Required)
	return ref, nil
}

// fields adds the JSON fields of struct t to s, as encoding/json writes
// them (embedded structs without a tag are flattened).
func (g *generator) fields(s *Schema, t reflect.Type) error {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if err := g.fields(s, ft); err != nil {
					return err
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		where := t.String() + "." + f.Name
		omitempty := false
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "omitempty", "omitzero":
				omitempty = true
			case "":
			default:
				return fmt.Errorf("%s: json option %q is not supported", where, o)
			}
		}
		if _, dup := s.Properties[name]; dup {
			return fmt.Errorf("%s: a second field named %q", where, name)
		}
		fs, err := g.schema(f.Type, where)
		if err != nil {
			return err
		}
		// encoding/json writes a nil map or slice as null unless it is
		// omitted when empty.
		if !omitempty && (f.Type.Kind() == reflect.Map || f.Type.Kind() == reflect.Slice) {
			if _, own := custom[f.Type]; !own {
				fs = nullable(fs)
			}
		}
		s.Properties[name] = fs
		if !omitempty {
			s.Required = append(s.Required, name)
		}
	}
	return nil
}

// nullable is s or null.
func nullable(s *Schema) *Schema {
	if reflect.DeepEqual(s, &Schema{}) {
		return s // any JSON value, null included
	}
	if name, ok := s.Type.(string); ok && s.Ref == "" && s.OneOf == nil && s.Enum == nil {
		c := *s
		c.Type = []string{name, "null"}
		return &c
	}
	return &Schema{OneOf: []*Schema{s, {Type: "null"}}}
}
