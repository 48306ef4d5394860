package build

import (
	"maps"
	"strings"

	"github.com/ftc-dev/ftc/compiler/image"
)

// defaultPath is PATH when an image sets none (Docker's default).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// applyEnv applies a tier's environment to an image's: variables replace
// earlier values in place (the order stays the base's), new ones are
// appended, and PATH gets the prefix.
func applyEnv(env []string, c image.Config) []string {
	out := append([]string(nil), env...)
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		for i, e := range out {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				out[i] = kv
				return
			}
		}
		out = append(out, kv)
	}
	for _, kv := range c.Env {
		set(kv)
	}
	if len(c.PathPrefix) > 0 {
		path := defaultPath
		for _, e := range out {
			if v, ok := strings.CutPrefix(e, "PATH="); ok {
				path = v
			}
		}
		set("PATH=" + strings.Join(c.PathPrefix, ":") + ":" + path)
	}
	return out
}

func applyLabels(labels, add map[string]string) map[string]string {
	if len(add) == 0 {
		return labels
	}
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, add)
	return out
}
