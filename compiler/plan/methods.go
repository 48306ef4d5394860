package plan

import (
	"fmt"

	"github.com/ftc-dev/ftc/compiler/config"
)

// buildSFT plans supervised fine-tuning.
func buildSFT(b *builder, st config.Stage) (*Stage, error) {
	mc, in := b.model("model", st.Model)
	cfg := StageConfig{
		Backend:        st.Backend,
		CompletionOnly: st.CompletionOnly,
		Speed:          st.Speed,
		Models:         map[string]ModelConfig{"model": mc},
	}
	return b.training(st, cfg, in)
}

// buildReward plans reward model training.
func buildReward(b *builder, st config.Stage) (*Stage, error) {
	mc, in := b.model("model", st.Model)
	cfg := StageConfig{
		Models:        map[string]ModelConfig{"model": mc},
		CenterRewards: st.CenterRewards,
	}
	return b.training(st, cfg, in)
}

// buildPPO plans PPO. Reference and value default as trl's example does:
// the policy's starting weights and the reward model's.
func buildPPO(b *builder, st config.Stage) (*Stage, error) {
	ref, value := st.Reference, st.Value
	if ref == nil {
		ref = st.Policy
	}
	if value == nil {
		value = st.Reward
	}
	cfg := StageConfig{Models: map[string]ModelConfig{}, PPO: st.PPO}
	var inputs []Input
	for _, m := range []struct {
		role  string
		model *config.Model
	}{{"policy", st.Policy}, {"reference", ref}, {"reward", st.Reward}, {"value", value}} {
		mc, in := b.model(m.role, m.model)
		cfg.Models[m.role] = mc
		inputs = append(inputs, in...)
	}
	return b.training(st, cfg, inputs)
}

// buildGRPO plans GRPO with reward models and functions.
func buildGRPO(b *builder, st config.Stage) (*Stage, error) {
	mc, in := b.model("model", st.Model)
	cfg := StageConfig{Models: map[string]ModelConfig{"model": mc}, GRPO: st.GRPO}
	return b.training(st, cfg, b.rewards(st, &cfg, in))
}

// buildRLOO plans RLOO: GRPO's policy and rewards, RLOO's knobs.
func buildRLOO(b *builder, st config.Stage) (*Stage, error) {
	mc, in := b.model("model", st.Model)
	cfg := StageConfig{Models: map[string]ModelConfig{"model": mc}, RLOO: st.RLOO}
	return b.training(st, cfg, b.rewards(st, &cfg, in))
}

// rewards adds the reward models and functions of a GRPO or RLOO stage
// to its config, each in input role rewards.<index>, and returns inputs
// with theirs appended.
func (b *builder) rewards(st config.Stage, cfg *StageConfig, inputs []Input) []Input {
	for i, rw := range st.Rewards {
		role := fmt.Sprintf("rewards.%d", i)
		switch {
		case rw.Model != nil:
			rmc, rin := b.model(role, rw.Model)
			cfg.Rewards = append(cfg.Rewards, RewardConfig{Kind: "model", Model: &rmc, Weight: rw.Weight})
			inputs = append(inputs, rin...)
		case rw.Function != nil:
			f := b.r.Files[rw.Function.File]
			cfg.Rewards = append(cfg.Rewards, RewardConfig{Kind: "function", File: rw.Function.File,
				SHA256: f.SHA256, Name: rw.Function.Name, Weight: rw.Weight})
			inputs = append(inputs, Input{Role: role, Source: &Source{Kind: "recipe-file", Ref: rw.Function.File, Pin: "sha256:" + f.SHA256, Pinned: true}})
		}
	}
	return inputs
}

// buildDPO plans DPO. Its reference stage comes with its data inputs
// (builder.training, builder.reference).
func buildDPO(b *builder, st config.Stage) (*Stage, error) {
	mc, in := b.model("model", st.Model)
	cfg := StageConfig{Models: map[string]ModelConfig{"model": mc}, DPO: st.DPO}
	return b.training(st, cfg, in)
}

// buildORPO plans ORPO: one model, no reference.
func buildORPO(b *builder, st config.Stage) (*Stage, error) {
	mc, in := b.model("model", st.Model)
	cfg := StageConfig{Models: map[string]ModelConfig{"model": mc}, ORPO: st.ORPO}
	return b.training(st, cfg, in)
}

// buildSimPO plans SimPO: one model, no reference.
func buildSimPO(b *builder, st config.Stage) (*Stage, error) {
	mc, in := b.model("model", st.Model)
	cfg := StageConfig{Models: map[string]ModelConfig{"model": mc}, SimPO: st.SimPO}
	return b.training(st, cfg, in)
}

// buildKTO plans KTO: one model; trl scores the reference (the starting
// weights) inside the stage, so there is no reference stage.
func buildKTO(b *builder, st config.Stage) (*Stage, error) {
	mc, in := b.model("model", st.Model)
	cfg := StageConfig{Models: map[string]ModelConfig{"model": mc}, KTO: st.KTO}
	return b.training(st, cfg, in)
}
