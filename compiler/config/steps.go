package config

import (
	"fmt"
	"math"

	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/memory"
)

// StepPlan is what a training stage will train: its batch and its steps.
// The plan prints it and vet checks the checkpoint cadence against it.
type StepPlan struct {
	BatchPlan
	// Examples is the number of training examples of one epoch (rows
	// after the eval split; packed sequences with packing), 0 when
	// unknown; ExamplesExact says it was counted, not estimated.
	Examples      int64
	ExamplesExact bool
	// Unit is what an example is: "rows", "packed sequences" or
	// "completions" (GRPO's batch counts completions); "" when the
	// method's steps are not estimated.
	Unit string
	// PerEpoch is the optimizer steps of one epoch, 0 when unknown.
	PerEpoch int
	// Total is the optimizer steps of the stage, 0 when unknown;
	// TotalExact says it is exact (training.steps, or counted rows).
	Total      int
	TotalExact bool
	// TokensPerStep is globalBatch × maxLength: the tokens of one step
	// with packing, an upper bound without.
	TokensPerStep int64
	Packed        bool
}

// Steps resolves a stage's batch and its number of steps. Rows come from
// vet's sample of the training file (DataRows); with packing, sequences
// are estimated from the file's size (about 4 bytes per token), so steps
// per epoch are then an estimate. With training.steps, the total is exact.
func (r *Recipe) Steps(st Stage) StepPlan {
	b, _ := r.Batch(st)
	sp := StepPlan{BatchPlan: b, Packed: st.Data.Packing && st.Method == "sft"}
	sp.TokensPerStep = int64(b.GlobalBatch) * int64(st.Data.MaxLength)
	if st.Training.Steps > 0 {
		sp.Total, sp.TotalExact = st.Training.Steps, true
	}
	if b.GlobalBatch <= 0 {
		return sp
	}
	var rowsN, bytes float64
	exact := true
	for _, src := range st.Data.Sources() {
		f := src.Dataset.File
		if f == nil || src.Dataset.Hub != nil {
			return sp
		}
		rows, ok := r.DataRows[f.Path]
		if !ok {
			return sp
		}
		n := float64(MixRows(rows.N, src.Weight))
		exact = exact && rows.Exact
		rowsN += n
		bytes += float64(r.DataBytes[f.Path]) * src.Weight
	}
	var ex float64
	switch {
	case sp.Packed && st.Data.MaxLength > 0:
		ex = math.Ceil(bytes / bytesPerToken / float64(st.Data.MaxLength))
		exact = false
		sp.Unit = "packed sequences"
	case st.Method == "sft" || st.Method == "reward" || st.Method == "dpo" || st.Method == "orpo" || st.Method == "simpo":
		ex = rowsN
		sp.Unit = "rows"
	case st.Method == "kto":
		// unpairPreferences: a desirable and an undesirable row per pair;
		// unpaired-preference data is a row per row (vet keeps a stage's
		// sources of one kind).
		ex = rowsN
		if st.KTO != nil && st.KTO.UnpairPreferences {
			ex = 2 * rowsN
		}
		sp.Unit = "rows"
	default:
		// GRPO's and RLOO's global batch counts completions: each prompt
		// makes generations of them.
		g, ok := st.Rollouts()
		if !ok || g.Generations <= 0 {
			return sp
		}
		ex = rowsN * float64(g.Generations)
		sp.Unit = "completions"
	}
	if st.Data.EvalFraction > 0 {
		ex = math.Floor(ex * (1 - st.Data.EvalFraction))
	}
	if ex < 1 {
		ex = 1
	}
	sp.Examples, sp.ExamplesExact = int64(ex), exact
	sp.PerEpoch = int(math.Ceil(ex / float64(b.GlobalBatch)))
	if st.Training.Steps == 0 {
		e := epochs(st.Training)
		sp.Total = int(math.Ceil(float64(sp.PerEpoch) * e))
		sp.TotalExact = exact && e == math.Trunc(e)
	}
	return sp
}

// MixRows is how many rows a source of n rows gives a mix at weight w:
// every row floor(w) times, and round(frac(w)·n) rows once more. The
// training entrypoints draw the same count (ftc/mixture.py).
func MixRows(n int64, w float64) int64 {
	whole := math.Floor(w)
	return int64(whole)*n + int64(math.Round((w-whole)*float64(n)))
}

// epochs is the stage's number of epochs, 1 when neither epochs nor steps
// is given (as the plan decides).
func epochs(t Training) float64 {
	if t.Epochs == 0 && t.Steps == 0 {
		return 1
	}
	return t.Epochs
}

// bytesPerToken is a rough size of a token in a JSON-lines data file,
// markup included (compiler/plan's time estimate uses the same).
const bytesPerToken = 4.0

// shortRun is the estimated training time under which a run without any
// checkpoint loses little: it is over before a resume would pay.
const shortRun = 10.0 / 60 // hours

// checkCheckpoints warns of a training stage that will never write a
// checkpoint, saveEvery being more than its total steps: such a run
// cannot resume. Runs estimated to be over within minutes are spared.
func (r *Recipe) checkCheckpoints() diag.List {
	var out diag.List
	for _, name := range r.SortedStageNames() {
		st := r.Stages[name]
		t := st.Training
		if t.SaveEvery <= 0 || st.Method == "ppo" {
			continue
		}
		sp := r.Steps(st)
		if sp.Total == 0 || sp.Total >= t.SaveEvery {
			continue
		}
		if bm := st.Base(); bm != nil && r.Hardware.GPU.BF16TFLOPS > 0 {
			tp := memory.EstimateThroughput(bm.Arch.FLOPsParams(), st.Adapter.Type == "none", r.Checkpointing(st),
				sp.Packed || st.Method != "sft", max(1, r.TrainingProcesses(st)), r.Hardware.GPU.BF16TFLOPS)
			tokens := float64(sp.Total) * float64(sp.TokensPerStep)
			if tp.TokensPerSecond > 0 && tokens/tp.TokensPerSecond/3600 < shortRun {
				continue
			}
		}
		about := "≈"
		if sp.TotalExact {
			about = ""
		}
		path := "stages." + name + ".training.saveEvery"
		dflt := ""
		if _, ok := r.Pos[path]; !ok {
			dflt = " (the default)"
		}
		d := out.Warnf(r.Pos.At(path), path, "no checkpoint will be written: saveEvery %d%s is more than the stage's %s%d steps (%s), so an interrupted run cannot resume",
			t.SaveEvery, dflt, about, sp.Total, sp.describe(t))
		d.WithHint("set training: saveEvery: %d (or fewer)", max(1, sp.Total/2))
	}
	return out
}

// describe says where a total number of steps comes from.
func (sp StepPlan) describe(t Training) string {
	if t.Steps > 0 {
		return "training.steps"
	}
	about := "≈"
	if sp.ExamplesExact {
		about = ""
	}
	return fmt.Sprintf("%s%d %s / global batch %d = %d per epoch × %g epochs", about, sp.Examples, sp.Unit, sp.GlobalBatch, sp.PerEpoch, epochs(t))
}

// Describe is describe for the plan's printout.
func (sp StepPlan) Describe(t Training) string { return sp.describe(t) }
