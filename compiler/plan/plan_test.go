package plan_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/load"
	"github.com/ftc-dev/ftc/compiler/plan"
)

// These tests check plans as Go values, compiled from the examples
// through the compiler: the graph, the kinds, the launch plans and the
// launcher files, and which keys a change moves. (examples/ compares a
// text summary of every example with a golden; these say what must hold.)

func planOf(t *testing.T, example string, opts plan.Options, sets ...string) *plan.Plan {
	t.Helper()
	var ovs []load.Override
	for _, s := range sets {
		o, err := load.ParseOverride(s)
		if err != nil {
			t.Fatal(err)
		}
		ovs = append(ovs, o)
	}
	p, diags, err := compiler.PlanWith("../../examples/"+example+"/recipe.cue", ovs, compiler.Options{Plan: opts})
	if err != nil {
		t.Fatalf("plan %s %v: %v\n%v", example, sets, err, diags)
	}
	checkGraph(t, example, p)
	return p
}

func stageOf(t *testing.T, p *plan.Plan, name string) *plan.Stage {
	t.Helper()
	for _, s := range p.Stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("plan %s has no stage %q", p.Recipe, name)
	return nil
}

var validKey = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// checkGraph checks what every plan must be: stages in topological order,
// each input from a stage naming an earlier stage by its key, unique
// names and keys, valid kinds, a resume key on every stage, and one
// launch process for the stages that do not train.
func checkGraph(t *testing.T, example string, p *plan.Plan) {
	t.Helper()
	if p.APIVersion != plan.APIVersion {
		t.Errorf("%s: apiVersion %q", example, p.APIVersion)
	}
	if !validKey.MatchString(string(p.Environment.Key)) {
		t.Errorf("%s: environment key %q", example, p.Environment.Key)
	}
	seen := map[string]*plan.Stage{}
	keys := map[string]string{}
	for _, s := range p.Stages {
		if !s.Kind.Valid() {
			t.Errorf("%s: stage %s has kind %q", example, s.Name, s.Kind)
		}
		if !validKey.MatchString(string(s.Key)) || !validKey.MatchString(string(s.ResumeKey)) {
			t.Errorf("%s: stage %s: key %q, resume key %q", example, s.Name, s.Key, s.ResumeKey)
		}
		if other, dup := keys[string(s.Key)]; dup {
			t.Errorf("%s: stages %s and %s share the key %s", example, other, s.Name, s.Key)
		}
		keys[string(s.Key)] = s.Name
		if seen[s.Name] != nil {
			t.Errorf("%s: two stages named %s", example, s.Name)
		}
		for _, in := range s.Inputs {
			switch {
			case in.Stage != "":
				up := seen[in.Stage]
				if up == nil {
					t.Errorf("%s: stage %s reads %s (%s) before it is planned", example, s.Name, in.Stage, in.Role)
				} else if in.Key != up.Key {
					t.Errorf("%s: stage %s reads %s by key %s, want %s", example, s.Name, in.Stage, in.Key, up.Key)
				}
			case in.Source == nil:
				t.Errorf("%s: stage %s: input %s is neither a stage's output nor a source", example, s.Name, in.Role)
			case in.Source.Pin == "":
				t.Errorf("%s: stage %s: source %s has no pin", example, s.Name, in.Source.Ref)
			}
		}
		if s.Kind == plan.KindReference || s.Kind == plan.KindEval {
			// Forward passes on one device: no steps, an estimate of that
			// device's memory.
			if s.Launch.Processes != 1 || s.Launch.Launcher != "python" || s.Estimate == nil || !s.Estimate.Inference || s.Steps != nil {
				t.Errorf("%s: stage %s (%s) launches %d process(es) with %s, estimate %v, steps %v: want one python process, an inference estimate", example, s.Name, s.Kind, s.Launch.Processes, s.Launch.Launcher, s.Estimate, s.Steps)
			}
		} else if !s.Kind.Training() {
			if s.Launch.Processes != 1 || s.Launch.Launcher != "python" || s.Estimate != nil || s.Steps != nil {
				t.Errorf("%s: stage %s (%s) launches %d process(es) with %s, estimate %v, steps %v: want one python process, no estimate", example, s.Name, s.Kind, s.Launch.Processes, s.Launch.Launcher, s.Estimate, s.Steps)
			}
		} else if s.Steps == nil || s.Estimate == nil {
			t.Errorf("%s: training stage %s has no steps or estimate", example, s.Name)
		}
		seen[s.Name] = s
	}
}

