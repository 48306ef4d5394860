package runner

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/load"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/resolve"
)

// EvalBound is the longest a command waits for the compiler to evaluate
// one recipe. Vetting takes well under a second; the compiler finds the
// recipes CUE cannot evaluate (reference cycles) itself. The bound is a
// last resort, so that a recipe nobody foresaw cannot hang a command.
var EvalBound = 60 * time.Second

// Bounded runs one compiler call within EvalBound. Past it the call is
// left running (the process ends soon after) and an error says what
// happened.
func Bounded[T any](f func() (T, diag.List, error)) (T, diag.List, error) {
	type result struct {
		v     T
		diags diag.List
		err   error
	}
	done := make(chan result, 1)
	go func() {
		v, diags, err := f()
		done <- result{v, diags, err}
	}()
	t := time.NewTimer(EvalBound)
	defer t.Stop()
	select {
	case r := <-done:
		return r.v, r.diags, r.err
	case <-t.C:
		var zero T
		return zero, nil, fmt.Errorf("evaluating the recipe did not finish within %s; this is a bug in ftc, please report it with the recipe", EvalBound)
	}
}

// Vet is compiler.VetWith within EvalBound, with the architectures of
// the ftc.lock next to file (LockArchs).
func Vet(file string, overrides []load.Override, opts compiler.Options) (*config.Recipe, diag.List, error) {
	if err := LockArchs(file, &opts); err != nil {
		return nil, nil, err
	}
	return Bounded(func() (*config.Recipe, diag.List, error) { return compiler.VetWith(file, overrides, opts) })
}

// Plan is compiler.PlanWith within EvalBound, with the architectures of
// the ftc.lock next to file (LockArchs).
func Plan(file string, overrides []load.Override, opts compiler.Options) (*plan.Plan, diag.List, error) {
	if err := LockArchs(file, &opts); err != nil {
		return nil, nil, err
	}
	return Bounded(func() (*plan.Plan, diag.List, error) { return compiler.PlanWith(file, overrides, opts) })
}

// LockArchs gives the compiler the architectures that the ftc.lock next
// to file holds (read from the models' config.json by ftc lock), unless
// opts has them already. vet and plan read them and nothing else: they
// stay offline.
func LockArchs(file string, opts *compiler.Options) error {
	if opts.Archs != nil {
		return nil
	}
	path := filepath.Join(filepath.Dir(file), resolve.LockFile)
	lock, err := resolve.ReadLock(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	opts.Archs = lock.ModelFacts()
	return nil
}

// LockMissingArchs is ftc run's step before it vets, where the Hub is
// reachable: file is vetted (without data digests) with the facts of its
// ftc.lock, and the models it gives no architecture for are pinned and
// their config.json read (PinMissingArchs). It returns the lock with
// those pins: nil when none were missing, or when the recipe does not
// vet (the vet that follows says why). Nothing is written.
func LockMissingArchs(ctx context.Context, file string, overrides []load.Override, opts compiler.Options, hub *resolve.Hub) (*resolve.Lock, []string, error) {
	lock, err := resolve.ReadLock(filepath.Join(filepath.Dir(file), resolve.LockFile))
	if err != nil {
		return nil, nil, err
	}
	// Data pins are not checked here; a local model's tree is still hashed
	// through the memo.
	opts.TreeDigest = opts.Digest
	opts.Digest, opts.Archs = nil, lock.ModelFacts()
	r, _, _ := Vet(file, overrides, opts)
	if r == nil {
		return nil, nil, nil
	}
	return PinMissingArchs(ctx, r, lock, hub)
}
