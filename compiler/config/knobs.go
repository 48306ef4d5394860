package config

import (
	"fmt"
	"strings"

	"github.com/ftc-dev/ftc/compiler/libknobs"
)

// knobSettings reads, for the recipe settings that map to a trainer-config
// keyword some library version lacks (libknobs.Knob.Bounded), the stage's
// value and whether the entrypoint passes it. A test keeps it complete.
var knobSettings = map[string]func(r *Recipe, st Stage) (any, bool){
	"grpo.generation.groupPort": func(r *Recipe, st Stage) (any, bool) {
		if st.GRPO == nil || st.GRPO.Generation.Engine != "vllm" {
			return nil, false
		}
		return st.GRPO.Generation.GroupPort, true
	},
}

// knobs refuses a stage setting whose trainer-config keyword the
// profile's libraries lack (libknobs): the entrypoint would have to drop
// it, and a dropped setting is a silent change. Where the library without
// the keyword does what the setting asks (Knob.Without), the setting
// passes.
func (c *checker) knobs(base string, st Stage) {
	class := libknobs.ClassOf(st.Method, st.Backend)
	for _, k := range libknobs.For(class) {
		if k.Setting == "" || k.Handled != "" || !k.Bounded() {
			continue
		}
		v := c.r.Environment.Packages[k.Lib]
		if v == "" || k.NameAt(v) != "" {
			continue
		}
		read := knobSettings[k.Setting]
		if read == nil {
			continue // TestKnobSettingsComplete keeps this from happening
		}
		val, on := read(c.r, st)
		if !on || k.Without != nil && fmt.Sprint(val) == fmt.Sprint(k.Without) {
			continue
		}
		path := base + "." + k.Setting
		if strings.HasPrefix(k.Setting, "hardware.") {
			path = k.Setting
		}
		leaf := k.Setting[strings.LastIndex(k.Setting, ".")+1:]
		d := c.errorf(path, "%s %v cannot reach the trainer: %s %s's %s has no %s%s",
			leaf, val, k.Lib, v, class, k.Name, knobBounds(k))
		var alts []string
		if k.Without != nil {
			alts = append(alts, fmt.Sprintf("set %s: %v, what %s %s does without it", leaf, k.Without, k.Lib, v))
		}
		var with []string
		for _, p := range k.With() {
			with = append(with, fmt.Sprintf("profiles.%s (%s %s)", p.Name, k.Lib, p.Versions[k.Lib]))
		}
		if len(with) > 0 {
			alts = append(alts, "use a profile whose "+k.Lib+" has it: "+strings.Join(with, ", "))
		}
		if len(alts) > 0 {
			d.WithHint("%s", strings.Join(alts, ", or "))
		}
	}
}

// knobBounds says when a one-spelling keyword came or went.
func knobBounds(k libknobs.Knob) string {
	if len(k.Spellings) != 1 {
		return ""
	}
	s := k.Spellings[0]
	switch {
	case s.Since != "" && s.Until != "":
		return fmt.Sprintf(" (%s has it from %s to before %s)", k.Lib, s.Since, s.Until)
	case s.Since != "":
		return fmt.Sprintf(" (added in %s %s)", k.Lib, s.Since)
	case s.Until != "":
		return fmt.Sprintf(" (removed in %s %s)", k.Lib, s.Until)
	}
	return ""
}
