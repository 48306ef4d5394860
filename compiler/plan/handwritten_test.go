package plan

import (
	"encoding/json"
	"os"
	"testing"
)

// A hand-written stage.json (ftc debug trainer-args) may leave out what a
// plan states: KTO's loss defaults to the schema's "kto", as trl would
// otherwise get an empty loss_type and fail at the first step.
func TestHandWrittenKTOStageGetsTheDefaultLoss(t *testing.T) {
	b, err := os.ReadFile("../../examples/testdata/stages/kto/kto.json")
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	kto := st["config"].(map[string]any)["kto"].(map[string]any)
	for loss, want := range map[string]string{"": "kto", "apo_zero_unpaired": "apo_zero_unpaired"} {
		if loss == "" {
			delete(kto, "loss")
		} else {
			kto["loss"] = loss
		}
		in, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		files, err := HandWrittenFiles(in, current, "")
		if err != nil {
			t.Fatal(err)
		}
		var args map[string]any
		if err := json.Unmarshal(files[TrainerArgsFile], &args); err != nil {
			t.Fatal(err)
		}
		if args["loss_type"] != want {
			t.Errorf("kto.loss %q: loss_type %v, want %q", loss, args["loss_type"], want)
		}
	}
}
