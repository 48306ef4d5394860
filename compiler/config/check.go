package config

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue/token"

	"github.com/ftc-dev/ftc/compiler/arch"
	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/ident"
	"github.com/ftc-dev/ftc/compiler/pyast"
	"github.com/ftc-dev/ftc/compiler/recipefs"
)

// Check runs the cross-field rules CUE cannot express field by field:
// batch arithmetic against the data-parallel world, GRPO generations,
// data formats per method, stage references of the right kind, adapter and
// strategy combinations, reward-function files. It reports every problem.
//
// files is the recipe's directory; data is its view for data files, which
// may also reach declared data roots.
func Check(r *Recipe, files fs.FS) diag.List { return check(r, files, files) }

func check(r *Recipe, files, data fs.FS) diag.List {
	return (&checker{r: r, files: files, data: data}).run()
}

type checker struct {
	r     *Recipe
	files fs.FS
	data  fs.FS
	diags diag.List
	// proposing is set on the checkers that vet a proposed fix: they
	// report errors but propose no fixes of their own.
	proposing bool
	// asWritten holds the errors of the recipe as written (path and
	// message), computed when the first fix is vetted.
	asWritten map[string]bool
	// offered are the changes the hints propose, for tests to apply.
	offered []offer
	// py holds the parsed reward-function files, nil when unusable.
	py map[string]*pyast.Module
	// parse stands in for pyast.Parse in tests (a build without cgo).
	parse func([]byte) (*pyast.Module, error)
}

// offer is a change a hint proposes for the error at target.
type offer struct {
	stage, target, say string
	apply              func(r *Recipe, st *Stage)
}

// fixPasses reports whether a hint's change passes vet: applied to a copy
// of the recipe (apply edits the copy and the copy of stage), it brings
// no error the recipe as written does not have, and none at target, the
// path of the error it is meant to fix. Hints are vetted rather than
// trusted, so that a hint never proposes a recipe vet would refuse.
func (c *checker) fixPasses(stage, target string, apply func(r *Recipe, st *Stage)) bool {
	if c.asWritten == nil {
		c.asWritten = map[string]bool{}
		for _, d := range (&checker{r: c.r, files: c.files, data: c.data, proposing: true}).run().Errors() {
			c.asWritten[d.Path+"\x00"+d.Message] = true
		}
	}
	rr := *c.r
	rr.Stages = maps.Clone(c.r.Stages)
	st := rr.Stages[stage]
	apply(&rr, &st)
	rr.Stages[stage] = st
	for _, d := range (&checker{r: &rr, files: c.files, data: c.data, proposing: true}).run().Errors() {
		if d.Path == target || !c.asWritten[d.Path+"\x00"+d.Message] {
			return false
		}
	}
	return true
}

func (c *checker) run() diag.List {
	c.hardware()
	for _, s := range c.r.modelSites() {
		if !s.derived {
			c.familySupport(s.path, s.m)
		}
	}
	for _, name := range c.r.SortedDatasetNames() {
		c.dataset("datasets."+name, c.r.Datasets[name])
	}
	for _, name := range c.r.SortedStageNames() {
		c.stage(name, c.r.Stages[name])
	}
	c.tracking()
	return c.diags
}

// tracking checks where the trackers write: inside the recipe's
// directory, or a server named without credentials.
func (c *checker) tracking() {
	t := c.r.Tracking
	if t == nil {
		return
	}
	if t.TensorBoard != nil && !fs.ValidPath(t.TensorBoard.Dir) {
		c.errorf("tracking.tensorboard.dir", "%q must be a folder inside the recipe's directory", t.TensorBoard.Dir).
			WithHint("use a slash-separated relative path without \"..\", e.g. \"runs\"")
	}
	if w := t.WandB; w != nil {
		if !fs.ValidPath(w.Dir) {
			c.errorf("tracking.wandb.dir", "%q must be a folder inside the recipe's directory", w.Dir).
				WithHint("use a slash-separated relative path without \"..\", e.g. \".\" (runs go to ./wandb)")
		}
		// W&B refuses these in a project's name, and only when the
		// first run starts.
		if i := strings.IndexAny(w.Project, "/\\#?%:"); i >= 0 || len(w.Project) > 128 {
			c.errorf("tracking.wandb.project", "W&B refuses the project name %q: at most 128 characters, none of / \\ # ? %% :", w.Project).
				WithHint("the team or user goes in entity, e.g. {entity: \"team\", project: \"llm\"}")
		}
	}
	if m := t.MLflow; m != nil {
		scheme, host, user, ok := serverAddress(m.URI)
		switch {
		case !ok:
			c.errorf("tracking.mlflow.uri", "%q is not an MLflow tracking server's address", m.URI).
				WithHint("give the server's http:// or https:// address, e.g. \"http://127.0.0.1:5000\" (MLflow's file store is in maintenance mode since MLflow 3: start `mlflow server` on a local database instead)")
		case user:
			// The address is recorded (the recipe, its record); a
			// password in it would be too.
			c.errorf("tracking.mlflow.uri", "the address holds credentials; ftc would record them with the recipe").
				WithHint("remove them from the address and name the variables that hold them: auth: {username: \"MLFLOW_TRACKING_USERNAME\", password: \"MLFLOW_TRACKING_PASSWORD\"} or auth: token: \"MLFLOW_TRACKING_TOKEN\"")
		case scheme == "http" && len(m.Auth.Variables()) > 0 && !loopback(host):
			c.warnf("tracking.mlflow.auth", "the credentials go to %s over plain http, readable on the way", host).
				WithHint("use the server's https:// address")
		}
	}
}

// serverAddress reads an http:// or https:// address: its scheme, its
// host (without port or brackets), and whether it holds user
// information (user:password@). The compiler keeps out of the network
// packages, net/url included, so it is read here by hand.
func serverAddress(uri string) (scheme, host string, user, ok bool) {
	scheme, rest, found := strings.Cut(uri, "://")
	if !found || (scheme != "http" && scheme != "https") || strings.ContainsAny(uri, " \t\n") {
		return "", "", false, false
	}
	authority := rest
	if i := strings.IndexAny(authority, "/?#"); i >= 0 {
		authority = authority[:i]
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		user, authority = true, authority[at+1:]
	}
	host = authority
	if strings.HasPrefix(host, "[") {
		end := strings.Index(host, "]")
		if end < 0 {
			return "", "", false, false
		}
		host = host[1:end]
	} else if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	return scheme, host, user, host != ""
}

// loopback says whether host names this machine.
func loopback(host string) bool {
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}

func (c *checker) errorf(path, format string, args ...any) *diag.Diagnostic {
	return c.diags.Errorf(c.r.Pos.At(path), path, format, args...)
}

func (c *checker) warnf(path, format string, args ...any) *diag.Diagnostic {
	return c.diags.Warnf(c.r.Pos.At(path), path, format, args...)
}

