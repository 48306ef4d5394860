package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRealEntrypointsExportMerged runs LoRA SFT and its merged export
// through the real entrypoints on the CPU (current-2026's locked
// environment), then `ftc export`: the folder loads with from_pretrained
// alone, its generation config stops at <|im_end|>, its model card names
// the keys; a second run is all hits; a non-empty DIR is refused unless
// --force; the cache is left as it was.
func TestRealEntrypointsExportMerged(t *testing.T) {
	rs := realRecipe(t, "realsft-export")
	e, real, dir := rs.env, rs.extraEnv, rs.dir
	expect(t, e.run(real, "--cpu"), 0, 0, 3) // prepare, sft, sft.export
	expect(t, e.run(real, "--cpu"), 0, 3, 0) // asking again costs nothing

	out := filepath.Join(dir, "exported")
	r := e.ftc(real, "export", "--cpu", e.recipe, "sft", out)
	if r.code != 0 {
		t.Fatalf("ftc export: exit %d\n%s", r.code, r.out)
	}
	for _, f := range []string{"config.json", "generation_config.json", "tokenizer_config.json", "README.md", "ftc-output.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("exported folder: %v", err)
		}
	}
	card, _ := os.ReadFile(filepath.Join(out, "README.md"))
	t.Logf("model card:\n%s", card)
	for _, want := range []string{"recipe sha256", "Qwen/Qwen2.5-0.5B-Instruct@" + qwen05Revision, "| sft.export | export | `sha256:",
		"`data/chat.jsonl` (file) `sha256:7316668a", "ftc run --cpu ", "train_loss"} {
		if !strings.Contains(string(card), want) {
			t.Errorf("model card lacks %q:\n%s", want, card)
		}
	}
	check := exec.Command(rs.python[0], append(rs.python[1:], "-c", `
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
d = sys.argv[1]
m = AutoModelForCausalLM.from_pretrained(d)
tok = AutoTokenizer.from_pretrained(d)
g = GenerationConfig.from_pretrained(d)
eot = tok.convert_tokens_to_ids("<|im_end|>")
assert eot in g.eos_token_id, g.eos_token_id
ids = tok(tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False))["input_ids"]
with torch.no_grad():
    assert torch.isfinite(m(input_ids=torch.tensor([ids])).logits).all()
print("loaded", sum(p.numel() for p in m.parameters()))
`, out)...)
	if b, err := check.CombinedOutput(); err != nil {
		t.Fatalf("loading the exported folder: %v\n%s", err, b)
	}

	// ftc status says where the outputs are.
	if st := e.ftc(nil, "status"); !strings.Contains(st.out, "copy it out: ftc export --cpu RECIPE sft DIR") || !strings.Contains(st.out, "output: cache tree sha256:") {
		t.Errorf("ftc status does not say where the outputs are:\n%s", st.out)
	}

	// A non-empty DIR is refused, --force replaces what the export writes.
	if r := e.ftc(real, "export", "--cpu", e.recipe, out); r.code == 0 || !strings.Contains(r.out, "not empty") {
		t.Errorf("export into a non-empty directory: exit %d\n%s", r.code, r.out)
	}
	if r := e.ftc(real, "export", "--cpu", e.recipe, "--force", out); r.code != 0 {
		t.Errorf("export --force: exit %d\n%s", r.code, r.out)
	}
	if r := e.ftc(real, "cache", "verify"); r.code != 0 {
		t.Errorf("the cache no longer verifies after exports: %s", r.out)
	}
}
