package launch

import (
	"fmt"
	"strings"

	"github.com/ftc-dev/ftc/compiler/launch/shq"
)

// ScriptFile is the name of a stage's launch script in the files that
// ftc plan --out writes.
const ScriptFile = "launch.sh"

// Script renders a stage's launch plan as a POSIX sh script, run in the
// stage's run directory next to stage.json: the environment, the
// generation server (when the plan has one) and the launcher command.
// Every value is quoted by shq; $FTC_MASTER_ADDR and $FTC_NODE_RANK
// expand, so a multi-node script runs on each node with those set.
func Script(stage, kind, key string, p Plan) (string, error) {
	for _, s := range append(append([]string{}, p.Argv...), SortedEnv(p.Env)...) {
		if !shq.Valid(s) {
			return "", fmt.Errorf("launch script for stage %s: %q holds a NUL byte", stage, s)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\n# %s (%s), key %s\n# Run in the stage's run directory, next to stage.json.\nset -e\n",
		shq.Comment(stage), shq.Comment(kind), shq.Comment(key))
	if p.Nodes > 1 {
		fmt.Fprintf(&b, "# On every node, with %s (the first node's address) and %s (0 to %d) set.\n", EnvMasterAddr, EnvNodeRank, p.Nodes-1)
	}
	assign := func(env map[string]string) ([]string, error) {
		var out []string
		for _, kv := range SortedEnv(env) {
			k, v, _ := strings.Cut(kv, "=")
			if !shq.IsName(k) {
				return nil, fmt.Errorf("launch script for stage %s: environment variable name %q", stage, k)
			}
			if !shq.Valid(v) {
				return nil, fmt.Errorf("launch script for stage %s: %s holds a NUL byte", stage, k)
			}
			out = append(out, k+"="+shq.Quote(v))
		}
		return out, nil
	}
	env, err := assign(p.Env)
	if err != nil {
		return "", err
	}
	for _, e := range env {
		fmt.Fprintf(&b, "export %s\n", e)
	}
	vars := []string{EnvMasterAddr, EnvNodeRank}
	if sv := p.Server; sv != nil {
		senv, err := assign(sv.Env)
		if err != nil {
			return "", err
		}
		for _, a := range sv.Argv {
			if !shq.Valid(a) {
				return "", fmt.Errorf("launch script for stage %s: %q holds a NUL byte", stage, a)
			}
		}
		words := append([]string{"CUDA_VISIBLE_DEVICES=" + shq.Quote(ints(sv.GPUs, ","))}, senv...)
		fmt.Fprintf(&b, "# the generation server first, on GPUs %s\n%s %s &\n", ints(sv.GPUs, ","), strings.Join(words, " "), shq.Join(sv.Argv, vars...))
		if len(p.GPUs) > 0 {
			fmt.Fprintf(&b, "export CUDA_VISIBLE_DEVICES=%s\n", shq.Quote(ints(p.GPUs, ",")))
		}
	}
	fmt.Fprintf(&b, "%s\n", shq.Join(p.Argv, vars...))
	return b.String(), nil
}

func ints(xs []int, sep string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, sep)
}