func (c *checker) hardware() {
	h := c.r.Hardware
	world := h.GPUs()
	switch h.Strategy {
	case "single":
		if world > 1 {
			c.errorf("hardware.strategy", "strategy \"single\" runs one process, but the hardware has %d GPUs (%d node(s) × %d)", world, h.Nodes, h.GPUsPerNode).
				WithHint("use \"ddp\", \"fsdp\", \"zero2\" or \"zero3\", or set gpusPerNode: 1")
		}
	case "ddp":
		if h.Offload.Optimizer || h.Offload.Params {
			c.errorf("hardware.offload", "DDP cannot offload to CPU").
				WithHint("offload needs strategy \"fsdp\", \"zero2\" or \"zero3\"")
		}
	case "fsdp":
		if h.Offload.Optimizer != h.Offload.Params {
			c.errorf("hardware.offload", "FSDP offloads parameters, gradients and optimizer state together, not one without the other").
				WithHint("set offload: {optimizer: true, params: true}, or use strategy \"zero3\" to offload only the optimizer")
		}
	case "zero2":
		if h.Offload.Params {
			c.errorf("hardware.offload.params", "ZeRO-2 does not partition parameters, so it cannot offload them").
				WithHint("use strategy \"zero3\", or offload only the optimizer")
		}
	}
	if world == 1 && h.Strategy != "single" && h.Strategy != "ddp" && !h.Offload.Optimizer && !h.Offload.Params {
		// Sharding over one GPU shards nothing: FSDP and ZeRO keep the
		// same bytes as a single process plus their flat buffers and
		// communication hooks. With offload they do what a single process
		// cannot (state in CPU memory, to fit a model that would not), so
		// that stays allowed.
		c.errorf("hardware.strategy", "strategy %q shards over the GPUs, but the hardware has one GPU: there is nothing to shard, only the wrapper's overhead", h.Strategy).
			WithHint("use strategy \"single\"; %s on one GPU is only worth it with CPU offload (offload: {optimizer: true%s})", h.Strategy.Name(), offloadParamsHint(h.Strategy))
	}
	if h.Strategy == "single" && (h.Offload.Optimizer || h.Offload.Params) {
		c.errorf("hardware.offload", "a single process without a sharding strategy cannot offload to CPU").
			WithHint("use strategy \"zero3\" (it runs on one GPU too) to offload")
	}
	if (h.Strategy == "zero2" || h.Strategy == "zero3") && !c.r.hasPackage("deepspeed") {
		c.errorf("hardware.strategy", "strategy %q needs deepspeed, which profile %q does not provide", h.Strategy, c.r.Environment.Profile)
	}
	if h.Slurm != nil && h.Target != "slurm" {
		c.errorf("hardware.slurm", "slurm settings given, but target is %q", h.Target).
			WithHint("set target: \"slurm\" or remove the slurm block")
	}
	if h.Slurm != nil && h.Slurm.CPUsPerNode > 0 && h.Slurm.CPUsPerNode < h.GPUsPerNode {
		c.errorf("hardware.slurm.cpusPerNode", "cpusPerNode %d is fewer CPUs than the %d processes each node starts", h.Slurm.CPUsPerNode, h.GPUsPerNode).
			WithHint("give each node at least %d CPUs, or leave cpusPerNode out (one per process)", h.GPUsPerNode)
	}
	c.preemption()
	if h.Kubernetes != nil && h.Target != "kubernetes" {
		c.errorf("hardware.kubernetes", "kubernetes settings given, but target is %q", h.Target).
			WithHint("set target: \"kubernetes\" or remove the kubernetes block")
	}
	if h.Nodes > 1 && h.Target == "local" {
		c.errorf("hardware.target", "%d nodes cannot run on target \"local\", which starts processes on this machine only", h.Nodes).
			WithHint("use target \"slurm\" or \"kubernetes\" for multi-node recipes")
	}
}

// slurmSignalMax is the largest warning time sbatch --signal takes.
const slurmSignalMax = 65535

// preemption checks the grace period a stage has after SIGTERM against the
// warning the scheduler gives: Slurm signals graceSeconds before the time
// limit (sbatch --signal), which must come after the job started.
func (c *checker) preemption() {
	h := c.r.Hardware
	g := h.Preemption.GraceSeconds
	const p = "hardware.preemption.graceSeconds"
	if g <= 0 {
		c.errorf(p, "graceSeconds %d is not positive: a stage needs time after SIGTERM to finish its step and save a checkpoint", g).
			WithHint("leave it out for the default, 120 seconds, or give the seconds one step and one checkpoint take")
		return
	}
	if h.Target != "slurm" {
		return
	}
	limit, ok := SlurmSeconds(h.SlurmSettings().Time)
	switch {
	case !ok:
	case g >= limit:
		at, what := p, fmt.Sprintf("graceSeconds %d", g)
		if !c.r.Pos.Has(p) {
			// The default grace: the time limit is what the user wrote.
			at, what = "hardware.slurm.time", fmt.Sprintf("the default grace period after SIGTERM, %ds,", g)
		}
		c.errorf(at, "%s is not shorter than the Slurm time limit %s (%ds): the job asks for the warning signal %ds before its limit, which would be before it starts", what, h.SlurmSettings().Time, limit, g).
			WithHint("give hardware.slurm.time more than %ds, or hardware.preemption.graceSeconds less than %d", g, limit)
	case g > slurmSignalMax:
		c.errorf(p, "graceSeconds %d is longer than Slurm's longest warning, %ds (sbatch --signal)", g, slurmSignalMax).
			WithHint("at most %d", slurmSignalMax)
	}
}

// SlurmSeconds reads a Slurm time limit as the schema admits it,
// [DAYS-]HH:MM:SS, in seconds.
func SlurmSeconds(t string) (int, bool) {
	days := 0
	if d, rest, ok := strings.Cut(t, "-"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, false
		}
		days, t = n, rest
	}
	parts := strings.Split(t, ":")
	if len(parts) != 3 {
		return 0, false
	}
	secs := days * 86400
	for i, unit := range []int{3600, 60, 1} {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 {
			return 0, false
		}
		secs += n * unit
	}
	return secs, true
}

// offloadParamsHint completes an offload hint for strategies that must
// or can offload parameters too.
func offloadParamsHint(strategy Strategy) string {
	if strategy == StrategyFSDP {
		return ", params: true" // FSDP offloads both together
	}
	return ""
}

func (r *Recipe) hasPackage(name string) bool {
	_, a := r.Environment.Packages[name]
	_, b := r.Environment.Optional[name]
	return a || b
}

func (c *checker) dataset(path string, d Dataset) {
	switch {
	case d.File == nil && d.Hub == nil:
		c.errorf(path, "dataset has no source").WithHint("set file: {path, sha256} or hub: {repo, revision}")
	case d.File != nil && d.Hub != nil:
		c.errorf(path, "dataset has two sources, file and hub").WithHint("keep one of them")
	case d.File != nil:
		p := d.File.Path
		if !fs.ValidPath(p) {
			c.errorf(path+".file.path", "%q must be a path inside the recipe's directory", p).
				WithHint("use a slash-separated relative path without \"..\"")
		} else if IsPattern(p) || c.r.DataSets[p] != nil {
			c.fileSet(path, d)
			break
		} else if st, err := fs.Stat(c.data, p); err != nil {
			var esc *recipefs.EscapeError
			if errors.As(err, &esc) {
				c.errorf(path+".file.path", "%q %v", p, esc).
					WithHint("if %s is a data volume, declare it: dataRoots: [%q] in the recipe, or --data-root %s", esc.Root, esc.Root, esc.Root)
			} else {
				c.errorf(path+".file.path", "cannot read %s: %v", p, unwrapPathErr(err))
			}
		} else if st.IsDir() {
			c.fileSet(path, d) // says why its files could not be listed
			break
		}
		if d.File.Encoding == "" && encodingOf(p) == "" && !IsPattern(p) && c.r.DataSets[p] == nil {
			c.errorf(path+".file.path", "cannot tell the encoding of %s from its extension", p).
				WithHint("set encoding: \"jsonl\" or \"parquet\"")
		}
	case d.Hub != nil:
		if !ident.IsCommit(d.Hub.Revision) {
			c.warnf(path+".hub.revision", "revision %q is not a commit; `ftc lock` or `ftc run` pins it in ftc.lock", d.Hub.Revision)
		}
	}
	if d.Format != "preference" && d.Prompt == "explicit" {
		c.errorf(path+".prompt", "prompt: \"explicit\" applies to preference data only, but format is %q", d.Format)
	}
}

// fileSet checks a dataset whose path names several files: a glob that
// matches and does not leave the directory, files of one encoding.
func (c *checker) fileSet(path string, d Dataset) {
	p := d.File.Path
	files, _, err := DataFiles(c.data, p, d.File.Encoding)
	if err != nil {
		var esc *recipefs.EscapeError
		if errors.As(err, &esc) {
			c.errorf(path+".file.path", "%q %v", p, esc).
				WithHint("if %s is a data volume, declare it: dataRoots: [%q] in the recipe, or --data-root %s", esc.Root, esc.Root, esc.Root)
			return
		}
		hint := "a glob matches files by path.Match rules (data/shards/*.jsonl); a directory stands for its .jsonl or .parquet files"
		if !IsPattern(p) {
			hint = "a directory stands for the .jsonl or .parquet files under it; name a file, a directory with data files, or a glob (data/*.jsonl)"
		}
		c.errorf(path+".file.path", "%v", unwrapPathErr(err)).WithHint("%s", hint)
		return
	}
	if _, err := SetEncoding(files, d.File.Encoding); err != nil {
		c.errorf(path+".file.path", "%s: %v", p, err).WithHint("set encoding: \"jsonl\" or \"parquet\"")
	}
}

