package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/exec"
	"github.com/ftc-dev/ftc/runtime/resolve"
)

// Resolved is a recipe resolved and planned as ftc run plans it.
type Resolved struct {
	Plan    *plan.Plan
	Resolve *resolve.Result
	// WriteLock writes the lock if it grew: the caller does, once it is
	// past its checks (a refused run writes nothing).
	WriteLock func() error
}

// ResolveOptions say how a recipe is resolved.
type ResolveOptions struct {
	// Lock, when set, is resolved against instead of the recipe's
	// ftc.lock (and is written, as the lock, with the pins added).
	Lock   *resolve.Lock
	Hub    *resolve.Hub // nil: offline
	Hasher *resolve.Hasher
	// Image is the stage image the plan names ("": not built).
	Image string
}

// ResolveAndPlan checks data digests, pins Hub references through the
// lock (and the Hub when online), and plans.
func ResolveAndPlan(ctx context.Context, r *config.Recipe, o ResolveOptions) (*Resolved, error) {
	path := lockPath(r)
	lock := o.Lock
	if lock == nil {
		var err error
		if lock, err = resolve.ReadLock(path); err != nil {
			return nil, err
		}
	}
	res, err := resolve.Resolve(ctx, r, resolve.Options{Lock: lock, Hub: o.Hub, Hasher: o.Hasher})
	if err != nil {
		return nil, err
	}
	out := &Resolved{Resolve: res, WriteLock: func() error { return nil }}
	if res.LockChanged || o.Lock != nil {
		updated := resolve.UpdatedLock(lock, res)
		out.WriteLock = func() error {
			if err := updated.Write(path); err != nil {
				return fmt.Errorf("writing %s: %w", path, err)
			}
			return nil
		}
	}
	out.Plan, err = plan.BuildWith(r, plan.Options{Image: o.Image})
	return out, err
}

// HubFromEnv is the Hub as the environment names it (HF_ENDPOINT, a
// mirror or a stand-in; HF_TOKEN for gated models), or nil when offline
// (offline, HF_HUB_OFFLINE=1).
func HubFromEnv(offline bool) *resolve.Hub {
	if offline || os.Getenv("HF_HUB_OFFLINE") == "1" {
		return nil
	}
	endpoint := os.Getenv("HF_ENDPOINT")
	if endpoint == "" {
		endpoint = "https://huggingface.co"
	}
	return &resolve.Hub{Endpoint: endpoint, Token: os.Getenv("HF_TOKEN")}
}

// NewRecord creates the record directory of a run of recipe under root
// and points "latest" at it.
func NewRecord(root, recipe string) (string, error) {
	id := time.Now().UTC().Format("20060102T150405.000000000Z") + "-" + recipe
	dir := filepath.Join(root, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(root, "latest"), []byte(id+"\n"), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

// ErrNoRecord is LatestRecord's error when no run was recorded.
var ErrNoRecord = errors.New("no run recorded")

// LatestRecord is the record directory of the latest run under root, and
// its events.
func LatestRecord(root string) (string, []exec.Event, error) {
	id, err := os.ReadFile(filepath.Join(root, "latest"))
	if err != nil {
		return "", nil, ErrNoRecord
	}
	dir := filepath.Join(root, strings.TrimSpace(string(id)))
	events, err := exec.ReadEvents(filepath.Join(dir, "events.jsonl"))
	return dir, events, err
}

// OutputTree says where the output of a stage key is in store: its tree,
// or "" when the store holds no entry for the key.
func OutputTree(store *cas.Store, key string) string {
	if a, err := store.GetAction(key); err == nil && a.Outputs["output"] != "" {
		return string(a.Outputs["output"])
	}
	return ""
}

// PinMissingArchs is ftc lock's first step for a run, where the Hub is
// reachable: the models r (vetted with lock's facts) gives no
// architecture for are pinned and their config.json read, so that a
// recipe naming a model by its repository alone runs without a separate
// ftc lock. It returns the lock with those pins (nil: none were missing)
// and the resolver's warnings; nothing is written.
func PinMissingArchs(ctx context.Context, r *config.Recipe, lock *resolve.Lock, hub *resolve.Hub) (*resolve.Lock, []string, error) {
	if len(config.ArchMissing(r)) == 0 {
		return nil, nil, nil
	}
	res, err := resolve.PinModels(ctx, r, resolve.Options{Lock: lock, Hub: hub})
	var warnings []string
	if res != nil {
		warnings = res.Warnings
	}
	if err != nil {
		return nil, warnings, err
	}
	return resolve.UpdatedLock(lock, res), warnings, nil
}
