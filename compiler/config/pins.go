package config

// HubRef is a Hub model or dataset reference as the recipe writes it.
type HubRef struct {
	Kind     string // "model" or "dataset"
	Repo     string
	Revision string
}

// HubRefs lists every Hub reference of the recipe (with repeats).
func HubRefs(r *Recipe) []HubRef {
	var refs []HubRef
	r.eachModel(func(m *Model) {
		refs = append(refs, HubRef{Kind: "model", Repo: m.Repo, Revision: m.Revision})
	})
	r.eachDataset(func(d *Dataset) {
		if d.Hub != nil {
			refs = append(refs, HubRef{Kind: "dataset", Repo: d.Hub.Repo, Revision: d.Hub.Revision})
		}
	})
	return refs
}

// ApplyPins rewrites every reference found in pins to its commit. It is
// how a lock file reaches the plan: keys are then computed from commits.
func ApplyPins(r *Recipe, pins map[HubRef]string) {
	r.eachModel(func(m *Model) {
		if c, ok := pins[HubRef{Kind: "model", Repo: m.Repo, Revision: m.Revision}]; ok {
			m.Revision = c
		}
	})
	r.eachDataset(func(d *Dataset) {
		if d.Hub == nil {
			return
		}
		if c, ok := pins[HubRef{Kind: "dataset", Repo: d.Hub.Repo, Revision: d.Hub.Revision}]; ok {
			d.Hub.Revision = c
		}
	})
}

// eachModel calls f on every model of every stage, in place.
func (r *Recipe) eachModel(visit func(*Model)) {
	f := func(m *Model) {
		if m.Repo != "" {
			visit(m)
		}
	}
	for name, st := range r.Stages {
		for _, m := range []*Model{st.Model, st.Policy, st.Reference, st.Reward, st.Value} {
			if m != nil {
				f(m)
			}
		}
		for i := range st.Rewards {
			if st.Rewards[i].Model != nil {
				f(st.Rewards[i].Model)
			}
		}
		f(&st.Output)
		r.Stages[name] = st
	}
}

// eachDataset calls f on every dataset, in place.
func (r *Recipe) eachDataset(f func(*Dataset)) {
	for name, d := range r.Datasets {
		f(&d)
		r.Datasets[name] = d
	}
	for name, st := range r.Stages {
		f(&st.Data.Train)
		for i := range st.Data.Mix {
			f(&st.Data.Mix[i].Dataset)
		}
		if st.Data.Eval != nil {
			f(st.Data.Eval)
		}
		r.Stages[name] = st
	}
}

// ArchMissing lists the Hub models that have no architecture: the recipe
// writes none and the lock's facts (Options.Archs) gave none. `ftc lock`
// must read their config.json; for the others it is a check.
func ArchMissing(r *Recipe) map[HubRef]bool {
	out := map[HubRef]bool{}
	for _, s := range r.modelSites() {
		if s.m.Arch.Family == "" && !s.m.IsLocal() {
			out[HubRef{Kind: "model", Repo: s.m.Repo, Revision: s.m.Revision}] = true
		}
	}
	return out
}