// EncodingOf returns the encoding a data file's extension implies.
func encodingOf(p string) string {
	switch path.Ext(p) {
	case ".jsonl", ".json":
		return "jsonl"
	case ".parquet":
		return "parquet"
	}
	return ""
}

// Encoding returns the file's encoding, explicit or implied.
func (f FileSource) EncodingOrDefault() string {
	if f.Encoding != "" {
		return f.Encoding
	}
	return encodingOf(f.Path)
}

// formatsFor lists the data formats a method reads.
var formatsFor = map[string][]string{
	"sft":    {"messages", "alpaca", "sharegpt", "prompt-completion", "text"},
	"reward": {"preference"},
	"ppo":    {"prompt"},
	"grpo":   {"prompt"},
	"rloo":   {"prompt"},
	"dpo":    {"preference"},
	"orpo":   {"preference"},
	"simpo":  {"preference"},
	"kto":    {"unpaired-preference", "preference"},
}

var formatHint = map[string]string{
	"sft":    "SFT reads conversations (messages, alpaca, sharegpt), prompt-completion pairs or plain text",
	"reward": "a reward model trains on preference pairs: format \"preference\" with chosen and rejected",
	"ppo":    "PPO rolls out from prompts only: format \"prompt\"",
	"grpo":   "GRPO samples completions for prompts only: format \"prompt\"",
	"rloo":   "RLOO samples completions for prompts only: format \"prompt\"",
	"dpo":    "DPO trains on preference pairs: format \"preference\" with chosen and rejected (and a prompt)",
	"orpo":   "ORPO trains on preference pairs: format \"preference\" with chosen and rejected (and a prompt)",
	"simpo":  "SimPO trains on preference pairs: format \"preference\" with chosen and rejected (and a prompt)",
	"kto":    "KTO trains on answers labelled desirable or undesirable: format \"unpaired-preference\" ({prompt, completion, label}), or preference pairs (format \"preference\") with kto: unpairPreferences: true",
}

// formatHintFor is the hint for a method refusing data of a format: what
// the method reads and, for labelled answers, which method reads them (a
// user with KTO data who picked another method learns where it goes).
func formatHintFor(method, format string) string {
	if format == "unpaired-preference" && method != "kto" {
		return formatHint[method] + "; labelled answers (format \"unpaired-preference\") train with method \"kto\""
	}
	return formatHint[method]
}

// DefaultMasterPort is torch.distributed's default rendezvous port, which
// torchrun (--master-port) and accelerate (main_process_port) use when
// given none.
const DefaultMasterPort = 29500

// LauncherPort is the TCP port the launcher's rendezvous listens on, on
// the first node, or 0 when the stage starts one process with python and
// opens none. It follows launch.Training: across nodes that passes
// hardware.rendezvous.port to torchrun or accelerate; on one node it
// passes none, so they use DefaultMasterPort.
func (r *Recipe) LauncherPort(st Stage) int {
	h := r.Hardware
	switch {
	case h.Strategy == "single" && r.TrainingProcesses(st) <= 1:
		return 0
	case h.Nodes > 1:
		return h.Rendezvous.Port
	}
	return DefaultMasterPort
}

// TrainingProcesses is the number of data-parallel training processes of
// a stage: every GPU, less those given to a vLLM generation server.
func (r *Recipe) TrainingProcesses(st Stage) int {
	n := r.Hardware.GPUs()
	if st.GRPO != nil && st.GRPO.Generation.Engine == "vllm" {
		n -= st.GRPO.Generation.GPUs
	}
	return n
}

func (c *checker) stage(name string, st Stage) {
	base := "stages." + name
	if st.Method == "eval" {
		c.evalStage(base, st)
		return
	}

	// Data: train or a mix, each source in a format the method reads.
	c.mix(name, st)
	for i, src := range st.Data.Sources() {
		if src.Dataset.Name == "" && src.Dataset.Format == "" {
			continue // c.mix says what is missing
		}
		if want := formatsFor[st.Method]; !contains(want, src.Dataset.Format) {
			c.errorf(st.Data.SourcePath(name, i), "%s stage cannot train on %q data from dataset %q", st.Method, src.Dataset.Format, src.Dataset.Name).
				WithHint("%s", formatHintFor(st.Method, src.Dataset.Format))
		}
	}
	if st.Data.Eval != nil && len(st.Data.Mix) > 0 {
		if want := formatsFor[st.Method]; !contains(want, st.Data.Eval.Format) {
			c.errorf(base+".data.eval", "%s stage cannot evaluate on %q data from dataset %q", st.Method, st.Data.Eval.Format, st.Data.Eval.Name).
				WithHint("%s", formatHintFor(st.Method, st.Data.Eval.Format))
		}
	}
	if st.Data.Eval != nil {
		if len(st.Data.Mix) == 0 && st.Data.Eval.Format != st.Data.Train.Format {
			c.errorf(base+".data.eval", "eval dataset %q has format %q, train has %q", st.Data.Eval.Name, st.Data.Eval.Format, st.Data.Train.Format)
		}
		if st.Data.EvalFraction > 0 {
			c.errorf(base+".data.evalFraction", "evalFraction and eval both set").WithHint("hold out a fraction of train, or name an eval dataset, not both")
		}
	}
	if st.Data.Packing && st.Method != "sft" {
		c.errorf(base+".data.packing", "packing applies to SFT only, not %s", st.Method)
	}

	// Models.
	bm := st.Base()
	bp := base + ".model"
	if st.Method == "ppo" {
		bp = base + ".policy"
	}
	if bm != nil {
		switch {
		case bm.WeightsKind() != "reward-model" || st.Method == "reward":
		case bm.From != nil:
			c.errorf(bp, "stage %q produces a reward model; %s needs a causal language model to train", bm.From.Stage, st.Method).
				WithHint("start from a Hub model or the output of an sft stage")
		default:
			c.errorf(bp, "%s is declared a reward model (kind: \"reward-model\"); %s needs a causal language model to train", bm.Name(), st.Method).
				WithHint("start from a causal language model: leave kind out")
		}
		if st.Data.MaxLength > bm.Arch.MaxPositions {
			c.errorf(base+".data.maxLength", "maxLength %d exceeds the %d positions %s was trained for", st.Data.MaxLength, bm.Arch.MaxPositions, bm.Name())
		} else {
			c.rolloutLength(base, st)
		}
		c.modelRef(bp, bm)
	}
	c.adapter(base, st)
	c.export(base, st)
	c.training(base, st)
	c.knobs(base, st)
	c.passthrough(base, st)
	if !c.diags.HasErrors() {
		// The estimate needs a consistent stage: judge memory once the
		// rest holds.
		c.memory(base, st)
		c.inferenceMemory(base, st)
	}

	switch st.Method {
	case "ppo":
		c.ppo(base, st)
	case "grpo":
		c.grpo(base, st)
	case "rloo":
		c.rloo(base, st)
	case "dpo":
		c.dpo(base, st)
	case "kto":
		c.kto(name, st)
	}
}

