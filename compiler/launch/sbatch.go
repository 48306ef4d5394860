package launch

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/launch/shq"
)

// SbatchFile is the name of a stage's batch script in its run directory.
const SbatchFile = "stage.sbatch"

// SbatchOutput is the file, in the run directory, that receives a Slurm
// job's stdout and stderr; Slurm replaces %j with the job ID. A requeued
// job keeps its ID and appends to the same file.
const SbatchOutput = "slurm-%j.out"

// SbatchInput is what a stage's batch script is rendered from.
type SbatchInput struct {
	// Plan is the stage's launch plan: its Argv runs once on every node.
	Plan Plan
	// Stage and Key name the stage; the job is called ftc-STAGE-KEY12.
	Stage, Key string
	// Slurm holds the recipe's settings: partition, account, qos, time
	// limit and container runtime ("none", "pyxis" or "apptainer").
	Slurm config.Slurm
	// Image is the stage image by digest (NAME@sha256:HEX). Required with
	// a container runtime, unused without one.
	Image string
	// RunDir is the stage's run directory: an absolute path on a file
	// system that the submitting host and every node share. The job
	// starts in it and writes its output there. Empty, the script names
	// no path: the job starts in the directory sbatch is run from, which
	// is what a script shipped with a plan (and submitted from the run
	// directory) wants.
	RunDir string
	// Env holds variables for every node, on top of the plan's. Their
	// values are written into the script, so never put a secret here:
	// secrets reach the job through sbatch's own environment, which the
	// script exports to the job (--export=ALL).
	Env map[string]string
	// Mounts are extra container bind mounts, SRC:DST (the cache, so that
	// inputs linked from it resolve).
	Mounts []string
	// CPUsPerTask is the number of CPUs of each node's launcher, which
	// forks all of that node's processes; it overrides the recipe's
	// slurm.cpusPerNode. With neither, one per process, the least that
	// runs; clusters usually want more for data loading.
	CPUsPerTask int
	// GraceSeconds, when positive, asks Slurm to send the stage's
	// processes SIGTERM that long before the time limit (--signal): the
	// recipe's hardware.preemption.graceSeconds, the time a training
	// stage has to save a checkpoint and exit as preempted.
	GraceSeconds int
}

