package config

// Strategy is how training is spread over the GPUs (hardware.strategy).
type Strategy string

// The strategies the schema allows.
const (
	StrategySingle Strategy = "single" // one process
	StrategyDDP    Strategy = "ddp"    // data parallel, every process a full replica
	StrategyFSDP   Strategy = "fsdp"   // PyTorch FSDP through accelerate
	StrategyZeRO2  Strategy = "zero2"  // DeepSpeed ZeRO stage 2
	StrategyZeRO3  Strategy = "zero3"  // DeepSpeed ZeRO stage 3
)

// Valid reports whether s is one of the strategies.
func (s Strategy) Valid() bool {
	switch s {
	case StrategySingle, StrategyDDP, StrategyFSDP, StrategyZeRO2, StrategyZeRO3:
		return true
	}
	return false
}

// Sharded reports whether the strategy splits model state over the
// processes (their checkpoints are sharded too).
func (s Strategy) Sharded() bool {
	return s == StrategyFSDP || s == StrategyZeRO2 || s == StrategyZeRO3
}

// DeepSpeed reports whether the strategy runs under DeepSpeed.
func (s Strategy) DeepSpeed() bool { return s == StrategyZeRO2 || s == StrategyZeRO3 }

// Name is the strategy as people write it (ZeRO-2, FSDP, DDP).
func (s Strategy) Name() string {
	switch s {
	case StrategyZeRO2:
		return "ZeRO-2"
	case StrategyZeRO3:
		return "ZeRO-3"
	case StrategyFSDP:
		return "FSDP"
	case StrategyDDP:
		return "DDP"
	}
	return string(s)
}