// shape is a stage as a test states it: name, kind, launcher, processes
// and the launcher files, sorted.
type shape struct {
	Name, Kind, Launcher string
	Processes            int
	Files                []string
	Server               bool
}

func shapes(p *plan.Plan) []shape {
	var out []shape
	for _, s := range p.Stages {
		var files []string
		for f := range s.Files {
			files = append(files, f)
		}
		sort.Strings(files)
		out = append(out, shape{s.Name, string(s.Kind), s.Launch.Launcher, s.Launch.Processes, files, s.Launch.Server != nil})
	}
	return out
}

func TestExampleShapes(t *testing.T) {
	prepare := func(name string) shape { return shape{Name: name, Kind: "prepare", Launcher: "python", Processes: 1} }
	for _, c := range []struct {
		example string
		want    []shape
	}{
		{"sft-ddp", []shape{prepare("sft.prepare"), {"sft", "sft", "torchrun", 8, []string{"trainer_args.json"}, false}}},
		{"sft-zero3", []shape{prepare("sft.prepare"), {"sft", "sft", "torchrun", 8, []string{"ds_config.json", "trainer_args.json"}, false}}},
		{"sft-fsdp", []shape{prepare("sft.prepare"), {"sft", "sft", "accelerate", 8, []string{"accelerate.yaml", "trainer_args.json"}, false}}},
		{"multinode-sft", []shape{prepare("sft.prepare"), {"sft", "sft", "torchrun", 16, []string{"ds_config.json", "trainer_args.json"}, false}}},
		{"sft-kubernetes", []shape{prepare("sft.prepare"), {"sft", "sft", "accelerate", 16, []string{"accelerate.yaml", "kubernetes.yaml", "trainer_args.json"}, false}}},
		// One of the 8 GPUs serves vLLM generation: 7 trainers.
		{"grpo-ddp", []shape{prepare("grpo.prepare"), {"grpo", "grpo", "torchrun", 7, []string{"trainer_args.json"}, true}}},
		{"sft-export", []shape{prepare("sft.prepare"), {"sft", "sft", "python", 1, []string{"trainer_args.json"}, false}, {Name: "sft.export", Kind: "export", Launcher: "python", Processes: 1}}},
		{"rlhf-ppo", []shape{
			prepare("sft.prepare"), {"sft", "sft", "python", 1, []string{"trainer_args.json"}, false},
			prepare("rm.prepare"), {"rm", "reward", "python", 1, []string{"trainer_args.json"}, false},
			prepare("ppo.prepare"), {"ppo", "ppo", "python", 1, []string{"trainer_args.json"}, false},
		}},
	} {
		t.Run(c.example, func(t *testing.T) {
			p := planOf(t, c.example, plan.Options{})
			if d := cmp.Diff(c.want, shapes(p)); d != "" {
				t.Errorf("stages (-want +got):\n%s", d)
			}
			for _, s := range p.Stages {
				// The entrypoint is the stage's kind, reading stage.json.
				if !slices.Equal(tail(s.Launch.Argv, 5), []string{"-m", "ftc.entry", string(s.Kind), "--config", "stage.json"}) {
					t.Errorf("stage %s runs %v: want it to end in -m ftc.entry %s --config stage.json", s.Name, s.Launch.Argv, s.Kind)
				}
				// Every launcher file the launch names is in the plan.
				for _, f := range s.Launch.Files {
					if s.Files[f] == "" {
						t.Errorf("stage %s: launch names %s, which the plan does not hold", s.Name, f)
					}
				}
			}
		})
	}
}

func tail(s []string, n int) []string {
	if len(s) < n {
		return s
	}
	return s[len(s)-n:]
}

// TestPPOInputs: the PPO stage reads its four models from the stages that
// trained them, by role.
func TestPPOInputs(t *testing.T) {
	p := planOf(t, "rlhf-ppo", plan.Options{})
	roles := map[string]string{}
	for _, in := range stageOf(t, p, "ppo").Inputs {
		roles[in.Role] = in.Stage
	}
	want := map[string]string{"train": "ppo.prepare", "policy": "sft", "reference": "sft", "reward": "rm", "value": "rm"}
	if d := cmp.Diff(want, roles); d != "" {
		t.Errorf("ppo's inputs by role (-want +got):\n%s", d)
	}
}