// Sbatch renders a stage's batch script: one task per node, each starting
// the stage's launcher through srun with the rendezvous on the first node
// of the allocation (FTC_MASTER_ADDR) and FTC_NODE_RANK set per node from
// SLURM_NODEID. The output depends on in alone, so it can be diffed and
// checked against goldens.
func Sbatch(in SbatchInput) ([]byte, error) {
	p := in.Plan
	if in.Stage == "" {
		return nil, fmt.Errorf("sbatch: no stage name")
	}
	errorf := func(format string, args ...any) error {
		return fmt.Errorf("sbatch for stage %s: %s", in.Stage, fmt.Sprintf(format, args...))
	}
	if len(p.Argv) == 0 {
		return nil, errorf("the launch plan has no command")
	}
	if in.RunDir != "" && !strings.HasPrefix(in.RunDir, "/") {
		return nil, errorf("run directory %q is not an absolute path", in.RunDir)
	}
	if strings.ContainsAny(in.RunDir, ",:") {
		// Container mounts are SRC:DST lists separated by commas.
		return nil, errorf("run directory %q contains ',' or ':'", in.RunDir)
	}
	nodes := max(p.Nodes, 1)
	gpus := len(p.GPUs)
	if p.Server != nil {
		gpus += len(p.Server.GPUs)
	}
	cpus := in.CPUsPerTask
	if cpus <= 0 {
		cpus = in.Slurm.CPUsPerNode
	}
	if cpus <= 0 {
		cpus = max(1, gpus, p.ProcsPerNode)
	}

	container := in.Slurm.Container
	if container == "" {
		container = "none"
	}
	var image string
	switch container {
	case "none":
	case "pyxis", "apptainer":
		name, digest, err := sbatchSplitImage(in.Image)
		if err != nil {
			return nil, errorf("container %s: %v", container, err)
		}
		if container == "pyxis" {
			image = sbatchEnrootImage(name, digest)
		} else {
			image = "docker://" + name + "@" + digest
		}
	default:
		return nil, errorf("container runtime %q: want none, pyxis or apptainer", container)
	}
	for _, m := range in.Mounts {
		if container == "none" {
			break // nothing to mount into
		}
		src, dst, ok := strings.Cut(m, ":")
		if !ok || !strings.HasPrefix(src, "/") || !strings.HasPrefix(dst, "/") || strings.ContainsAny(dst, ":,") || strings.Contains(src, ",") {
			return nil, errorf("mount %q: want /SRC:/DST without ',' or further ':'", m)
		}
	}

	env := map[string]string{}
	for k, v := range p.Env {
		env[k] = v
	}
	for k, v := range in.Env {
		env[k] = v
	}
	for k := range env {
		if !shq.IsName(k) {
			return nil, errorf("environment variable name %q", k)
		}
	}

	var b bytes.Buffer
	var err error
	directive := func(flag, value string) {
		if err != nil {
			return
		}
		var v string
		if v, err = sbatchDirectiveValue(value); err != nil {
			err = errorf("#SBATCH %s: %v", flag, err)
			return
		}
		fmt.Fprintf(&b, "#SBATCH %s=%s\n", flag, v)
	}
	fmt.Fprintf(&b, "#!/bin/bash\n")
	fmt.Fprintf(&b, "# ftc stage %s", sbatchComment(in.Stage))
	if in.Key != "" {
		fmt.Fprintf(&b, " (%s)", sbatchComment(in.Key))
	}
	fmt.Fprintf(&b, ", rendered from the recipe: change the recipe, not this file.\n")
	name := "ftc-" + in.Stage
	if k := strings.TrimPrefix(in.Key, "sha256:"); k != "" {
		name += "-" + k[:min(12, len(k))]
	}
	directive("--job-name", name)
	directive("--nodes", strconv.Itoa(nodes))
	directive("--ntasks-per-node", "1")
	if gpus > 0 {
		directive("--gpus-per-node", strconv.Itoa(gpus))
	}
	directive("--cpus-per-task", strconv.Itoa(cpus))
	if in.Slurm.Time != "" {
		directive("--time", in.Slurm.Time)
	}
	if in.Slurm.Partition != "" {
		directive("--partition", in.Slurm.Partition)
	}
	if in.Slurm.Account != "" {
		directive("--account", in.Slurm.Account)
	}
	if in.Slurm.QOS != "" {
		directive("--qos", in.Slurm.QOS)
	}
	out := SbatchOutput
	if in.RunDir != "" {
		directive("--chdir", in.RunDir)
		out = strings.ReplaceAll(in.RunDir, "%", "%%") + "/" + SbatchOutput
	}
	// stdout and stderr share one file, appended to, so that a requeued
	// job's earlier attempts stay readable and ftc can follow one stream.
	directive("--output", out)
	directive("--error", out)
	directive("--open-mode", "append")
	// Secrets and the runtime's variables arrive through sbatch's
	// environment; a site default of --export=NONE would drop them.
	directive("--export", "ALL")
	if in.GraceSeconds > 0 {
		// Without "B:" Slurm signals every process of the job's steps,
		// the trainers under srun (and their launcher), not the batch
		// shell, which waits for srun and then requeues (below).
		directive("--signal", fmt.Sprintf("TERM@%d", in.GraceSeconds))
	}
	if err != nil {
		return nil, err
	}
	// A preempted or failed node puts the job back in the queue, and so
	// does the script itself when the stage stopped on the warning signal
	// of the time limit; ftc keeps following the job, and the stage
	// resumes from its checkpoints.
	b.WriteString("#SBATCH --requeue\n\n")

	fmt.Fprintf(&b, "set -euo pipefail\n\n")
	if len(env) > 0 {
		for _, k := range sbatchSortedKeys(env) {
			w, err := sbatchQuote(env[k])
			if err != nil {
				return nil, errorf("variable %s: %v", k, err)
			}
			fmt.Fprintf(&b, "export %s=%s\n", k, w)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "# The rendezvous is on the first node of the allocation.\n")
	fmt.Fprintf(&b, "%s=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | sed -n 1p)\n", EnvMasterAddr)
	fmt.Fprintf(&b, "export %s\n", EnvMasterAddr)
	fmt.Fprintf(&b, "echo \"ftc: job $SLURM_JOB_ID, attempt $((${SLURM_RESTART_COUNT:-0} + 1)), nodes $SLURM_JOB_NODELIST, rendezvous on $%s\"\n\n", EnvMasterAddr)

	node, err := sbatchNodeScript(p, gpus)
	if err != nil {
		return nil, errorf("%v", err)
	}
	fmt.Fprintf(&b, "# What each node runs: one launcher, with %s its index in the allocation.\n", EnvNodeRank)
	fmt.Fprintf(&b, "ftc_node=$(cat <<'FTC_NODE'\n%sFTC_NODE\n)\n", node)

	lines := []string{fmt.Sprintf("srun --nodes=%d --ntasks=%d --ntasks-per-node=1 --cpus-per-task=%d --kill-on-bad-exit=1", nodes, nodes, cpus)}
	// The run directory is mounted at its own path: the stage file and
	// the launch command name files relative to it.
	rd := `"$PWD"`
	if in.RunDir != "" {
		if rd, err = sbatchQuote(in.RunDir); err != nil {
			return nil, errorf("%v", err)
		}
	}
	var mounts []string
	for _, m := range in.Mounts {
		q, err := sbatchQuote(m)
		if err != nil {
			return nil, errorf("%v", err)
		}
		mounts = append(mounts, q)
	}
	switch container {
	case "pyxis":
		img, err := sbatchQuote("--container-image=" + image)
		if err != nil {
			return nil, errorf("%v", err)
		}
		lines = append(lines, img, "--container-mounts="+strings.Join(append([]string{rd + ":" + rd}, mounts...), ","), "--container-workdir="+rd)
	case "apptainer":
		words := []string{"apptainer", "exec"}
		if gpus > 0 {
			words = append(words, "--nv")
		}
		words = append(words, "--bind", rd)
		for _, m := range mounts {
			words = append(words, "--bind", m)
		}
		img, err := sbatchQuote(image)
		if err != nil {
			return nil, errorf("%v", err)
		}
		words = append(words, "--pwd", rd, img)
		lines = append(lines, strings.Join(words, " "))
	}
	lines = append(lines, `bash -c "$ftc_node"`)
	if container == "pyxis" {
		// enroot reads REGISTRY#IMAGE:sha256:HEX as the manifest by digest.
		fmt.Fprintf(&b, "# The image is pinned by digest (enroot URI: REGISTRY#IMAGE:sha256:HEX).\n")
	}
	// An earlier attempt's marker says nothing of this one.
	fmt.Fprintf(&b, "rm -f %s\nftc_status=0\n", PreemptedMarker)
	b.WriteString(strings.Join(lines, " \\\n\t") + " || ftc_status=$?\n")
	fmt.Fprintf(&b, "\n# A training stage that got SIGTERM (--signal, or Slurm's preemption) saves a\n")
	fmt.Fprintf(&b, "# checkpoint, leaves %s and exits %d (preempted, resumable): the job goes\n", PreemptedMarker, ExitPreempted)
	fmt.Fprintf(&b, "# back in the queue and its next attempt resumes from that checkpoint.\n")
	fmt.Fprintf(&b, "if [ -e %s ]; then\n", PreemptedMarker)
	fmt.Fprintf(&b, "\techo \"ftc: the stage stopped on SIGTERM with a checkpoint; requeueing job $SLURM_JOB_ID\"\n")
	fmt.Fprintf(&b, "\tif scontrol requeue \"$SLURM_JOB_ID\"; then exit 0; fi\n")
	fmt.Fprintf(&b, "\techo \"ftc: scontrol requeue failed: the next ftc run resumes the stage\" >&2\n")
	fmt.Fprintf(&b, "\texit %d\n", ExitPreempted)
	fmt.Fprintf(&b, "fi\n")
	fmt.Fprintf(&b, "exit \"$ftc_status\"\n")
	return b.Bytes(), nil
}

// ExitPreempted is the exit status of a training stage that stopped on
// SIGTERM after saving a checkpoint, and PreemptedMarker the file it leaves
// in its run directory (launchers do not pass a worker's status on);
// runtime/exec and stdlib/python/ftc/preempt.py read the same.
const (
	ExitPreempted   = 75
	PreemptedMarker = "preempted.json"
)

// sbatchNodeScript is the shell text each node runs. The multi-node argv
// refers to $FTC_MASTER_ADDR and $FTC_NODE_RANK; those expand on the node,
// everything else is quoted.
func sbatchNodeScript(p Plan, gpus int) (string, error) {
	argv, err := sbatchCommand(p.Argv)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "export %s=\"$SLURM_NODEID\"\n", EnvNodeRank)
	if p.Server == nil {
		fmt.Fprintf(&b, "exec %s\n", argv)
		return b.String(), nil
	}
	// A generation server takes GPUs that are not training processes:
	// devices are named by their position in the node's allocation,
	// which Slurm gives as CUDA_VISIBLE_DEVICES.
	sv := p.Server
	server, err := sbatchCommand(sv.Argv)
	if err != nil {
		return "", err
	}
	var prefix []string
	for _, kv := range SortedEnv(sv.Env) {
		k, v, _ := strings.Cut(kv, "=")
		if !shq.IsName(k) {
			return "", fmt.Errorf("server environment variable name %q", k)
		}
		q, err := sbatchQuote(v)
		if err != nil {
			return "", err
		}
		prefix = append(prefix, k+"="+q)
	}
	if len(sv.Ports) == 0 {
		return "", fmt.Errorf("the generation server has no port to wait for")
	}
	port := sv.Ports[0]
	fmt.Fprintf(&b, "IFS=, read -ra ftc_all_gpus <<<\"${CUDA_VISIBLE_DEVICES:-}\"\n")
	fmt.Fprintf(&b, "if [ \"${#ftc_all_gpus[@]}\" -lt %d ]; then\n", gpus)
	fmt.Fprintf(&b, "\techo \"ftc: Slurm gave this node GPUs '${CUDA_VISIBLE_DEVICES:-}', the stage needs %d\" >&2\n\texit 1\nfi\n", gpus)
	fmt.Fprintf(&b, "ftc_gpus() {\n\tlocal IFS=, i\n\tlocal -a out=()\n\tfor i in \"$@\"; do out+=(\"${ftc_all_gpus[$i]}\"); done\n\techo \"${out[*]}\"\n}\n")
	fmt.Fprintf(&b, "if [ \"$%s\" = 0 ]; then\n", EnvNodeRank)
	fmt.Fprintf(&b, "\t# The generation server starts first, on its own GPUs; the trainers\n\t# start once it listens.\n")
	fmt.Fprintf(&b, "\tCUDA_VISIBLE_DEVICES=\"$(ftc_gpus %s)\" %s%s &\n", ints(sv.GPUs, " "), strings.Join(append(prefix, ""), " "), server)
	fmt.Fprintf(&b, "\tftc_server=$!\n\ttrap 'kill \"$ftc_server\" 2>/dev/null || true' EXIT\n")
	fmt.Fprintf(&b, "\tfor ftc_i in $(seq %d); do\n", sbatchServerWait)
	fmt.Fprintf(&b, "\t\tif (exec 3<>/dev/tcp/127.0.0.1/%d) 2>/dev/null; then break; fi\n", port)
	fmt.Fprintf(&b, "\t\tif ! kill -0 \"$ftc_server\" 2>/dev/null; then echo \"ftc: the generation server exited before listening on port %d\" >&2; exit 1; fi\n", port)
	fmt.Fprintf(&b, "\t\tif [ \"$ftc_i\" = %d ]; then echo \"ftc: the generation server did not listen on port %d within %ds\" >&2; exit 1; fi\n", sbatchServerWait, port, sbatchServerWait)
	fmt.Fprintf(&b, "\t\tsleep 1\n\tdone\n")
	if p.Nodes > 1 {
		// The other nodes' trainers reach the server on the first node;
		// they wait for it here, as node 0's trainers do above, rather
		// than time out in their client while it loads the model.
		fmt.Fprintf(&b, "else\n")
		fmt.Fprintf(&b, "\tfor ftc_i in $(seq %d); do\n", sbatchServerWait)
		// A connect to a firewalled port can hang for minutes: each try
		// is bounded, so the wait as a whole is.
		fmt.Fprintf(&b, "\t\tif timeout 5 bash -c 'exec 3<>\"/dev/tcp/$0/$1\"' \"$%s\" %d 2>/dev/null; then break; fi\n", EnvMasterAddr, port)
		fmt.Fprintf(&b, "\t\tif [ \"$ftc_i\" = %d ]; then echo \"ftc: the generation server on $%s did not listen on port %d within %ds\" >&2; exit 1; fi\n", sbatchServerWait, EnvMasterAddr, port, sbatchServerWait)
		fmt.Fprintf(&b, "\t\tsleep 1\n\tdone\n")
	}
	fmt.Fprintf(&b, "fi\n")
	fmt.Fprintf(&b, "CUDA_VISIBLE_DEVICES=\"$(ftc_gpus %s)\" %s\n", ints(p.GPUs, " "), argv)
	return b.String(), nil
}

