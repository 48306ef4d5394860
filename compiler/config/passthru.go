package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/libknobs"
	"github.com/ftc-dev/ftc/compiler/passthru"
)

// passthrough checks a stage's passthrough settings (trainer: {...},
// peft: {...}) against the field table of the recipe's profile
// (compiler/passthru): each key a field of the class the stage builds,
// each value of a type the field takes, and none a keyword ftc decides
// itself (compiler/libknobs), which is refused with the recipe field that
// sets it.
func (c *checker) passthrough(base string, st Stage) {
	if len(st.Trainer) == 0 && len(st.PEFT) == 0 {
		return
	}
	t := c.fieldTable(base, st)
	if t == nil {
		return
	}
	if len(st.Trainer) > 0 {
		if class := libknobs.ClassOf(st.Method, st.Backend); class != "" {
			c.passKeys(base, base+".trainer", t, class, st.Trainer)
		}
	}
	if len(st.PEFT) > 0 {
		if st.Adapter.Type == "none" {
			c.errorf(base+".peft", "peft settings apply to a LoRA adapter, and the stage's adapter type is \"none\"").
				WithHint("set adapter: type: \"lora\" (or \"qlora\"), or remove peft")
			return
		}
		c.passKeys(base, base+".peft", t, libknobs.LoraConfig, st.PEFT)
	}
}

// fieldTable is the table of the recipe's profile, or nil (and an error at
// the stage's passthrough block) when its libraries have none.
func (c *checker) fieldTable(base string, st Stage) *passthru.Table {
	env := c.r.Environment
	t := passthru.Tables()[env.Profile]
	if t != nil {
		same := true
		for lib, v := range t.Versions {
			same = same && env.Packages[lib] == v
		}
		if same {
			return t
		}
	}
	at := base + ".trainer"
	if len(st.Trainer) == 0 {
		at = base + ".peft"
	}
	var have []string
	for _, id := range passthru.Profiles() {
		have = append(have, fmt.Sprintf("%s (%s)", profileName(id), libVersions(passthru.Tables()[id].Versions)))
	}
	c.errorf(at, "passthrough settings are checked against the fields of a stock profile's libraries, and %s has none for %s",
		"profile \""+env.Profile+"\"", libVersions(pick(env.Packages, "peft", "transformers", "trl"))).
		WithHint("use a stock profile as it is: %s", strings.Join(have, ", or "))
	return nil
}

// passKeys checks the keys of one passthrough block against class.
func (c *checker) passKeys(base, block string, t *passthru.Table, class string, pt Passthrough) {
	for _, name := range sortedKeys(pt) {
		raw := pt[name]
		p := block + "." + name
		if d, owned := libknobs.OwnerOf(class, name); owned {
			c.ownedKey(base, p, name, d)
			continue
		}
		f, ok := t.Field(class, name)
		if !ok {
			c.missingKey(base, p, name, t, class)
			continue
		}
		lib := t.LibOf(class, name)
		owner := fmt.Sprintf("%s %s's %s.%s", lib, t.Versions[lib], declaring(t, class, name), name)
		kind := passthru.Kind(raw)
		switch {
		case !f.Settable():
			c.errorf(p, "%s takes a Python object, which a recipe cannot give", owner)
		case !f.Accepts(kind):
			c.errorf(p, "%s is %s; %s takes %s", compact(raw), kindName(kind), owner, f.Describe())
		case kind == "str" && len(f.Choices) > 0 && !contains(f.Choices, unquote(raw)):
			d := c.errorf(p, "%s is not a value %s takes: it takes %s", compact(raw), owner, f.Describe())
			if near := diag.Nearest(unquote(raw), f.Choices); near != "" {
				d.WithHint("did you mean %q?", near)
			}
		}
	}
}

// ownedKey refuses a passthrough key ftc decides itself.
func (c *checker) ownedKey(base, p, name string, d libknobs.Decider) {
	c.errorf(p, "%s is ftc's own setting and cannot be passed through", name).WithHint("%s", instead(base, d))
}

// instead says what decides an owned key: the recipe field to set, or
// how ftc decides it.
func instead(base string, d libknobs.Decider) string {
	if d.Setting == "" {
		return d.Why
	}
	field := base + "." + d.Setting
	if strings.HasPrefix(d.Setting, "hardware.") {
		field = d.Setting
	}
	if d.Why != "" {
		return fmt.Sprintf("set %s instead (%s)", field, d.Why)
	}
	return fmt.Sprintf("set %s instead", field)
}