// TestGRPOServerGPUs: the vLLM server and the trainers share the node's
// GPUs without overlap, and the trainers use all the others.
func TestGRPOServerGPUs(t *testing.T) {
	p := planOf(t, "grpo-ddp", plan.Options{})
	l := stageOf(t, p, "grpo").Launch
	if l.Server == nil || len(l.Server.GPUs) == 0 || len(l.Server.Ports) == 0 {
		t.Fatalf("grpo-ddp plans no vLLM server with GPUs and ports: %+v", l.Server)
	}
	all := append(slices.Clone(l.GPUs), l.Server.GPUs...)
	sort.Ints(all)
	if !slices.Equal(all, []int{0, 1, 2, 3, 4, 5, 6, 7}) || len(l.GPUs) != l.Processes {
		t.Errorf("trainers on GPUs %v (%d processes), server on %v: want the 8 GPUs split, one trainer a GPU", l.GPUs, l.Processes, l.Server.GPUs)
	}
}

// TestHyperparameterMovesOnlyItsStage: a learning rate is in the trainer
// arguments and the key of its stage and of the stages downstream, never
// in a data preparation key or the environment's.
func TestHyperparameterMovesOnlyItsStage(t *testing.T) {
	base := planOf(t, "rlhf-ppo", plan.Options{})
	changed := planOf(t, "rlhf-ppo", plan.Options{}, "stages.rm.training.learningRate=3e-5")
	if base.Environment.Key != changed.Environment.Key {
		t.Error("a learning rate changed the environment key")
	}
	for _, c := range []struct {
		stage string
		moves bool
	}{{"sft.prepare", false}, {"sft", false}, {"rm.prepare", false}, {"ppo.prepare", false}, {"rm", true}, {"ppo", true}} {
		a, b := stageOf(t, base, c.stage), stageOf(t, changed, c.stage)
		if (a.Key != b.Key) != c.moves {
			t.Errorf("stage %s: key %s → %s; want moved=%v", c.stage, a.Key.Short(), b.Key.Short(), c.moves)
		}
	}
	if got := trainerArg(t, stageOf(t, changed, "rm"), "learning_rate"); got != 3e-5 {
		t.Errorf("rm's trainer_args.json has learning_rate %v, want 3e-05", got)
	}
	if got := trainerArg(t, stageOf(t, base, "rm"), "learning_rate"); got != 1e-5 {
		t.Errorf("rm's trainer_args.json has learning_rate %v, want the recipe's 1e-05", got)
	}
}

func trainerArg(t *testing.T, s *plan.Stage, name string) any {
	t.Helper()
	var args map[string]any
	if err := json.Unmarshal([]byte(s.Files["trainer_args.json"]), &args); err != nil {
		t.Fatalf("stage %s: trainer_args.json: %v", s.Name, err)
	}
	v, ok := args[name]
	if !ok {
		t.Fatalf("stage %s: trainer_args.json has no %s", s.Name, name)
	}
	return v
}

// TestLauncherFiles: the strategy's launcher file says the strategy.
func TestLauncherFiles(t *testing.T) {
	var ds struct {
		ZeRO struct {
			Stage int `json:"stage"`
		} `json:"zero_optimization"`
	}
	z3 := stageOf(t, planOf(t, "sft-zero3", plan.Options{}), "sft")
	if err := json.Unmarshal([]byte(z3.Files["ds_config.json"]), &ds); err != nil || ds.ZeRO.Stage != 3 {
		t.Errorf("sft-zero3's ds_config.json: zero_optimization.stage %d (%v), want 3", ds.ZeRO.Stage, err)
	}
	fsdp := stageOf(t, planOf(t, "sft-fsdp", plan.Options{}), "sft")
	if y := fsdp.Files["accelerate.yaml"]; !strings.Contains(y, "distributed_type: FSDP") {
		t.Errorf("sft-fsdp's accelerate.yaml is not an FSDP config:\n%s", y)
	}
}

