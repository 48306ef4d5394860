package config

import (
	"fmt"
	"maps"
	"strings"
)

// Rescaled says what running a recipe on another number of GPUs (ftc run
// --gpus N, ftc plan --gpus N) changed: the GPUs of its one node and, per
// training stage, the processes and the gradient accumulation that keep
// the stage's global batch. Rescale decides it; the plan carries it and
// the CLI prints it before a run.
type Rescaled struct {
	// FromGPUs and ToGPUs are the node's GPUs as written and as run.
	FromGPUs int             `json:"fromGPUs"`
	ToGPUs   int             `json:"toGPUs"`
	Strategy Strategy        `json:"strategy"`
	Stages   []RescaledStage `json:"stages"`
}

// RescaledStage is one training stage's batch before and after: the
// global batch and the micro batch are kept, accumulation takes up the
// change in processes.
type RescaledStage struct {
	Stage         string `json:"stage"`
	FromProcesses int    `json:"fromProcesses"`
	ToProcesses   int    `json:"toProcesses"`
	FromGradAccum int    `json:"fromGradAccum"`
	ToGradAccum   int    `json:"toGradAccum"`
	MicroBatch    int    `json:"microBatch"`
	GlobalBatch   int    `json:"globalBatch"`
}

// Lines says what changed, one line for the topology and one per stage,
// for ftc plan and ftc run to print.
func (rs *Rescaled) Lines() []string {
	l := []string{fmt.Sprintf("--gpus %d: %d → %d GPU(s) (strategy %s); each stage keeps its global batch, gradient accumulation takes up the change", rs.ToGPUs, rs.FromGPUs, rs.ToGPUs, rs.Strategy)}
	for _, s := range rs.Stages {
		l = append(l, fmt.Sprintf("  %s: global batch %d = micro %d × accum %d × %d process(es), was accum %d × %d process(es)",
			s.Stage, s.GlobalBatch, s.MicroBatch, s.ToGradAccum, s.ToProcesses, s.FromGradAccum, s.FromProcesses))
	}
	return l
}

// RescaleError is a --gpus that Rescale refuses, with the reason.
type RescaleError struct {
	GPUs   int
	Reason string
}

func (e *RescaleError) Error() string { return fmt.Sprintf("--gpus %d: %s", e.GPUs, e.Reason) }

