package plan

import (
	"strconv"
	"strings"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/launch"
)

// TrainerArgsFile is the name of the trainer arguments in a stage
// directory.
const TrainerArgsFile = "trainer_args.json"

// files renders the launcher files of a training stage.
func (b *builder) files(st config.Stage, cfg StageConfig, ps *Stage) (map[string]string, error) {
	r := b.r
	h := r.Hardware
	bm := st.Base()
	files := map[string]string{}
	deepspeed := h.Strategy == "zero2" || h.Strategy == "zero3"

	args, err := launch.TrainerArgs(launch.TrainerInput{
		MicroBatch: cfg.Training.MicroBatch, GradAccum: cfg.Training.GradAccum,
		LearningRate: cfg.Training.LearningRate, Schedule: cfg.Training.Schedule,
		WarmupRatio: cfg.Training.WarmupRatio, WeightDecay: cfg.Training.WeightDecay,
		Optimizer: cfg.Training.Optimizer, MaxGradNorm: cfg.Training.MaxGradNorm,
		Epochs: cfg.Training.Epochs, Steps: cfg.Training.Steps, Seed: cfg.Training.Seed,
		DType: bm.DType, GradientCheckpointing: cfg.GradientCheckpointing == "on",
		LogEvery: cfg.Cadence.LogEvery, SaveEvery: cfg.Cadence.SaveEvery, EvalEvery: cfg.Cadence.EvalEvery,
		HasEval: cfg.Data.HasEval, DeepSpeed: deepspeed,
		NCCLTimeoutMinutes: h.NCCL.TimeoutMinutes, CPU: cfg.Distributed.Device == "cpu",
		TransformersMajor: major(r.Environment.Packages["transformers"]),
	})
	if err != nil {
		return nil, err
	}
	files[TrainerArgsFile] = string(args)

	switch h.Strategy {
	case "zero2", "zero3":
		ds, err := launch.DeepSpeedConfig(h.Strategy, h.Offload)
		if err != nil {
			return nil, err
		}
		files[launch.DeepSpeedFile] = string(ds)
	case "fsdp":
		acc, err := launch.AccelerateConfig(launch.AccelerateInput{
			Nodes: ps.Launch.Nodes, Processes: ps.Launch.Processes, DType: bm.DType,
			OffloadParams: h.Offload.Params || h.Offload.Optimizer,
			DecoderLayer:  bm.Arch.DecoderLayer, Port: h.Rendezvous.Port,
		})
		if err != nil {
			return nil, err
		}
		files[launch.AccelerateFile] = string(acc)
	}

	if h.Target == "slurm" {
		settings := h.SlurmSettings()
		in := launch.SbatchInput{Plan: ps.Launch, Stage: st.Name, Key: string(ps.Key), Slurm: settings}
		if !ps.CPUOnly() {
			// Training stages save a checkpoint on the warning signal.
			in.GraceSeconds = h.Preemption.GraceSeconds
		}
		if settings.Container != "none" {
			in.Image = b.opts.Image
		}
		if settings.Container == "none" || in.Image != ImageNotBuilt {
			sb, err := launch.Sbatch(in)
			if err != nil {
				return nil, err
			}
			files[launch.SbatchFile] = string(sb)
		}
	}
	if h.Target == "kubernetes" {
		k8s := h.KubernetesSettings()
		m, err := launch.Kubernetes(launch.KubernetesInput{
			Recipe: r.Name, Stage: st.Name, Key: string(ps.Key), ResumeKey: string(ps.ResumeKey),
			Image: b.opts.Image, Plan: ps.Launch, Settings: k8s, Secrets: r.Secrets, Port: h.Rendezvous.Port,
			GraceSeconds: h.Preemption.GraceSeconds,
		})
		if err != nil {
			return nil, err
		}
		files[launch.KubernetesFile] = string(m)
	}
	return files, nil
}

// major returns a version's major number, or 0.
func major(v string) int {
	n, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	return n
}