// sbatchServerWait bounds, in seconds, the wait for a generation server to
// listen (loading a 7B model into vLLM takes minutes).
const sbatchServerWait = 900

// sbatchCommand quotes argv for bash, leaving the runtime's per-node
// variables to expand. The node script is a quoted here-document: a line
// break in an argument could end it, so none is accepted.
func sbatchCommand(argv []string) (string, error) {
	for _, a := range argv {
		if _, err := sbatchQuote(a); err != nil {
			return "", err
		}
	}
	return shq.Join(argv, EnvMasterAddr, EnvNodeRank), nil
}

// sbatchQuote quotes s as one bash word (shq.Quote), refusing line breaks
// (the node script is a here-document) and NUL.
func sbatchQuote(s string) (string, error) {
	if strings.ContainsAny(s, "\n\r\x00") {
		return "", fmt.Errorf("value %q contains a line break or NUL", s)
	}
	return shq.Quote(s), nil
}

// sbatchDirectiveValue writes a value of an #SBATCH line. sbatch splits
// these lines itself (no shell): double quotes keep spaces together, and
// values that would need escaping are refused.
func sbatchDirectiveValue(v string) (string, error) {
	if v == "" || strings.ContainsAny(v, "\"'\\\n\r\x00") {
		return "", fmt.Errorf("value %q is empty or holds a quote, backslash or line break", v)
	}
	if shq.Bare(v) {
		return v, nil
	}
	return `"` + v + `"`, nil
}