// TestGPUsMoveTheLaunchNotTheResumeKey: on 4 GPUs instead of 8 the
// trainers are 4, the key moves (the process layout is in it) and the
// resume key does not (a run interrupted on 8 is found on 4); the data
// preparation is the same stage.
func TestGPUsMoveTheLaunchNotTheResumeKey(t *testing.T) {
	eight := planOf(t, "sft-ddp", plan.Options{})
	four := planOf(t, "sft-ddp", plan.Options{GPUs: 4})
	a, b := stageOf(t, eight, "sft"), stageOf(t, four, "sft")
	if b.Launch.Processes != 4 || !slices.Contains(b.Launch.Argv, "--nproc-per-node=4") {
		t.Errorf("on 4 GPUs: %d processes, argv %v", b.Launch.Processes, b.Launch.Argv)
	}
	if a.Key == b.Key || a.ResumeKey != b.ResumeKey {
		t.Errorf("8 → 4 GPUs: key %s → %s, resume key %s → %s: want the key moved, the resume key kept", a.Key.Short(), b.Key.Short(), a.ResumeKey.Short(), b.ResumeKey.Short())
	}
	if stageOf(t, eight, "sft.prepare").Key != stageOf(t, four, "sft.prepare").Key {
		t.Error("the GPU count changed the data preparation key")
	}
	if four.Rescaled == nil || eight.Rescaled != nil {
		t.Errorf("rescaled: %v on 8, %v on 4", eight.Rescaled, four.Rescaled)
	}
}

// TestCPUPlan: --cpu puts the training stages on the CPU, keyed apart
// from the GPU run; data preparation is the same stage either way.
func TestCPUPlan(t *testing.T) {
	gpu := planOf(t, "sft-trl-single", plan.Options{})
	cpu := planOf(t, "sft-trl-single", plan.Options{CPU: true})
	if cpu.Hardware.Device != "cpu" || gpu.Hardware.Device != "" {
		t.Errorf("hardware device %q with --cpu, %q without", cpu.Hardware.Device, gpu.Hardware.Device)
	}
	for _, s := range cpu.Stages {
		g := stageOf(t, gpu, s.Name)
		if s.Kind.Training() {
			if s.Device != "cpu" || !s.OnCPU() || s.Key == g.Key {
				t.Errorf("stage %s with --cpu: device %q, key %s (GPU %s): want cpu, its own key", s.Name, s.Device, s.Key.Short(), g.Key.Short())
			}
		} else if s.Key != g.Key || !s.CPUOnly() {
			t.Errorf("stage %s: --cpu changed the key of a stage that never uses a GPU", s.Name)
		}
	}
}