// kto checks that KTO's unpaired rows can be made: labelled rows as they
// are, preference pairs only when the recipe asks for the conversion (and
// the conversion only on pairs, so that one stage's sources are one kind
// and prepare has one consumer for them), and, for the KTO loss, a
// micro-batch of two rows or more (trl estimates the KL term from the
// completions of the other rows of the micro-batch; apo_zero_unpaired has
// no KL term).
func (c *checker) kto(name string, st Stage) {
	base := "stages." + name
	if st.KTO == nil {
		return
	}
	flagged := false
	for i, src := range st.Data.Sources() {
		switch {
		case src.Dataset.Format == "preference" && !st.KTO.UnpairPreferences:
			c.errorf(st.Data.SourcePath(name, i), "kto stage reads answers labelled desirable or undesirable, not the pairs of preference dataset %q", src.Dataset.Name).
				WithHint("set kto: unpairPreferences: true to train on each pair as a desirable row (prompt, chosen) and an undesirable one (prompt, rejected), use format \"unpaired-preference\" data, or use method \"dpo\" to train on the pairs")
		case src.Dataset.Format == "unpaired-preference" && st.KTO.UnpairPreferences && !flagged:
			flagged = true
			c.errorf(base+".kto.unpairPreferences", "kto: unpairPreferences makes rows from preference pairs, but dataset %q (format \"unpaired-preference\") is already labelled rows", src.Dataset.Name).
				WithHint("leave unpairPreferences out to train on the labelled rows; a stage reads either pairs (with unpairPreferences) or labelled rows, not both")
		}
	}
	// A mix's eval dataset is checked against the method's formats only;
	// it must be of the kind its sources are, since it is prepared for the
	// same consumer.
	if ev := st.Data.Eval; ev != nil && len(st.Data.Mix) > 0 && (ev.Format == "preference") != st.KTO.UnpairPreferences {
		want := "\"unpaired-preference\""
		if st.KTO.UnpairPreferences {
			want = "\"preference\" (kto: unpairPreferences)"
		}
		c.errorf(base+".data.eval", "kto stage's eval dataset %q has format %q; its training sources are %s", ev.Name, ev.Format, want).
			WithHint("evaluate on data of the training sources' kind")
	}
	if t := st.Training; t.MicroBatch > 0 && t.MicroBatch < 2 && st.KTO.Loss != "apo_zero_unpaired" {
		c.errorf(base+".training.microBatch", "kto stage needs microBatch ≥ 2: trl estimates KTO's KL term from the other answers of the micro-batch, and with one it equals the reward").
			WithHint("set training.microBatch to 2 or more, or kto: loss: \"apo_zero_unpaired\", which has no KL term")
	}
}

// evalFormats are the dataset formats an eval stage reads: those SFT
// trains on (their answers' loss), and prompts (generated answers scored).
var evalFormats = append(append([]string(nil), formatsFor["sft"]...), "prompt")

// evalStage checks an eval stage: a causal language model, one eval
// dataset, and scorers exactly where answers are generated. It trains
// nothing, so none of the training checks apply.
func (c *checker) evalStage(base string, st Stage) {
	d := st.Data
	hasTrain := d.Train.Name != "" || d.Train.Format != ""
	if hasTrain || len(d.Mix) > 0 || d.EvalFraction > 0 {
		p := base + ".data.train"
		if len(d.Mix) > 0 {
			p = base + ".data.mix"
		} else if !hasTrain {
			p = base + ".data.evalFraction"
		}
		c.errorf(p, "an eval stage trains nothing: it reads data.eval only").
			WithHint("write data: eval: datasets.NAME")
	}
	if d.Eval == nil {
		c.errorf(base+".data", "an eval stage needs data.eval, the dataset to evaluate on").
			WithHint("write data: eval: datasets.NAME")
	} else if !contains(evalFormats, d.Eval.Format) {
		c.errorf(base+".data.eval", "eval stage cannot evaluate on %q data from dataset %q", d.Eval.Format, d.Eval.Name).
			WithHint("conversations, prompt-completion pairs or text give the loss of their answers; prompts (format \"prompt\") give generated answers for scorers")
	}
	if d.Packing {
		c.errorf(base+".data.packing", "packing applies to SFT only, not eval")
	}
	var scorers []RewardFunction
	if st.Eval != nil {
		scorers = st.Eval.Scorers
	}
	switch {
	case st.Generates() && len(scorers) == 0:
		c.errorf(base+".eval.scorers", "eval on prompts generates answers, and no scorer scores them").
			WithHint("eval: scorers: [{file: \"score.py\", name: \"exact_match\"}] (a function like GRPO's reward functions)")
	case !st.Generates() && len(scorers) > 0 && d.Eval != nil:
		c.errorf(base+".eval.scorers", "scorers score generated answers, but %q data has its own answers: the stage measures their loss", d.Eval.Format).
			WithHint("leave scorers out, or evaluate on a dataset of format \"prompt\"")
	}
	if st.Generates() {
		for i, sc := range scorers {
			c.calledFunction(fmt.Sprintf("%s.eval.scorers.%d", base, i), sc, c.columns(*d.Eval), "the eval stage")
		}
	}
	m := st.Model
	if m == nil {
		return
	}
	switch {
	case m.From != nil && m.From.Kind == "reward-model":
		c.errorf(base+".model", "stage %q produces a reward model; eval measures a causal language model", m.From.Stage)
	case m.From == nil && m.Kind == "reward-model":
		c.errorf(base+".model", "%s is declared a reward model (kind: \"reward-model\"); eval measures a causal language model", m.Name())
	}
	if m.From != nil && c.methodOf(m.From.Stage) == "eval" {
		c.errorf(base+".model", "stage %q is an eval stage: it has no model to evaluate", m.From.Stage)
	}
	c.modelRef(base+".model", m)
	length, what := d.MaxLength, "maxLength"
	if st.Generates() && st.Eval != nil {
		length += st.Eval.MaxNewTokens
		what = "maxLength + eval.maxNewTokens"
	}
	if length > m.Arch.MaxPositions {
		c.errorf(base+".data.maxLength", "%s = %d exceeds the %d positions %s was trained for", what, length, m.Arch.MaxPositions, m.Name())
	}
	if !c.diags.HasErrors() {
		c.inferenceMemory(base, st)
	}
}

// dpo checks DPO's reference model: a causal language model that reads
// the policy's token ids, since its log-probabilities are of the same
// prepared rows.
func (c *checker) dpo(base string, st Stage) {
	// trl 0.16's sigmoid loss is conservative DPO with label smoothing;
	// 1.x's sigmoid is plain DPO and reads label_smoothing only for other
	// losses (trl/trainer/dpo_trainer.py at 0.16.0 and 1.9.0): the
	// setting would be dropped without a word.
	if trl := c.r.Environment.Packages["trl"]; st.DPO != nil && st.DPO.LabelSmoothing > 0 && versionAtLeast(trl, 1, 0) {
		c.errorf(base+".dpo.labelSmoothing", "dpo.labelSmoothing %g has no effect with trl %s: its sigmoid loss is plain DPO and ignores label_smoothing", st.DPO.LabelSmoothing, trl).
			WithHint("leave labelSmoothing out, or use a profile with trl 0.16 (pinned-2025q1)")
	}
	ref, pol := st.Reference, st.Model
	if ref == nil || pol == nil {
		return
	}
	p := base + ".reference"
	switch {
	case ref.From != nil && ref.From.Kind == "reward-model":
		c.errorf(p, "reference model comes from reward stage %q; it must be a causal language model", ref.From.Stage).
			WithHint("leave reference out to use the policy's starting weights, or name an sft stage's output")
	case ref.From == nil && ref.Kind == "reward-model":
		c.errorf(p, "reference model %s is declared a reward model (kind: \"reward-model\"); it must be a causal language model", ref.Name())
	}
	c.modelRef(p, ref)
	if ref.Arch.Tokenizer != pol.Arch.Tokenizer || ref.Arch.Vocab != pol.Arch.Vocab {
		c.errorf(p, "DPO scores the policy's token ids with the reference model, but it uses the %s tokenizer (vocabulary %d) and the policy the %s tokenizer (vocabulary %d)",
			ref.Arch.Tokenizer, ref.Arch.Vocab, pol.Arch.Tokenizer, pol.Arch.Vocab).
			WithHint("use a reference of the policy's family, or leave reference out to use the policy's starting weights")
	}
}

