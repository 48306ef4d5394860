package plan

import (
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

	pk := r.Environment.Packages
	args, err := TrainerArgs(cfg, Libraries{Transformers: pk["transformers"], TRL: pk["trl"]}, bm.Arch.DecoderLayer)
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
	jf, err := b.jobFiles(st.Name, ps)
	if err != nil {
		return nil, err
	}
	for name, content := range jf {
		files[name] = content
	}
	return files, nil
}

// jobFiles renders the target's job files of a stage that runs on the
// training hardware (an sbatch script, Kubernetes manifests).
func (b *builder) jobFiles(name string, ps *Stage) (map[string]string, error) {
	r := b.r
	h := r.Hardware
	files := map[string]string{}
	if h.Target == "slurm" {
		settings := h.SlurmSettings()
		in := launch.SbatchInput{Plan: ps.Launch, Stage: name, Key: string(ps.Key), Slurm: settings}
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
			Recipe: r.Name, Stage: name, Key: string(ps.Key), ResumeKey: string(ps.ResumeKey),
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
