package stageschema

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/exec"
)

// TestSchemaFileIsCurrent: the committed schema is what the Go types
// generate. Refresh with FTC_UPDATE_GOLDEN=1 after changing a type of
// stage.json (and teach ftc/stage.py the change).
func TestSchemaFileIsCurrent(t *testing.T) {
	got, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", filepath.FromSlash(File))
	if os.Getenv("FTC_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with FTC_UPDATE_GOLDEN=1 to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s is stale (-committed +generated); refresh with FTC_UPDATE_GOLDEN=1 go test ./internal/stageschema:\n%s", File, diff)
	}
	if _, err := Compile(want); err != nil {
		t.Errorf("the committed schema does not compile: %v", err)
	}
}

// Every enum value is one its type accepts.
func TestEnumsAreValid(t *testing.T) {
	valid := map[reflect.Type]func(string) bool{
		reflect.TypeFor[plan.Kind]():       func(s string) bool { return plan.Kind(s).Valid() },
		reflect.TypeFor[config.Strategy](): func(s string) bool { return config.Strategy(s).Valid() },
	}
	for typ, vals := range enums {
		ok := valid[typ]
		if ok == nil {
			t.Errorf("enum %s has no validity check in this test", typ)
			continue
		}
		for _, v := range vals {
			if !ok(v) {
				t.Errorf("enum %s lists %q, which it does not accept", typ, v)
			}
		}
	}
	for _, k := range enums[reflect.TypeFor[plan.Kind]()] {
		if ConfigByKind[plan.Kind(k)] == nil {
			t.Errorf("kind %s has no stage config in ConfigByKind", k)
		}
	}
	if len(ConfigByKind) != len(enums[reflect.TypeFor[plan.Kind]()]) {
		t.Errorf("ConfigByKind names %d kinds, the enum %d", len(ConfigByKind), len(enums[reflect.TypeFor[plan.Kind]()]))
	}
}

