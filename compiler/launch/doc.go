// Package launch derives how a stage is started: the launcher (python,
// torchrun, accelerate), its argv, the process layout, environment
// settings and, for GRPO with vLLM, the generation server started first.
//
// Renderers here are pure functions of the stage and the hardware block,
// so every launcher file agrees with every other by construction.
package launch