// missingKey says that class has no field name in the recipe's profile:
// which stock profile's library has it, or which field was meant.
func (c *checker) missingKey(base, p, name string, t *passthru.Table, class string) {
	var with []string
	lib := ""
	for _, id := range passthru.Profiles() {
		o := passthru.Tables()[id]
		if o == t {
			continue
		}
		if _, ok := o.Field(class, name); ok {
			lib = o.LibOf(class, name)
			with = append(with, fmt.Sprintf("%s (%s %s)", profileName(id), lib, o.Versions[lib]))
		}
	}
	if len(with) > 0 {
		c.errorf(p, "%s %s's %s has no field %s", lib, t.Versions[lib], declaringFor(t, class, lib), name).
			WithHint("use a profile whose %s has it: %s", lib, strings.Join(with, ", "))
		return
	}
	d := c.errorf(p, "%s has no field %q", classVersions(t, class), name)
	if class != libknobs.LoraConfig {
		var in []string
		for _, other := range libknobs.Classes {
			if _, owned := libknobs.OwnerOf(other, name); owned {
				continue
			}
			if _, ok := t.Field(other, name); ok && other != class {
				in = append(in, other)
			}
		}
		if len(in) > 0 {
			d.WithHint("%s has it, which %s builds; this stage builds %s", strings.Join(in, " and "), builders(in), class)
			return
		}
	}
	near := diag.Nearest(name, t.Names(class))
	if near != "" {
		if own, owned := libknobs.OwnerOf(class, near); owned {
			d.WithHint("did you mean %q? that is ftc's own setting: %s", near, instead(base, own))
		} else {
			d.WithHint("did you mean %q?", near)
		}
	} else {
		d.WithHint("its fields are listed in stdlib/python/envs/%s/fields.json", t.Profile)
	}
}

// declaring is the class that declares field name of class (the base
// class for an inherited field).
func declaring(t *passthru.Table, class, name string) string {
	cl := t.Classes[class]
	if _, own := cl.Fields[name]; own || cl.Extends == "" {
		return class
	}
	return declaring(t, cl.Extends, name)
}

// declaringFor is class, or its base class when lib is the base's.
func declaringFor(t *passthru.Table, class, lib string) string {
	if cl := t.Classes[class]; cl.Lib != lib && cl.Extends != "" {
		return cl.Extends
	}
	return class
}

// classVersions names class with the library versions its fields come
// from: "trl 0.16.0's SFTConfig (with transformers 4.48.2's TrainingArguments)".
func classVersions(t *passthru.Table, class string) string {
	cl := t.Classes[class]
	s := fmt.Sprintf("%s %s's %s", cl.Lib, t.Versions[cl.Lib], class)
	if cl.Extends != "" {
		b := t.Classes[cl.Extends]
		s += fmt.Sprintf(" (with %s %s's %s)", b.Lib, t.Versions[b.Lib], cl.Extends)
	}
	return s
}

// profileName is the CUE name of a stock profile (profiles.Current2026).
func profileName(id string) string {
	for _, p := range libknobs.Stock {
		if p.ID == id {
			return "profiles." + p.Name
		}
	}
	return fmt.Sprintf("profile %q", id)
}

func libVersions(m map[string]string) string {
	var parts []string
	for _, lib := range sortedKeys(m) {
		parts = append(parts, lib+" "+m[lib])
	}
	return strings.Join(parts, ", ")
}

func pick(m map[string]string, keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		v := m[k]
		if v == "" {
			v = "(none)"
		}
		out[k] = v
	}
	return out
}

func kindName(kind string) string {
	return map[string]string{"null": "null", "bool": "a bool", "int": "an int", "float": "a float",
		"str": "a string", "list": "a list", "dict": "a struct"}[kind]
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

func unquote(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// builders says which stages build the classes.
func builders(classes []string) string {
	var out []string
	for _, c := range classes {
		switch c {
		case libknobs.TrainingArguments:
			out = append(out, "an sft stage with backend \"transformers\"")
		case libknobs.SFTConfig:
			out = append(out, "an sft stage with backend \"trl\"")
		case libknobs.RewardConfig:
			out = append(out, "a reward stage")
		case libknobs.GRPOConfig:
			out = append(out, "a grpo stage")
		case libknobs.RLOOConfig:
			out = append(out, "an rloo stage")
		case libknobs.PPOConfig:
			out = append(out, "a ppo stage")
		case libknobs.DPOConfig:
			out = append(out, "a dpo stage")
		case libknobs.ORPOConfig:
			out = append(out, "an orpo stage")
		case libknobs.CPOConfig:
			out = append(out, "a simpo stage")
		case libknobs.KTOConfig:
			out = append(out, "a kto stage")
		}
	}
	return strings.Join(out, " or ")
}