func validator(t *testing.T) *Validator {
	t.Helper()
	b, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	v, err := Compile(b)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sftStage is a stage file as the runtime writes one for an SFT stage.
func sftStage(t *testing.T) map[string]any {
	t.Helper()
	co := true
	sf := exec.StageFile{
		APIVersion: exec.StageFileVersion, Name: "sft", Kind: plan.KindSFT, Key: "sha256:abc",
		Config: plan.StageConfig{
			Method: "sft", Backend: "trl", CompletionOnly: &co,
			Speed:  &config.Speed{PaddingFree: true, ChunkedLoss: true, LossChunkTokens: 4096, Attention: "auto"},
			Models: map[string]plan.ModelConfig{"model": {Repo: "Qwen/Qwen2.5-0.5B-Instruct", Revision: "main", DType: "bf16", Attention: "sdpa", Family: "qwen2"}},
			Adapter: config.Adapter{Type: "lora", R: 16, Alpha: 32, Dropout: 0.05, Targets: config.Targets{Modules: []string{"q_proj"}},
				Quant: config.Quant{Type: "nf4", DoubleQuant: true, Compute: "bf16", Storage: "uint8"}},
			GradientCheckpointing: "on",
			Training:              plan.TrainingConfig{LearningRate: 2e-5, Schedule: "cosine", Optimizer: "adamw", MaxGradNorm: 1, Epochs: 1, MicroBatch: 1, GradAccum: 1, GlobalBatch: 1, Seed: 42},
			Data:                  plan.DataConfig{MaxLength: 512, OverLength: "drop", Mix: []plan.MixInput{{Input: "train.0", Weight: 1}}},
			Distributed:           plan.Distributed{Strategy: config.StrategySingle, Processes: 1},
			Cadence:               plan.Cadence{LogEvery: 10, SaveEvery: 100, KeepCheckpoints: 2},
			Trainer:               config.Passthrough{"report_to": json.RawMessage(`["none"]`)},
		},
		Inputs: map[string]exec.StageInput{"train.0": {Path: "inputs/train.0", Kind: "stage-output"}},
		Output: "output", Checkpoints: "checkpoints", Metrics: "metrics.jsonl",
		World: exec.World{Processes: 1, Strategy: config.StrategySingle},
	}
	b, err := json.Marshal(sf)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encode(t *testing.T, m any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestValidatorCatches: a stage file as Go writes it passes; each change
// below fails, with the path of the field in the error.
func TestValidatorCatches(t *testing.T) {
	v := validator(t)
	if err := v.ValidateStage(encode(t, sftStage(t))); err != nil {
		t.Fatalf("a stage file as the runtime writes it: %v", err)
	}
	obj := func(m map[string]any, path ...string) map[string]any {
		for _, p := range path {
			m = m[p].(map[string]any)
		}
		return m
	}
	for _, c := range []struct {
		name   string
		change func(m map[string]any)
		want   string
	}{
		{"unknown field", func(m map[string]any) { obj(m, "config", "training")["learningRat"] = 1e-5 }, `$.config.training: "learningRat" is not a known property`},
		{"unknown top-level field", func(m map[string]any) { m["resume"] = "x" }, `$: "resume" is not a known property`},
		{"wrong type", func(m map[string]any) { obj(m, "config", "training")["learningRate"] = "2e-5" }, `$.config.training.learningRate: "2e-5" is not number`},
		{"fraction for an integer", func(m map[string]any) { obj(m, "config", "training")["microBatch"] = 1.5 }, `$.config.training.microBatch: 1.5 is not integer`},
		{"bad enum", func(m map[string]any) { obj(m, "world")["strategy"] = "zero4" }, `$.world.strategy: "zero4" is not one of "single", "ddp", "fsdp", "zero2", "zero3"`},
		{"bad kind", func(m map[string]any) { m["kind"] = "ipo" }, `$.kind: "ipo" is not one of`},
		{"missing required", func(m map[string]any) { delete(obj(m, "config", "data"), "maxLength") }, `$.config.data: "maxLength" is required`},
		{"null where not nullable", func(m map[string]any) { obj(m, "config")["adapter"] = nil }, `$.config.adapter: null is not object`},
		{"bad targets", func(m map[string]any) { obj(m, "config", "adapter")["targets"] = "all" }, `$.config.adapter.targets: matches none of oneOf`},
		{"map value", func(m map[string]any) { obj(m, "inputs")["train.0"] = map[string]any{"kind": 3} }, `$.inputs.train.0.kind: 3 is not string`},
		{"array item", func(m map[string]any) {
			obj(m, "config", "data")["mix"] = []any{map[string]any{"input": "train.0", "weight": "1"}}
		}, `$.config.data.mix[0].weight: "1" is not number`},
		{"config of another kind", func(m map[string]any) { m["kind"] = "prepare" }, `$.config of a prepare stage (#/$defs/PrepareConfig)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := sftStage(t)
			c.change(m)
			err := v.ValidateStage(encode(t, m))
			if err == nil {
				t.Fatal("validates")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to say %q", err, c.want)
			}
		})
	}
}

// The validator refuses a schema with a keyword it does not implement,
// rather than ignoring it, and a $ref that names nothing.
func TestCompileRefusesWhatItCannotCheck(t *testing.T) {
	for _, s := range []string{
		`{"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}`,
		`{"$ref": "#/$defs/Nope"}`,
		`{"oneOf": [{"$ref": "https://example.com/x"}]}`,
	} {
		if _, err := Compile([]byte(s)); err == nil {
			t.Errorf("compiled %s", s)
		}
	}
}

// The walker follows encoding/json: tags, omitempty, "-", pointers
// (nullable), nil maps and slices (null unless omitted), embedded
// structs (flattened), and refuses what it cannot describe.
func TestWalker(t *testing.T) {
	type Inner struct {
		A int `json:"a"`
	}
	type Embedded struct {
		E string `json:"e"`
	}
	type Outer struct {
		Embedded
		Name    string            `json:"name"`
		Opt     int               `json:"opt,omitempty"`
		Skip    string            `json:"-"`
		Ptr     *Inner            `json:"ptr"`
		Strat   *config.Strategy  `json:"strat,omitempty"`
		Tags    map[string]string `json:"tags"`
		List    []Inner           `json:"list,omitempty"`
		Untaged bool
	}
	g := &generator{defs: map[string]*Schema{}, named: map[string]reflect.Type{}}
	if _, err := g.schema(reflect.TypeFor[Outer](), "Outer"); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(g.defs["Outer"])
	want := `{"title":"stageschema.Outer","type":"object","properties":{` +
		`"Untaged":{"type":"boolean"},"e":{"type":"string"},"list":{"type":"array","items":{"$ref":"#/$defs/Inner"}},` +
		`"name":{"type":"string"},"opt":{"type":"integer"},"ptr":{"oneOf":[{"$ref":"#/$defs/Inner"},{"type":"null"}]},` +
		`"strat":{"oneOf":[{"type":"string","enum":["single","ddp","fsdp","zero2","zero3"]},{"type":"null"}]},` +
		`"tags":{"type":["object","null"],"additionalProperties":{"type":"string"}}},` +
		`"required":["Untaged","e","name","ptr","tags"],"additionalProperties":false}`
	var a, b bytes.Buffer
	json.Indent(&a, got, "", " ")
	json.Indent(&b, []byte(want), "", " ")
	if diff := cmp.Diff(b.String(), a.String()); diff != "" {
		t.Errorf("schema of Outer (-want +got):\n%s", diff)
	}

	type Chan struct{ C chan int }
	type IntKeys struct {
		M map[int]string `json:"m"`
	}
	type Stringly struct {
		N int `json:"n,string"`
	}
	for _, typ := range []reflect.Type{
		reflect.TypeFor[Chan](), reflect.TypeFor[IntKeys](), reflect.TypeFor[marshals](),
		reflect.TypeFor[Stringly](), reflect.TypeFor[struct{ A int }](),
	} {
		g := &generator{defs: map[string]*Schema{}, named: map[string]reflect.Type{}}
		if _, err := g.schema(typ, "x"); err == nil {
			t.Errorf("%s: described", typ)
		}
	}
}

type marshals struct{}

func (marshals) MarshalJSON() ([]byte, error) { return []byte("1"), nil }