// TestDPOSweepSharesOneReferenceStage: the reference log-probabilities are
// keyed by the reference model and the prepared pairs only. The three
// stages of a beta sweep read one reference stage; changing a stage's
// weight decay or beta leaves its key alone, a different reference model or
// prepared data does not, and a --cpu plan keys it apart from the GPU's.
func TestDPOSweepSharesOneReferenceStage(t *testing.T) {
	refOf := func(p *plan.Plan, stage string) plan.Input {
		t.Helper()
		for _, in := range stageOf(t, p, stage).Inputs {
			if in.Role == plan.ReferenceRole {
				return in
			}
		}
		t.Fatalf("stage %s reads no %s input", stage, plan.ReferenceRole)
		return plan.Input{}
	}
	p := planOf(t, "dpo-sweep", plan.Options{})
	var refs []*plan.Stage
	for _, s := range p.Stages {
		if s.Kind == plan.KindReference {
			refs = append(refs, s)
		}
	}
	if len(refs) != 1 {
		t.Fatalf("the sweep plans %d reference stages, want 1", len(refs))
	}
	ref := refs[0]
	for _, name := range []string{"dpo-b005", "dpo-b01", "dpo-b03"} {
		if in := refOf(p, name); in.Stage != ref.Name || in.Key != ref.Key {
			t.Errorf("%s reads %+v, not the one reference stage %s", name, in, ref.Key.Short())
		}
	}
	if ref.OnCPU() || len(ref.Launch.GPUs) != 1 || ref.Launch.Processes != 1 {
		t.Errorf("reference stage launch %+v, want one process on one GPU", ref.Launch)
	}
	cfg := ref.Config.(plan.ReferenceConfig)
	if len(cfg.Data) != 1 || cfg.Data[0] != "train" || cfg.MaxLength != 1024 {
		t.Errorf("reference config %+v", cfg)
	}

	// (--set adds to what the sweep's comprehension writes: weight decay,
	// the model's dtype, the over-length policy.)
	same := planOf(t, "dpo-sweep", plan.Options{}, `stages."dpo-b01".training.weightDecay=0.01`)
	if got := refOf(same, "dpo-b01").Key; got != ref.Key {
		t.Errorf("weight decay moved the reference key: %s → %s", ref.Key.Short(), got.Short())
	}
	if stageOf(t, same, "dpo-b01").Key == stageOf(t, p, "dpo-b01").Key {
		t.Error("weight decay did not move the dpo stage's key")
	}
	for _, set := range []string{
		`stages."dpo-b01".model.dtype="fp32"`,
		`stages."dpo-b01".data.overLength="truncate"`,
	} {
		other := planOf(t, "dpo-sweep", plan.Options{}, set)
		if got := refOf(other, "dpo-b01").Key; got == ref.Key {
			t.Errorf("%s left the reference key as it was", set)
		}
		if got := refOf(other, "dpo-b005").Key; got != ref.Key {
			t.Errorf("%s moved another stage's reference key", set)
		}
	}
	cpu := planOf(t, "dpo-sweep", plan.Options{CPU: true})
	cr := stageOf(t, cpu, "dpo-b005.reference")
	if cr.Key == ref.Key || !cr.OnCPU() || cr.Launch.Env["CUDA_VISIBLE_DEVICES"] != "" {
		t.Errorf("--cpu reference stage: key %s (GPU %s), launch %+v", cr.Key.Short(), ref.Key.Short(), cr.Launch)
	}
}

// TestEvalStagesAreKeyedByWhatTheyEvaluate: an eval stage's key holds its
// model, prepared data and settings: training the fine-tune differently
// moves the fine-tune's evaluation and leaves the base's; greedy decoding
// leaves the seed out. The base and fine-tuned evaluations of the same
// data and settings form one comparison.
func TestEvalStagesAreKeyedByWhatTheyEvaluate(t *testing.T) {
	p := planOf(t, "sft-eval", plan.Options{})
	lr := planOf(t, "sft-eval", plan.Options{}, "stages.sft.training.weightDecay=0.01")
	for name, moves := range map[string]bool{"loss-base": false, "math-base": false, "loss-sft": true, "math-sft": true} {
		if got := stageOf(t, lr, name).Key != stageOf(t, p, name).Key; got != moves {
			t.Errorf("weight decay of sft moved %s's key: %v, want %v", name, got, moves)
		}
	}
	seed := planOf(t, "sft-eval", plan.Options{}, "seed=7")
	if stageOf(t, seed, "math-base").Key != stageOf(t, p, "math-base").Key {
		t.Error("the recipe seed moved a greedy evaluation's key")
	}
	hot := planOf(t, "sft-eval", plan.Options{}, `stages."math-base".eval.temperature=0.7`)
	if stageOf(t, hot, "math-base").Key == stageOf(t, p, "math-base").Key {
		t.Error("sampling did not move the evaluation's key")
	}
	math := stageOf(t, p, "math-sft")
	cfg := math.Config.(plan.EvalConfig)
	if cfg.Mode != "generate" || len(cfg.Scorers) != 2 || cfg.MaxNewTokens != 512 || stageOf(t, p, "loss-sft").Config.(plan.EvalConfig).Mode != "loss" {
		t.Errorf("eval configs: %+v", cfg)
	}
	if len(math.Launch.GPUs) != 1 || math.Launch.Processes != 1 {
		t.Errorf("eval launch %+v, want one process on one GPU", math.Launch)
	}

	final := map[string]map[string]any{
		"loss-base": {"eval_loss": 2.5, "perplexity": 12.18, "seconds": 3.0},
		"loss-sft":  {"eval_loss": 1.25, "perplexity": 3.49},
		"math-base": {"correctness_reward": 0.0},
		"math-sft":  {"correctness_reward": 0.5, "format_reward": 1.0},
	}
	cs := plan.Compare(p, final)
	if len(cs) != 2 {
		t.Fatalf("%d comparisons, want 2: %+v", len(cs), cs)
	}
	for _, c := range cs {
		if len(c.Stages) != 2 || c.Models[0] != "Qwen/Qwen2.5-1.5B-Instruct" || c.Models[1] != "stage sft" {
			t.Errorf("comparison of %v on %v", c.Stages, c.Models)
		}
		for i, m := range c.Metrics {
			for j, st := range c.Stages {
				want := ""
				if v, ok := final[st][m]; ok {
					want = fmt.Sprint(v)
				}
				if c.Values[i][j] != want {
					t.Errorf("%s of %s: %q, want %q", m, st, c.Values[i][j], want)
				}
			}
			if m == "seconds" {
				t.Error("run time is compared")
			}
		}
	}
}