// rolloutLength checks that PPO's and GRPO's sequences, a prompt and
// what is generated after it, fit the positions of every model that reads
// them: the policy, and for PPO the reward and value models, which score
// the policy's token ids as they are.
func (c *checker) rolloutLength(base string, st Stage) {
	var prompt, gen int
	var genPath, genName, promptName string
	models := []*Model{st.Base()}
	switch {
	case st.Method == "ppo" && st.PPO != nil:
		prompt, gen = st.Data.MaxLength, st.PPO.ResponseLength
		genPath, genName, promptName = base+".ppo.responseLength", "responseLength", "data.maxLength"
		models = append(models, st.Reward, st.Value)
	default:
		g, ok := st.Rollouts()
		if !ok {
			return
		}
		// prepare truncates prompts to maxPromptLength, else to
		// data.maxLength (prepare.py).
		prompt, gen = st.Data.MaxLength, g.MaxCompletionLength
		promptName = g.Block + ".maxPromptLength"
		if g.MaxPromptLength > 0 {
			prompt = g.MaxPromptLength
		}
		genPath, genName = base+"."+g.Block+".maxCompletionLength", "maxCompletionLength"
	}
	for _, m := range models {
		if m == nil || prompt+gen <= m.Arch.MaxPositions {
			continue
		}
		d := c.errorf(genPath, "prompts of up to %d tokens + %s %d = %d tokens exceed the %d positions %s was trained for",
			prompt, genName, gen, prompt+gen, m.Arch.MaxPositions, m.Name())
		if room := m.Arch.MaxPositions - prompt; room >= 1 {
			d.WithHint("set %s to at most %d, or lower %s", genName, room, promptName)
		} else {
			d.WithHint("set %s below %d", promptName, m.Arch.MaxPositions)
		}
		return
	}
}

// modelRef checks a model that names a producing stage.
func (c *checker) modelRef(base string, m *Model) {
	if m.From != nil && m.Kind != "" && m.Kind != m.From.Kind {
		c.errorf(base+".kind", "kind %q contradicts stage %q, which produces a %s", m.Kind, m.From.Stage, m.From.Kind).
			WithHint("leave kind out: a stage's output says what it is")
	}
	if m.From != nil {
		if _, ok := c.r.Stages[m.From.Stage]; !ok {
			c.errorf(base, "model comes from stage %q, which this recipe does not have", m.From.Stage)
		}
	} else if !ident.IsCommit(m.Revision) && m.Arch.FromConfig == "" && !m.IsLocal() {
		// (An architecture from ftc.lock comes with the lock's pin.)
		c.warnf(base, "model %s at revision %q is not pinned to a commit; `ftc lock` or `ftc run` pins it in ftc.lock", m.Repo, m.Revision)
	}
}

func (c *checker) adapter(base string, st Stage) {
	a := st.Adapter
	bm := st.Base()
	if bm == nil {
		return
	}
	if bm.Attention == "flash_attention_2" && !c.r.Environment.HasFeature("flash-attention") {
		c.errorf(base+".model.attention", "flash_attention_2 needs flash-attn, which profile %q does not provide", c.r.Environment.Profile).
			WithHint("use attention: \"sdpa\" (PyTorch's fused attention), or a profile with the flash-attention feature")
	}
	if fam, ok := arch.Lookup(bm.Arch.Family); ok && fam.AttentionSoftcap && bm.Attention == "sdpa" {
		// transformers passes the cap to eager and flash-attention (2.6+)
		// only; sdpa would silently train a different function.
		c.errorf(base+".model.attention", "%s models cap their attention scores (tanh softcapping), which transformers' sdpa attention leaves out: the stage would train on other logits than the model was trained with", bm.Arch.Family).
			WithHint("use attention: \"eager\" (it applies the cap; for packed rows ftc's per-document attention takes over and applies it too), or \"flash_attention_2\" on a profile with flash-attn")
	}
	if a.Type != "none" && !a.Targets.AllLinear {
		var bad []string
		for _, t := range a.Targets.Modules {
			if !contains(bm.Arch.LinearModules, t) {
				bad = append(bad, strconv.Quote(t))
			}
		}
		if len(bad) > 0 {
			d := c.errorf(base+".adapter.targets", "LoRA target %s not found in %s models", strings.Join(bad, ", "), bm.Arch.Family)
			v := c.r.Environment.Packages["transformers"]
			if fam, ok := arch.Lookup(bm.Arch.Family); ok && len(fam.LinearModulesAt(v)) < len(fam.LinearModules) {
				d.WithHint("%s linear modules: %s (or \"all-linear\"): from transformers %s (the profile has %s) the experts and the router are fused parameters, not modules", bm.Arch.Family, strings.Join(bm.Arch.LinearModules, ", "), fam.FusedExpertsSince, v)
			} else {
				d.WithHint("%s linear modules: %s (or \"all-linear\")", bm.Arch.Family, strings.Join(bm.Arch.LinearModules, ", "))
			}
		}
	}
	h := c.r.Hardware
	if h.Strategy == "fsdp" && bm.Arch.DecoderLayer == "" {
		c.errorf(base+".model.arch", "FSDP wraps each transformer block, but the %s architecture does not name its block class", bm.Arch.Family).
			WithHint("set arch: decoderLayer (e.g. \"Qwen2DecoderLayer\")")
	}
	if a.Type != "qlora" {
		return
	}
	if !c.r.Environment.HasFeature("bitsandbytes") {
		c.errorf(base+".adapter.type", "QLoRA needs bitsandbytes, which profile %q does not provide", c.r.Environment.Profile)
	}
	if h.Strategy == "zero3" || h.Strategy == "fsdp" {
		if a.Quant.Storage != bm.DType {
			c.errorf(base+".adapter.quant.storage", "%s shards parameters, but 4-bit weights stored as %s cannot be sharded with %s ones", h.Strategy.Name(), a.Quant.Storage, bm.DType).
				WithHint("set adapter: quant: storage: %q (bnb_4bit_quant_storage must equal the model dtype)", bm.DType)
		}
		if h.Offload.Params {
			c.errorf(base+".adapter.type", "%s cannot offload 4-bit quantized parameters to CPU", h.Strategy.Name()).
				WithHint("offload only the optimizer, or use LoRA on %s weights", bm.DType)
		}
	}
	if bm.DType == "fp32" {
		c.errorf(base+".adapter.type", "QLoRA computes in half precision; the model dtype is fp32").WithHint("set dtype: \"bf16\"")
	}
}

// export checks that the asked form matches what the stage trains. A
// merge goes into the base's bf16 weights, never into 4-bit ones: a LoRA
// update is small next to the rounding step of 4-bit weights, so merging
// into them loses most of what was trained.
func (c *checker) export(base string, st Stage) {
	e := st.Export
	if e == nil {
		return
	}
	a := st.Adapter.Type
	switch {
	case e.Form == "full" && a != "none":
		c.errorf(base+".export.form", "export form \"full\" is for full fine-tunes; this stage trains a %s adapter", adapterName(a)).
			WithHint("use form: \"merged\" (adapter merged into the base) or \"adapter\" (the PEFT folder)")
	case e.Form != "full" && a == "none":
		c.errorf(base+".export.form", "export form %q needs an adapter; this stage fine-tunes all weights (adapter type \"none\")", e.Form).
			WithHint("use form: \"full\"")
	case e.Form == "adapter" && st.Base() != nil && st.Base().From != nil && st.Base().From.Adapter != "none":
		// The stage's adapter was trained on the base with stage From's
		// adapter merged in: on its own, on the base, it is another model.
		c.errorf(base+".export.form", "export form \"adapter\": this stage's adapter was trained on top of stage %q's %s adapter, so the adapter alone on the base is not the model that was trained", st.Base().From.Stage, adapterName(st.Base().From.Adapter)).
			WithHint("use form: \"merged\" (both adapters merged into the base)")
	}
	if e.DType == "4bit" {
		if a == "qlora" {
			c.errorf(base+".export.dtype", "a QLoRA adapter is merged into the base's bf16 weights, never into its 4-bit weights: the adapter's update is smaller than 4-bit rounding, so merging into quantized weights would lose most of what was trained").
				WithHint("export with dtype: \"bf16\" and quantize the merged model afterwards if you need 4-bit")
		} else {
			c.errorf(base+".export.dtype", "ftc exports bf16 weights; merging into 4-bit weights would lose most of what was trained").
				WithHint("export with dtype: \"bf16\" and quantize the exported model afterwards if you need 4-bit")
		}
	}
}

func adapterName(t string) string {
	if t == "qlora" {
		return "QLoRA"
	}
	return "LoRA"
}

