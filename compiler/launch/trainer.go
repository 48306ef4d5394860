package launch

import (
	"encoding/json"
)

// TrainerInput is what the trainer arguments are rendered from: the
// stage's resolved optimisation settings and layout.
type TrainerInput struct {
	MicroBatch, GradAccum int
	LearningRate          float64
	Schedule              string
	WarmupRatio           float64
	WeightDecay           float64
	Optimizer             string
	MaxGradNorm           float64
	Epochs                float64
	Steps                 int
	Seed                  int64
	DType                 string
	GradientCheckpointing bool
	LogEvery, SaveEvery   int
	EvalEvery             int
	HasEval               bool
	DeepSpeed             bool
	NCCLTimeoutMinutes    int
	// CPU trains with torch's CPU device (ftc run --cpu).
	CPU bool
	// TransformersMajor selects field names that changed between
	// transformers 4 and 5 (warmup_ratio became a fractional warmup_steps).
	TransformersMajor int
}

// optimizers maps ftc's optimizer names to transformers' optim values.
var optimizers = map[string]string{
	"adamw":            "adamw_torch_fused",
	"adamw-8bit":       "adamw_bnb_8bit",
	"paged-adamw-8bit": "paged_adamw_8bit",
	"sgd":              "sgd",
}

// TrainerArgs renders transformers.TrainingArguments keyword arguments
// (trainer_args.json). Every value the launcher configs could also state —
// batch sizes, accumulation, precision, clipping — is stated here only:
// ds_config.json says "auto" for them, and the accelerate config takes
// none of them.
func TrainerArgs(in TrainerInput) ([]byte, error) {
	args := map[string]any{
		"output_dir":                  "checkpoints",
		"per_device_train_batch_size": in.MicroBatch,
		"gradient_accumulation_steps": in.GradAccum,
		"learning_rate":               in.LearningRate,
		"weight_decay":                in.WeightDecay,
		"optim":                       optimizers[in.Optimizer],
		"max_grad_norm":               in.MaxGradNorm,
		"seed":                        in.Seed,
		"data_seed":                   in.Seed,
		"bf16":                        in.DType == "bf16",
		"fp16":                        in.DType == "fp16",
		"gradient_checkpointing":      in.GradientCheckpointing,
		"logging_steps":               in.LogEvery,
		"save_strategy":               "steps",
		"save_steps":                  in.SaveEvery,
		// ftc keeps KeepCheckpoints itself (stage.json's cadence), pruning
		// only after a newer checkpoint's manifest is written: the
		// Trainer's own rotation could remove the newest complete one.
		"save_total_limit":       nil,
		"report_to":              []string{"none"},
		"ddp_timeout":            in.NCCLTimeoutMinutes * 60,
		"dataloader_num_workers": 2,
	}
	if in.GradientCheckpointing {
		// Non-reentrant checkpointing works with LoRA's frozen inputs and
		// with DDP's unused-parameter detection.
		args["gradient_checkpointing_kwargs"] = map[string]any{"use_reentrant": false}
	}
	sched := in.Schedule
	if sched == "constant" && in.WarmupRatio > 0 {
		sched = "constant_with_warmup"
	}
	args["lr_scheduler_type"] = sched
	if in.TransformersMajor >= 5 {
		args["warmup_steps"] = in.WarmupRatio
	} else {
		args["warmup_ratio"] = in.WarmupRatio
	}
	if in.Steps > 0 {
		args["max_steps"] = in.Steps
	} else {
		args["num_train_epochs"] = in.Epochs
	}
	if in.HasEval && in.EvalEvery > 0 {
		args["eval_strategy"] = "steps"
		args["eval_steps"] = in.EvalEvery
	} else {
		args["eval_strategy"] = "no"
	}
	if in.DeepSpeed {
		args["deepspeed"] = DeepSpeedFile
	}
	if in.CPU {
		args["use_cpu"] = true
	}
	return marshal(args)
}

func marshal(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