// TestORPOAndSimPOShareDPOsPreparedPairs: orpo and simpo stages read the
// rows prepare shapes for DPO (consumer "dpo"), so the two stages of
// examples/orpo, and a dpo stage on the same data, share one prepare
// stage; neither has a reference stage.
func TestORPOAndSimPOShareDPOsPreparedPairs(t *testing.T) {
	p := planOf(t, "orpo", plan.Options{})
	var prep []*plan.Stage
	for _, s := range p.Stages {
		switch s.Kind {
		case plan.KindPrepare:
			prep = append(prep, s)
		case plan.KindReference:
			t.Errorf("reference stage %s in a plan without dpo", s.Name)
		}
	}
	if len(prep) != 1 {
		t.Fatalf("%d prepare stages, want 1 shared by orpo and simpo", len(prep))
	}
	if c := prep[0].Config.(plan.PrepareConfig).Consumer; c != "dpo" {
		t.Errorf("prepare consumer %q, want dpo", c)
	}
	for _, name := range []string{"orpo", "simpo"} {
		var found bool
		for _, in := range stageOf(t, p, name).Inputs {
			if in.Role == "train" {
				found = in.Key == prep[0].Key
			}
		}
		if !found {
			t.Errorf("%s does not read the shared prepare stage %s", name, prep[0].Key.Short())
		}
	}
	for _, m := range []string{"sft", "reward", "ppo", "grpo", "dpo"} {
		if got := plan.Consumer(m, "preference"); got != m {
			t.Errorf("Consumer(%q) = %q", m, got)
		}
	}
	for _, m := range []string{"orpo", "simpo"} {
		if got := plan.Consumer(m, "preference"); got != "dpo" {
			t.Errorf("Consumer(%q) = %q, want dpo", m, got)
		}
	}
}

// TestRLOOReadsGRPOsPromptsAndRewards: an rloo stage reads the prompts
// prepare shapes for GRPO (consumer "grpo", truncated to
// rloo.maxPromptLength) and takes its rewards as GRPO does, each reward
// function a pinned recipe-file input in role rewards.<index>.
func TestRLOOReadsGRPOsPromptsAndRewards(t *testing.T) {
	if got := plan.Consumer("rloo", "prompt"); got != "grpo" {
		t.Errorf("Consumer(rloo) = %q, want grpo", got)
	}
	p := planOf(t, "rloo-reward-funcs", plan.Options{})
	prep := stageOf(t, p, "rloo.prepare").Config.(plan.PrepareConfig)
	if prep.Consumer != "grpo" || prep.MaxPrompt != 256 {
		t.Errorf("prepare consumer %q, maxPromptLength %d; want grpo, 256", prep.Consumer, prep.MaxPrompt)
	}
	st := stageOf(t, p, "rloo")
	cfg := st.Config.(plan.StageConfig)
	if st.Kind != plan.KindRLOO || cfg.RLOO == nil || cfg.RLOO.Generations != 4 || cfg.GRPO != nil {
		t.Errorf("rloo stage: kind %s, rloo %+v, grpo %+v", st.Kind, cfg.RLOO, cfg.GRPO)
	}
	if len(cfg.Rewards) != 2 || cfg.Rewards[0].Name != "format_reward" || cfg.Rewards[0].Weight != 0.5 || cfg.Rewards[1].Name != "correctness_reward" {
		t.Errorf("rewards %+v", cfg.Rewards)
	}
	roles := map[string]bool{}
	for _, in := range st.Inputs {
		if in.Source != nil && in.Source.Kind == "recipe-file" && in.Source.Pinned {
			roles[in.Role] = true
		}
	}
	if !roles["rewards.0"] || !roles["rewards.1"] {
		t.Errorf("reward function inputs %v, want rewards.0 and rewards.1", roles)
	}
}