// BatchPlan is the resolved batch arithmetic of a stage.
type BatchPlan struct {
	MicroBatch  int
	GradAccum   int
	World       int
	GlobalBatch int
}

// Batch resolves microBatch × gradAccum × world = globalBatch for st. It
// returns ok=false when the numbers given disagree.
func (r *Recipe) Batch(st Stage) (BatchPlan, bool) {
	t := st.Training
	world := r.TrainingProcesses(st)
	if world < 1 {
		world = 1
	}
	b := BatchPlan{MicroBatch: t.MicroBatch, World: world}
	switch {
	case t.GlobalBatch > 0 && t.GradAccum > 0:
		b.GradAccum = t.GradAccum
		b.GlobalBatch = t.MicroBatch * t.GradAccum * world
		return b, b.GlobalBatch == t.GlobalBatch
	case t.GlobalBatch > 0:
		per := t.MicroBatch * world
		b.GradAccum = t.GlobalBatch / per
		b.GlobalBatch = t.GlobalBatch
		return b, t.GlobalBatch%per == 0
	case t.GradAccum > 0:
		b.GradAccum = t.GradAccum
	default:
		b.GradAccum = 1
	}
	b.GlobalBatch = b.MicroBatch * b.GradAccum * world
	return b, true
}

func (c *checker) training(base string, st Stage) {
	t := st.Training
	if t.Epochs > 0 && t.Steps > 0 {
		c.errorf(base+".training.steps", "epochs and steps both set").WithHint("train for a number of epochs or of steps, not both")
	}
	if t.EvalEvery > 0 && st.Data.Eval == nil && st.Data.EvalFraction == 0 {
		c.errorf(base+".training.evalEvery", "evalEvery set, but the stage has no evaluation data").
			WithHint("set data: eval or data: evalFraction")
	}
	if t.Optimizer == "adamw-8bit" || t.Optimizer == "paged-adamw-8bit" {
		if !c.r.Environment.HasFeature("bitsandbytes") {
			c.errorf(base+".training.optimizer", "%s needs bitsandbytes, which profile %q does not provide", t.Optimizer, c.r.Environment.Profile)
		}
	}
	b, ok := c.r.Batch(st)
	if !ok {
		per := t.MicroBatch * b.World
		if t.GradAccum > 0 {
			c.errorf(base+".training.globalBatch", "globalBatch %d ≠ microBatch %d × gradAccum %d × %d data-parallel GPUs = %d",
				t.GlobalBatch, t.MicroBatch, t.GradAccum, b.World, t.MicroBatch*t.GradAccum*b.World).
				WithHint("give gradAccum or globalBatch, not both; with globalBatch %d, gradAccum would be %s", t.GlobalBatch, accumFor(t.GlobalBatch, per))
		} else {
			c.errorf(base+".training.globalBatch", "globalBatch %d is not a multiple of microBatch %d × %d data-parallel GPUs = %d",
				t.GlobalBatch, t.MicroBatch, b.World, per).
				WithHint("nearest valid global batches: %s", nearestMultiples(t.GlobalBatch, per))
		}
	}
}

func accumFor(global, per int) string {
	if global%per == 0 {
		return strconv.Itoa(global / per)
	}
	return fmt.Sprintf("%d/%d, not a whole number", global, per)
}

func nearestMultiples(n, m int) string {
	lo := n / m * m
	if lo == 0 {
		return strconv.Itoa(m)
	}
	return fmt.Sprintf("%d or %d", lo, lo+m)
}

func (c *checker) ppo(base string, st Stage) {
	pol := st.Policy
	check := func(role string, m *Model, wantReward bool) {
		if m == nil {
			return
		}
		p := base + "." + role
		switch {
		case m.From != nil:
			if wantReward && m.From.Kind != "reward-model" {
				c.errorf(p, "%s model comes from stage %q, %s stage, not a reward stage", role, m.From.Stage, withArticle(c.methodOf(m.From.Stage))).
					WithHint("refer to the output of a stage with method: \"reward\"")
			}
			if !wantReward && m.From.Kind == "reward-model" {
				c.errorf(p, "%s model comes from reward stage %q; it must be a causal language model", role, m.From.Stage)
			}
		case role == "reward":
			// A value model's head is trained by PPO, so a fresh one is
			// fine; the reward model's head is only read.
			c.hubRewardModel(p, m)
		case !wantReward && m.Kind == "reward-model":
			c.errorf(p, "%s model %s is declared a reward model (kind: \"reward-model\"); it must be a causal language model", role, m.Name())
		}
		c.modelRef(p, m)
		if pol != nil && (m.Arch.Tokenizer != pol.Arch.Tokenizer || m.Arch.Vocab != pol.Arch.Vocab) {
			c.errorf(p, "PPO passes the policy's token ids to the %s model, but it uses the %s tokenizer (vocabulary %d) and the policy the %s tokenizer (vocabulary %d)",
				role, m.Arch.Tokenizer, m.Arch.Vocab, pol.Arch.Tokenizer, pol.Arch.Vocab).
				WithHint("train the %s model from a model of the policy's family", role)
		}
	}
	check("reward", st.Reward, true)
	check("value", st.Value, true)
	check("reference", st.Reference, false)
	// From trl 0.17 a PPO rollout is microBatch × gradAccum and each mini
	// batch a slice of the accumulation window, but the optimizer still
	// steps once per full window: the mini batches merge into one update
	// per PPO epoch (trl/experimental/ppo/ppo_trainer.py in 1.9.0).
	if trl := c.r.Environment.Packages["trl"]; st.PPO != nil && st.PPO.MiniBatches > 1 && versionAtLeast(trl, 0, 17) {
		c.errorf(base+".ppo.miniBatches", "ppo.miniBatches %d has no effect with trl %s: its PPOTrainer steps the optimizer once per accumulation window, so the mini batches merge into one update per PPO epoch", st.PPO.MiniBatches, trl).
			WithHint("set miniBatches: 1 and raise ppo.epochs for more updates per rollout, or use a profile with trl < 0.17")
	}
}

// vllmGPUsHint proposes, among the changes that leave a GPU to train,
// those that pass vet: fewer server GPUs (when the node has more than
// one), generation on the training GPUs, or more GPUs on the node (with a
// data-parallel strategy when the recipe's is "single", which runs one
// process only).
func (c *checker) vllmGPUsHint(stage, target string) string {
	if c.proposing {
		return ""
	}
	h := c.r.Hardware
	g := c.r.Stages[stage].GRPO.Generation
	type change struct {
		say   string
		apply func(r *Recipe, st *Stage)
	}
	withGeneration := func(st *Stage, f func(*Generation)) {
		gr := *st.GRPO
		f(&gr.Generation)
		st.GRPO = &gr
	}
	var changes []change
	if h.GPUsPerNode > 1 {
		n := h.GPUsPerNode - 1
		changes = append(changes, change{fmt.Sprintf("generation: gpus: %d, leaving %d to train", n, h.GPUsPerNode-n), func(r *Recipe, st *Stage) {
			withGeneration(st, func(g *Generation) { g.GPUs = n })
		}})
	}
	changes = append(changes, change{`generation: engine: "transformers", generating on the training GPUs`, func(r *Recipe, st *Stage) {
		withGeneration(st, func(g *Generation) { g.Engine = "transformers" })
	}})
	need := g.GPUs + 1
	if need <= 16 {
		say := fmt.Sprintf("hardware: gpusPerNode: %d, one GPU to train on", need)
		strategy := h.Strategy
		if strategy == "single" {
			strategy = "ddp"
			say = fmt.Sprintf("hardware: {gpusPerNode: %d, strategy: \"ddp\"}, one GPU to train on", need)
		}
		changes = append(changes, change{say, func(r *Recipe, st *Stage) {
			r.Hardware.GPUsPerNode = need
			r.Hardware.Strategy = strategy
		}})
	}
	var ok []string
	for _, ch := range changes {
		if c.fixPasses(stage, target, ch.apply) {
			ok = append(ok, ch.say)
			c.offered = append(c.offered, offer{stage, target, ch.say, ch.apply})
		}
	}
	if len(ok) == 0 {
		return "no single change passes vet here: the server needs GPUs of its own, beside at least one training GPU on the first node"
	}
	return "set " + strings.Join(ok, "; or ")
}

