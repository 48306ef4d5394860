package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRealDPOSweepScoresTheReferenceOnce runs a DPO sweep over beta
// through the real entrypoints on the CPU (current-2026's locked
// environment): its two stages read one reference stage, which runs once;
// a recipe with a third beta finds the prepared pairs, the reference
// log-probabilities and both earlier stages cached and trains only the
// new one. Each DPO stage logs trl's reward margin from its first step.
func TestRealDPOSweepScoresTheReferenceOnce(t *testing.T) {
	rs := realRecipe(t, "realdpo")
	e, real, dir := rs.env, rs.extraEnv, rs.dir
	pl := e.ftc(nil, "plan", "--cpu", e.recipe)
	if n := strings.Count(pl.out, "[reference]"); pl.code != 0 || n != 1 {
		t.Fatalf("the sweep plans %d reference stages, want 1 (exit %d):\n%s", n, pl.code, pl.out)
	}
	first := e.run(real, "--cpu")
	expect(t, first, 0, 0, 4) // prepare, reference, dpo-b01, dpo-b03
	t.Logf("first run:\n%s", first.out)
	if n := strings.Count(first.out, "] dpo-b01.reference        done"); n != 1 {
		t.Errorf("the first run's record shows the reference stage done %d times, want 1", n)
	}

	e.recipe = filepath.Join(dir, "recipe", "more.cue")
	more := e.run(real, "--cpu")
	expect(t, more, 0, 4, 1) // only dpo-b1 trains
	t.Logf("with a third beta:\n%s", more.out)
	if n := strings.Count(more.out, "] dpo-b01.reference        cached"); n != 1 {
		t.Errorf("the second run's record shows the reference stage cached %d times, want 1", n)
	}
}