// TestKTOReadsDPOsPreparedPairs: a kto stage reads the pairs prepare
// shapes for DPO (consumer "dpo"; its entrypoint makes them unpaired), so
// examples/kto's prepare stage is examples/orpo's, key for key; trl
// computes the reference inside the stage, so there is no reference
// stage; the trainer arguments carry the kto block.
func TestKTOReadsDPOsPreparedPairs(t *testing.T) {
	if got := plan.Consumer("kto", "preference"); got != "dpo" {
		t.Errorf("Consumer(kto) = %q, want dpo", got)
	}
	p := planOf(t, "kto", plan.Options{})
	for _, s := range p.Stages {
		if s.Kind == plan.KindReference {
			t.Errorf("reference stage %s in a kto plan: trl scores the reference inside the stage", s.Name)
		}
	}
	prep := stageOf(t, p, "kto.prepare")
	if c := prep.Config.(plan.PrepareConfig).Consumer; c != "dpo" {
		t.Errorf("prepare consumer %q, want dpo", c)
	}
	if o := stageOf(t, planOf(t, "orpo", plan.Options{}), "orpo.prepare"); o.Key != prep.Key {
		t.Errorf("kto.prepare %s, orpo.prepare %s: the same pairs, maxLength and tokenizer must share one prepared entry", prep.Key.Short(), o.Key.Short())
	}
	st := stageOf(t, p, "kto")
	cfg := st.Config.(plan.StageConfig)
	if st.Kind != plan.KindKTO || cfg.KTO == nil || !cfg.KTO.UnpairPreferences {
		t.Fatalf("kto stage: kind %s, kto %+v", st.Kind, cfg.KTO)
	}
	for name, want := range map[string]any{"beta": 0.1, "desirable_weight": 1.0, "undesirable_weight": 1.0, "max_length": 1024.0, "disable_dropout": true} {
		if got := trainerArg(t, st, name); got != want {
			t.Errorf("trainer_args.json %s = %v, want %v", name, got, want)
		}
	}
}

// TestKTOOnUnpairedRowsHasItsOwnConsumer: a kto stage on
// "unpaired-preference" data reads rows prepare shapes for consumer "kto"
// (prompt, completion, label), a cache entry of its own; the same stage on
// pairs keeps DPO's, so its key is unchanged by the new format; the plan
// carries no unpairPreferences for labelled rows.
func TestKTOOnUnpairedRowsHasItsOwnConsumer(t *testing.T) {
	if got := plan.Consumer("kto", "unpaired-preference"); got != "kto" {
		t.Errorf("Consumer(kto, unpaired-preference) = %q, want kto", got)
	}
	p := planOf(t, "kto-unpaired", plan.Options{})
	prep := stageOf(t, p, "kto.prepare")
	pc := prep.Config.(plan.PrepareConfig)
	if pc.Consumer != "kto" || pc.Dataset.Format != "unpaired-preference" || pc.Dataset.Prompt != "" {
		t.Errorf("prepare consumer %q, format %q, prompt %q; want kto, unpaired-preference and no prompt mode", pc.Consumer, pc.Dataset.Format, pc.Dataset.Prompt)
	}
	if pairs := stageOf(t, planOf(t, "kto", plan.Options{}), "kto.prepare"); pairs.Key == prep.Key {
		t.Errorf("kto.prepare on labelled rows and on pairs share key %s", prep.Key.Short())
	}
	st := stageOf(t, p, "kto")
	cfg := st.Config.(plan.StageConfig)
	if st.Kind != plan.KindKTO || cfg.KTO == nil || cfg.KTO.UnpairPreferences {
		t.Fatalf("kto stage: kind %s, kto %+v", st.Kind, cfg.KTO)
	}
	if got := trainerArg(t, st, "undesirable_weight"); got != 2.0 {
		t.Errorf("trainer_args.json undesirable_weight = %v, want 2", got)
	}
}