// hubRewardModel checks that a Hub model used as a reward model says it
// has a trained score head. trl loads a reward model with
// AutoModelForSequenceClassification(num_labels=1): from a chat model's
// weights that builds the score head at random (transformers only warns),
// and the run trains against noise.
func (c *checker) hubRewardModel(p string, m *Model) {
	if m.Kind == "reward-model" {
		return
	}
	c.errorf(p, "%s is not a reward model: it has no trained score head, so trl would score completions with a randomly initialised one", m.Name()).
		WithHint("refer to the output of a stage with method: \"reward\", or, for a Hub reward model with a trained head, declare it: kind: \"reward-model\"")
}

// withArticle puts "a" or "an" before a method name: "an sft", "a ppo".
func withArticle(method string) string {
	if method != "" && strings.ContainsRune("aeiosx", rune(method[0])) {
		return "an " + method
	}
	return "a " + method
}

func (c *checker) methodOf(stage string) string {
	if s, ok := c.r.Stages[stage]; ok {
		return s.Method
	}
	return "unknown"
}

func (c *checker) grpo(base string, st Stage) {
	g := st.GRPO
	h := c.r.Hardware
	if g.Generation.Engine == "vllm" {
		p := base + ".grpo.generation"
		if !c.r.Environment.HasFeature("vllm") {
			c.errorf(p+".engine", "profile %q has no vLLM (vLLM pins torch exactly, and no release supports this profile's torch %s)", c.r.Environment.Profile, c.r.Environment.Packages["torch"]).
				WithHint("use engine: \"transformers\", or a profile with vLLM such as profiles.Current2026")
		}
		if g.Generation.GPUs >= h.GPUsPerNode {
			d := c.errorf(p+".gpus", "the vLLM server takes %d GPU(s), but the first node has only %d, leaving none to train", g.Generation.GPUs, h.GPUsPerNode)
			if hint := c.vllmGPUsHint(st.Name, p+".gpus"); hint != "" {
				d.WithHint("%s", hint)
			}
		}
		if g.Generation.Port == g.Generation.GroupPort {
			c.errorf(p+".groupPort", "the server's HTTP port and weight-sync port are both %d", g.Generation.Port)
		}
		if m := st.Model; m != nil && m.From != nil && m.From.Adapter != "none" {
			// The server is started from the policy's starting weights,
			// which here are an adapter folder vLLM cannot load.
			c.errorf(p+".engine", "the vLLM server loads the policy's starting weights, and stage %q's output is a %s adapter, which vLLM cannot load as a model", m.From.Stage, adapterName(m.From.Adapter)).
				WithHint("use engine: \"transformers\", or train stage %q with adapter: type: \"none\"", m.From.Stage)
		}
		// The server runs on the first node, where the launcher's
		// rendezvous listens too.
		if rp := c.r.LauncherPort(st); rp != 0 {
			for _, f := range []struct {
				name string
				port int
			}{{"port", g.Generation.Port}, {"groupPort", g.Generation.GroupPort}} {
				if f.port != rp {
					continue
				}
				d := c.errorf(p+"."+f.name, "the vLLM server's %s %d is the port the launcher's rendezvous listens on, on the same node", f.name, f.port)
				if h.Nodes > 1 {
					d.WithHint("choose another %s, or another hardware.rendezvous.port", f.name)
				} else {
					d.WithHint("choose another %s: on one node torchrun and accelerate use port %d", f.name, rp)
				}
			}
		}
	}
	c.rollouts(base, st)
}

// rloo checks an RLOO stage: trl's reward-function RLOOTrainer, then
// what it shares with GRPO.
func (c *checker) rloo(base string, st Stage) {
	// trl 0.16's RLOOTrainer is the PPO-style one (policy, ref_policy,
	// reward_model; no reward functions), which ftc does not drive. The
	// GRPO-shaped RLOOTrainer came with trl's rewrite (trl#3801); the
	// release it first shipped in is not checked here: the boundary is
	// trl 1.x, checked against 0.16.0 (old) and 1.9.0 (reward functions).
	if trl := c.r.Environment.Packages["trl"]; trl != "" && !versionAtLeast(trl, 1, 0) {
		c.errorf(base+".method", "method \"rloo\" needs trl's RLOOTrainer with reward functions (trl 1.x); profile %q has trl %s, whose RLOOTrainer is the older PPO-style one, which ftc does not drive",
			c.r.Environment.Profile, trl).
			WithHint("use profiles.Current2026, or method \"grpo\"")
		return
	}
	c.rollouts(base, st)
}

// rollouts checks what GRPO and RLOO share: the batch of completions
// divides into groups of generations, and the rewards.
func (c *checker) rollouts(base string, st Stage) {
	g, ok := st.Rollouts()
	if !ok {
		return
	}
	name := strings.ToUpper(st.Method)
	procs := c.r.TrainingProcesses(st)
	if procs >= 1 {
		// trl 0.16 groups the completions of one prompt within a step's
		// micro batches across processes; from trl 0.18 the generation
		// batch also spans gradient accumulation.
		batch := procs * st.Training.MicroBatch
		what := fmt.Sprintf("%d training processes × microBatch %d", procs, st.Training.MicroBatch)
		unit := procs
		if versionAtLeast(c.r.Environment.Packages["trl"], 0, 18) {
			b, _ := c.r.Batch(st)
			batch *= b.GradAccum
			what += fmt.Sprintf(" × gradAccum %d", b.GradAccum)
			unit *= b.GradAccum
		}
		if batch%g.Generations != 0 {
			c.errorf(base+"."+g.Block+".generations", "generations %d does not divide the batch of %d completions (%s)",
				g.Generations, batch, what).
				WithHint("valid generations for this batch: %s; or change microBatch to a multiple of %d", validGenerations(batch), g.Generations/gcd(g.Generations, unit))
		}
	}
	if len(st.Rewards) == 0 || !c.r.Pos.Has(base+".rewards") {
		// The schema's [#RewardSignal, ...] fills in one empty element
		// when the field is absent; say what is really missing.
		c.errorf(base+".rewards", "%s needs at least one reward", name).
			WithHint("rewards: [{function: {file: \"rewards.py\", name: \"f\"}}] or [{model: stages.NAME.output}]")
		return
	}
	allZero := true
	for _, rw := range st.Rewards {
		allZero = allZero && rw.Weight == 0
	}
	if allZero {
		// Every reward is multiplied by 0: each completion scores 0, the
		// group advantages are all 0 and only the KL term moves the policy.
		c.errorf(base+".rewards.0.weight", "every reward has weight 0, so every completion scores 0 and %s has nothing to learn from", name).
			WithHint("give at least one reward a non-zero weight (the default is 1.0)")
	}
	for i, rw := range st.Rewards {
		p := fmt.Sprintf("%s.rewards.%d", base, i)
		switch {
		case rw.Model == nil && rw.Function == nil:
			c.errorf(p, "reward has neither model nor function").WithHint("set model: stages.NAME.output, or function: {file, name}")
		case rw.Model != nil && rw.Function != nil:
			c.errorf(p, "reward has both model and function").WithHint("split them into two rewards, each with its weight")
		case rw.Model != nil:
			if rw.Model.From != nil && rw.Model.From.Kind != "reward-model" {
				c.errorf(p+".model", "reward model comes from stage %q, %s stage, not a reward stage", rw.Model.From.Stage, withArticle(c.methodOf(rw.Model.From.Stage))).
					WithHint("refer to the output of a stage with method: \"reward\"")
			} else if rw.Model.From == nil {
				c.hubRewardModel(p+".model", rw.Model)
			}
			c.modelRef(p+".model", rw.Model)
		case rw.Function != nil:
			c.calledFunction(p+".function", *rw.Function, c.mixColumns(st.Data), strings.ToUpper(st.Method))
		}
	}
}

