package config

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/memory"
)

// The dense mask of per-document attention is counted exactly where the
// entrypoints build one (compat.packed_attention_mode).
func TestPackedMaskFollowsTheAttentionPath(t *testing.T) {
	stage := func(attention, speedAttention string, paddingFree bool) Stage {
		return Stage{Method: "sft", Model: &Model{Attention: attention, DType: "bf16"},
			Speed: &Speed{PaddingFree: paddingFree, Attention: speedAttention}}
	}
	recipe := func(transformers string) *Recipe {
		return &Recipe{Environment: Environment{Packages: map[string]string{"transformers": transformers}}}
	}
	for _, c := range []struct {
		name         string
		transformers string
		st           Stage
		tokens       int
		bytes        float64
	}{
		{"4.48 sdpa: ftc's additive bf16 mask", "4.48.2", stage("sdpa", "auto", true), 4096, 2},
		{"4.48 flash: boundaries from position ids", "4.48.2", stage("flash_attention_2", "auto", true), 0, 0},
		{"5.x auto: ftc's registered attention", "5.17.0", stage("sdpa", "auto", true), 0, 0},
		{"5.x mask: transformers' boolean mask", "5.17.0", stage("sdpa", "mask", true), 4096, 1},
		{"4.50 loop: registered attention", "4.50.0", stage("sdpa", "loop", true), 0, 0},
		{"padded rows: no mask", "4.48.2", stage("sdpa", "auto", false), 0, 0},
	} {
		n, b := recipe(c.transformers).packedMask(c.st, 4096)
		if n != c.tokens || b != c.bytes {
			t.Errorf("%s: %d tokens × %v bytes, want %d × %v", c.name, n, b, c.tokens, c.bytes)
		}
	}
}

// Padded rows get the 4-D mask transformers builds for them: in the model
// dtype before 5.0, boolean from 5.0; none for one row or flash attention.
func TestPaddedMask(t *testing.T) {
	for _, c := range []struct {
		name, transformers, attention string
		rows                          int
		elements                      int64
		bytes                         float64
	}{
		{"4.48 sdpa", "4.48.2", "sdpa", 4, 4 * 100 * 100, 2},
		{"5.x sdpa", "5.17.0", "sdpa", 4, 4 * 100 * 100, 1},
		{"one row", "4.48.2", "sdpa", 1, 0, 0},
		{"flash", "4.48.2", "flash_attention_2", 4, 0, 0},
	} {
		r := &Recipe{Environment: Environment{Packages: map[string]string{"transformers": c.transformers}}}
		var tr memory.Training
		r.paddedMask(&tr, &Model{Attention: c.attention, DType: "bf16"}, c.rows, 100)
		if tr.MaskElements != c.elements || tr.MaskElementBytes != c.bytes {
			t.Errorf("%s: %d × %v bytes, want %d × %v", c.name, tr.MaskElements, tr.MaskElementBytes, c.elements, c.bytes)
		}
	}
}

// The inference stages' batches are those the entrypoints use: the
// reference's token budget in pairs of two rows, evaluate.py's batch.
func TestInferenceInputBatches(t *testing.T) {
	r := &Recipe{Hardware: Hardware{GPU: GPU{MemoryGiB: 80}}}
	m := &Model{Attention: "flash_attention_2", DType: "bf16"}
	ref := &Model{Attention: "flash_attention_2", DType: "bf16", Repo: "ref"}
	for _, c := range []struct {
		name                     string
		st                       Stage
		model                    *Model
		rows, tokens, logits, kv int
	}{
		{"dpo, 1024: 4 pairs", Stage{Method: "dpo", Model: m, Data: StageData{MaxLength: 1024}}, m, 8, 8192, 8192, 0},
		{"dpo, 8192: one pair past the budget", Stage{Method: "dpo", Model: m, Reference: ref, Data: StageData{MaxLength: 8192}}, ref, 2, 16384, 16384, 0},
		{"eval loss", Stage{Method: "eval", Model: m, Data: StageData{MaxLength: 512, Eval: &Dataset{Format: "messages"}}}, m, EvalBatch, EvalBatch * 512, EvalBatch * 512, 0},
		{"eval generate", Stage{Method: "eval", Model: m, Data: StageData{MaxLength: 512, Eval: &Dataset{Format: "prompt"}}, Eval: &EvalSettings{MaxNewTokens: 256}}, m, EvalBatch, EvalBatch * 512, EvalBatch, 768},
	} {
		got, in, ok := r.InferenceInput(c.st)
		if !ok || got != c.model || in.Rows != c.rows || in.Tokens != c.tokens || in.LogitsTokens != c.logits {
			t.Errorf("%s: %v %v rows %d tokens %d logits %d, want rows %d tokens %d logits %d", c.name, ok, got == c.model, in.Rows, in.Tokens, in.LogitsTokens, c.rows, c.tokens, c.logits)
		}
		if kv := in.Generate; (kv != nil) != (c.kv > 0) || kv != nil && kv.Length != c.kv {
			t.Errorf("%s: generate %+v, want length %d", c.name, kv, c.kv)
		}
	}
	if _, _, ok := r.InferenceInput(Stage{Method: "sft", Model: m}); ok {
		t.Errorf("an SFT stage runs no inference stage")
	}
}

// EvalBatch is evaluate.py's batch: the estimate is of what it runs.
func TestEvalBatchIsTheEntrypoints(t *testing.T) {
	src, err := os.ReadFile("../../stdlib/python/ftc/evaluate.py")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"LOSS_BATCH", "GENERATE_BATCH"} {
		if want := fmt.Sprintf("\n%s = %d\n", name, EvalBatch); !strings.Contains(string(src), want) {
			t.Errorf("evaluate.py has no %q: EvalBatch and the entrypoint disagree", strings.TrimSpace(want))
		}
	}
}

// KTO's reference is the starting weights, scored inside the stage over
// the rows and their KL rows: shared with the policy under LoRA (the
// adapter disabled), its own frozen copy under full fine-tuning.
func TestKTOEstimatesItsReference(t *testing.T) {
	r := &Recipe{Environment: Environment{Packages: map[string]string{"transformers": "4.48.2"}}}
	for _, c := range []struct {
		adapter string
		shared  bool
	}{{"lora", true}, {"none", false}} {
		st := Stage{Method: "kto", Model: &Model{Attention: "sdpa", DType: "bf16"}, KTO: &KTO{Beta: 0.1, UnpairPreferences: true},
			Adapter: Adapter{Type: c.adapter}, Training: Training{MicroBatch: 4}, Data: StageData{MaxLength: 512}}
		in := r.MemoryInput(st, false)
		if in.Train.TokensPerMicroBatch != 4*512 || in.Train.Loss != memory.LossLogps {
			t.Errorf("%s: train %d tokens, loss %v", c.adapter, in.Train.TokensPerMicroBatch, in.Train.Loss)
		}
		if len(in.Frozen) != 1 || in.Frozen[0].Role != "reference" || in.Frozen[0].Shared != c.shared || in.Frozen[0].Tokens != 2*4*512 {
			t.Errorf("%s: frozen %+v, want one reference over 2 × 4 × 512 tokens, shared %v", c.adapter, in.Frozen, c.shared)
		}
	}
}