// Rescale returns r as run on gpus GPUs of its one node: hardware.gpusPerNode
// becomes gpus and every training stage keeps its global batch (micro
// batch × accumulation × data-parallel processes), its accumulation
// adjusted. It is the one place that decides --gpus; r is not modified.
//
// It applies to data-parallel strategies on one node: DDP, FSDP and ZeRO
// (their sharded checkpoints are refused at resume time by the runtime,
// which sees them). It refuses, with the reason, a multi-node recipe, the
// single-process strategy, sharding on one GPU without offload, and a
// count that cannot keep some stage's global batch: then the error names
// the nearest counts that can. gpus equal to the recipe's returns r.
func (r *Recipe) Rescale(gpus int) (*Recipe, error) {
	h := r.Hardware
	if gpus == h.GPUs() {
		return r, nil
	}
	fail := func(format string, args ...any) (*Recipe, error) {
		return nil, &RescaleError{GPUs: gpus, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case gpus < 1:
		return fail("want at least 1 GPU")
	case h.Nodes > 1:
		return fail("the recipe's hardware is %d nodes × %d GPUs per node = %d GPUs; --gpus rescales a one-node recipe only: change hardware.nodes and hardware.gpusPerNode (or drop --gpus)",
			h.Nodes, h.GPUsPerNode, h.GPUs())
	case h.Strategy == "single":
		return fail("strategy single runs one process; --gpus rescales a data-parallel strategy (ddp, fsdp, zero2, zero3): add --set hardware.strategy=ddp")
	case gpus == 1 && h.Strategy.Sharded() && !h.Offload.Optimizer && !h.Offload.Params:
		return fail("strategy %s shards over the GPUs, and one GPU has nothing to shard: to train on one GPU, edit the recipe instead: --set hardware.gpusPerNode=1 --set hardware.strategy=single", h.Strategy)
	}

	// A count fits when every training stage keeps its global batch with a
	// whole accumulation of at least 1.
	names := r.SortedStageNames()
	fits := func(n int) (string, bool) {
		for _, name := range names {
			st := r.Stages[name]
			b, _ := r.Batch(st)
			world := n - serverGPUs(st)
			if world < 1 {
				return fmt.Sprintf("stage %s gives %d GPU(s) to its vLLM server (grpo.generation.gpus), which leaves none to train", name, serverGPUs(st)), false
			}
			if per := st.Training.MicroBatch * world; per <= 0 || b.GlobalBatch%per != 0 {
				return fmt.Sprintf("stage %s's global batch %d is not a multiple of microBatch %d × %d process(es) = %d, so no whole gradient accumulation keeps it",
					name, b.GlobalBatch, st.Training.MicroBatch, world, per), false
			}
		}
		return "", true
	}
	if why, ok := fits(gpus); !ok {
		return fail("%s; %s", why, nearestCounts(gpus, h, r, fits))
	}

	rr := *r
	rr.Hardware.GPUsPerNode = gpus
	rr.Stages = maps.Clone(r.Stages)
	for _, name := range names {
		st := rr.Stages[name]
		from, _ := r.Batch(st)
		world := gpus - serverGPUs(st)
		accum := from.GlobalBatch / (st.Training.MicroBatch * world)
		// A stage that gives globalBatch alone already derives its
		// accumulation from the processes; one that gives gradAccum (or
		// neither, accumulation 1) gets the accumulation that keeps its
		// global batch.
		if st.Training.GradAccum > 0 || st.Training.GlobalBatch == 0 {
			st.Training.GradAccum = accum
		}
		rr.Stages[name] = st
	}
	rr.Rescaled = RescaledFrom(r, &rr)
	return &rr, nil
}

// RescaledFrom describes what Rescale changed from r to rr (nil when
// nothing).
func RescaledFrom(r, rr *Recipe) *Rescaled {
	if r == rr || r.Hardware.GPUs() == rr.Hardware.GPUs() {
		return nil
	}
	rs := &Rescaled{FromGPUs: r.Hardware.GPUs(), ToGPUs: rr.Hardware.GPUs(), Strategy: r.Hardware.Strategy}
	for _, name := range r.SortedStageNames() {
		from, _ := r.Batch(r.Stages[name])
		to, _ := rr.Batch(rr.Stages[name])
		rs.Stages = append(rs.Stages, RescaledStage{Stage: name, FromProcesses: from.World, ToProcesses: to.World,
			FromGradAccum: from.GradAccum, ToGradAccum: to.GradAccum, MicroBatch: to.MicroBatch, GlobalBatch: to.GlobalBatch})
	}
	return rs
}

func serverGPUs(st Stage) int {
	if st.GRPO != nil && st.GRPO.Generation.Engine == "vllm" {
		return st.GRPO.Generation.GPUs
	}
	return 0
}

// nearestCounts names the GPU counts nearest to gpus, below and above,
// that keep every stage's global batch. The largest count that can fit is
// bounded by the largest global batch over micro batch (accumulation 1),
// plus the vLLM server's GPUs.
func nearestCounts(gpus int, h Hardware, r *Recipe, fits func(int) (string, bool)) string {
	limit := 1
	for _, st := range r.Stages {
		b, _ := r.Batch(st)
		if st.Training.MicroBatch > 0 {
			limit = max(limit, b.GlobalBatch/st.Training.MicroBatch+serverGPUs(st))
		}
	}
	ok := func(n int) bool {
		if n == 1 && h.Strategy.Sharded() && !h.Offload.Optimizer && !h.Offload.Params {
			return false
		}
		_, f := fits(n)
		return f
	}
	var near []string
	for n := min(gpus-1, limit); n >= 1; n-- {
		if ok(n) {
			near = append(near, fmt.Sprintf("--gpus %d", n))
			break
		}
	}
	for n := gpus + 1; n <= limit; n++ {
		if ok(n) {
			near = append(near, fmt.Sprintf("--gpus %d", n))
			break
		}
	}
	if len(near) == 0 {
		return "only the recipe's own count keeps every global batch"
	}
	return "nearest counts that keep every global batch: " + strings.Join(near, " or ")
}