// sbatchComment keeps a value on its comment line.
func sbatchComment(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

// sbatchSplitImage checks that ref names an image by digest and returns
// its name (without a tag) and digest.
func sbatchSplitImage(ref string) (name, digest string, err error) {
	name, digest, ok := strings.Cut(ref, "@")
	hex := strings.TrimPrefix(digest, "sha256:")
	if !ok || name == "" || !strings.HasPrefix(digest, "sha256:") || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", "", fmt.Errorf("image %q is not pinned by digest (NAME@sha256:HEX)", ref)
	}
	if slash := strings.LastIndex(name, "/"); strings.LastIndex(name, ":") > slash {
		name = name[:strings.LastIndex(name, ":")] // the digest wins over a tag
	}
	if strings.ContainsAny(name, " \t#@'\"\\") {
		return "", "", fmt.Errorf("image name %q", name)
	}
	return name, digest, nil
}

// sbatchEnrootImage writes an image reference as pyxis (enroot) reads it:
// REGISTRY#REPOSITORY:sha256:HEX. enroot 3.5 and later send the part after
// the first ':' as the manifest reference, so the digest pins the image;
// the registry is always explicit (enroot would not guess Docker Hub's
// "library/" prefix).
func sbatchEnrootImage(name, digest string) string {
	registry, repo := "registry-1.docker.io", name
	if first, rest, ok := strings.Cut(name, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		registry, repo = first, rest
	} else if !ok {
		repo = "library/" + name
	}
	return registry + "#" + repo + ":" + digest
}

func sbatchSortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