// rewardFunction checks statically that the file defines the function
// with a signature GRPOTrainer can call. trl calls reward functions by
// keyword: f(prompts=..., completions=..., **columns), where columns are
// the dataset's other columns.
//
// columns are the dataset's column names when known (nil otherwise); a
// parameter that is neither prompts, completions nor a known column gets
// no value, so it is an error when columns are known.
//
// The file is parsed (compiler/pyast), never run. The name's last
// module-level binding counts, as in Python. A def or a lambda assigned
// to the name has its parameters checked; a name bound by an import or
// by assigning some other value (length_reward = make_reward(400),
// partial(f, scale=2)), or a class, is accepted unchecked: what it is
// called with is only known by running Python. A decorated function's
// parameters are checked as written, but problems are warnings: most
// decorators keep the signature, some do not.
func (c *checker) rewardFunction(p string, fn RewardFunction, columns []string) {
	c.calledFunction(p, fn, columns, "GRPO")
}

// calledFunction is rewardFunction for a function that caller (RLOO, an
// eval stage's scorers) calls as GRPO calls its reward functions.
func (c *checker) calledFunction(p string, fn RewardFunction, columns []string, caller string) {
	m := c.python(p, fn.File)
	if m == nil {
		return // unreadable, unparsable or not parsed: already reported
	}
	b := m.Lookup(fn.Name)
	if b == nil {
		if m.StarImport {
			c.warnf(p+".name", "%s does not define %q itself; it may come from its from ... import *", fn.File, fn.Name)
			return
		}
		d := c.errorf(p+".name", "%s defines no top-level function %q", fn.File, fn.Name)
		if defs := m.Names(pyast.Function, pyast.Lambda); len(defs) > 0 {
			d.WithHint("functions in %s: %s", fn.File, strings.Join(defs, ", "))
		}
		return
	}
	if !b.HasSignature() {
		return
	}
	report, unless := c.errorf, ""
	if b.Decorated {
		report, unless = c.warnf, " (unless its decorator changes its signature)"
	}
	hasVarKeyword := false
	for _, prm := range b.Params {
		hasVarKeyword = hasVarKeyword || prm.Kind == pyast.VarKeyword
	}
	if !hasVarKeyword {
		report(p+".name", "%s in %s has no **kwargs parameter%s; %s calls it as %s(prompts=..., completions=..., **columns)", fn.Name, fn.File, unless, caller, fn.Name).
			WithHint("def %s(prompts, completions, **kwargs)", fn.Name)
	}
	for _, prm := range b.Params {
		switch {
		case prm.Kind == pyast.VarPositional || prm.Kind == pyast.VarKeyword || prm.HasDefault:
		case prm.Kind == pyast.PositionalOnly:
			report(p+".name", "%s in %s has positional-only parameters%s, but %s passes arguments by name", fn.Name, fn.File, unless, caller)
			return
		case prm.Name == "prompts" || prm.Name == "completions" || contains(columns, prm.Name):
		case columns != nil:
			report(p+".name", "parameter %q of %s gets no value%s: the dataset has no column %q, and %s calls %s(prompts=..., completions=..., **columns)", prm.Name, fn.Name, unless, prm.Name, caller, fn.Name).
				WithHint("dataset columns: %s", strings.Join(columns, ", "))
		default:
			c.warnf(p+".name", "parameter %q of %s gets a value only if the dataset has a column %q: %s calls %s(prompts=..., completions=..., **columns)", prm.Name, fn.Name, prm.Name, caller, fn.Name)
		}
	}
}

// python parses a reward-function file once, and reports once per file a
// syntax error, at its line and column in the file, or that it could not
// be parsed. It returns nil when the file's functions cannot be known.
func (c *checker) python(p, name string) *pyast.Module {
	if m, ok := c.py[name]; ok {
		return m
	}
	if c.py == nil {
		c.py = map[string]*pyast.Module{}
	}
	c.py[name] = nil
	f, ok := c.r.Files[name]
	if !ok {
		return nil // reading it already failed and was reported
	}
	parse := pyast.Parse
	if c.parse != nil {
		parse = c.parse
	}
	m, err := parse(f.Content)
	if err != nil {
		c.warnf(p+".file", "%s was not checked: %v", name, err).
			WithHint("build ftc with cgo (CGO_ENABLED=1 and a C compiler) to check reward functions before a run")
		return nil
	}
	if len(m.Errors) > 0 {
		// The first error only, as Python reports: after one, a parser's
		// recovery guesses, and later errors may be its own.
		e := m.Errors[0]
		tf := token.NewFile(filepath.Join(c.r.Dir, filepath.FromSlash(name)), -1, len(f.Content)+1)
		tf.SetLinesForContent(f.Content)
		c.diags.Errorf(tf.Pos(e.Pos.Offset, token.NoRelPos), "", "syntax error: %s", e.Msg).
			WithHint("%s names this file, and Python would not import it", p)
		return nil
	}
	c.py[name] = m
	return m
}

// mix checks that a stage has training data, from train or from mix, and
// that a mix's weights are positive and its datasets distinct.
func (c *checker) mix(name string, st Stage) {
	base := "stages." + name + ".data"
	d := st.Data
	hasTrain := d.Train.Name != "" || d.Train.Format != ""
	switch {
	case hasTrain && len(d.Mix) > 0:
		c.errorf(base+".mix", "train and mix are both set").
			WithHint("list train's dataset in the mix too: {dataset: datasets.%s, weight: 1}, and remove train", d.Train.Name)
	case !hasTrain && len(d.Mix) == 0:
		c.errorf(base, "the stage has no training data").
			WithHint("set train: datasets.NAME, or mix: [{dataset: datasets.A, weight: 1}, {dataset: datasets.B, weight: 0.5}]")
	}
	seen := map[string]int{}
	for i, m := range d.Mix {
		p := fmt.Sprintf("%s.mix.%d", base, i)
		if !(m.Weight > 0) {
			c.errorf(p+".weight", "dataset %q has weight %v in the mix; a weight must be more than 0", m.Dataset.Name, m.Weight).
				WithHint("a weight multiplies the dataset's rows per epoch (0.5 takes half of them); to leave %q out, remove it from the mix", m.Dataset.Name)
		}
		if j, ok := seen[m.Dataset.Name]; ok && m.Dataset.Name != "" {
			c.errorf(p+".dataset", "dataset %q is in the mix twice (also at mix.%d)", m.Dataset.Name, j).
				WithHint("give it one entry, with the weights added")
		} else {
			seen[m.Dataset.Name] = i
		}
	}
}

// mixColumns returns the columns every training source of a stage has,
// or nil when one source's columns cannot be known without loading it.
func (c *checker) mixColumns(d StageData) []string {
	var out []string
	for i, src := range d.Sources() {
		cols := c.columns(src.Dataset)
		if cols == nil {
			return nil
		}
		if i == 0 {
			out = cols
			continue
		}
		var both []string
		for _, k := range out {
			if contains(cols, k) {
				both = append(both, k)
			}
		}
		out = both
	}
	return out
}

// columns returns the column names of a local JSON-lines dataset, read
// from its first row, or nil when they cannot be known without loading it.
func (c *checker) columns(d Dataset) []string {
	if d.File == nil || d.File.EncodingOrDefault() != "jsonl" || !fs.ValidPath(d.File.Path) {
		return nil
	}
	f, err := c.data.Open(d.File.Path)
	if err != nil {
		return nil
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, 1<<16).ReadSlice('\n')
	if err != nil && len(line) == 0 {
		return nil
	}
	var row map[string]json.RawMessage
	if json.Unmarshal(line, &row) != nil {
		return nil
	}
	cols := []string{}
	for k := range row {
		cols = append(cols, k)
	}
	sort.Strings(cols)
	return cols
}

// versionAtLeast reports whether a version like "0.16.0" is at least
// major.minor; an unparsable version counts as old, the stricter choice.
func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	digits := parts[1]
	if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		digits = digits[:i]
	}
	mi, err2 := strconv.Atoi(digits)
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

func validGenerations(batch int) string {
	var out []string
	for d := 2; d <= batch; d++ {
		if batch%d == 0 {
			out = append(out, strconv.Itoa(d))
		}
	}
	if len(out) == 0 {
		return "none (the batch is 1)"
	}
	return strings.Join(out, ", ")
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
