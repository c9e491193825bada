package kube

import (
	"maps"
	"slices"
	"sync"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Tracker turns snapshots and probe results into finding transitions: a finding that
// appears or changes is returned with Active true, one that clears is returned once with
// Active false. The zero value is not usable; use NewTracker. It is safe for concurrent
// use.
type Tracker struct {
	mu      sync.Mutex
	snap    *Snapshot
	ids     map[string]bool // the snapshot's target IDs
	results map[string]patrol.Result
	active  map[string]Finding
}

// NewTracker returns a Tracker with no snapshot and no findings.
func NewTracker() *Tracker {
	return &Tracker{results: map[string]patrol.Result{}, active: map[string]Finding{}}
}

// Update installs a new snapshot, forgets results of targets it no longer has, and
// returns the transitions.
func (t *Tracker) Update(s *Snapshot) []Finding {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.snap = s
	t.ids = make(map[string]bool, len(s.Targets))
	for _, tg := range s.Targets {
		t.ids[tg.ID] = true
	}
	for id := range t.results {
		if !t.ids[id] {
			delete(t.results, id)
		}
	}
	return t.recompute()
}

// Observe records probe results and returns the transitions. Results of targets the
// current snapshot does not have are ignored.
func (t *Tracker) Observe(rs ...patrol.Result) []Finding {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.snap == nil {
		return nil
	}
	changed := false
	for _, r := range rs {
		if !t.ids[r.Target] {
			continue
		}
		old, had := t.results[r.Target]
		t.results[r.Target] = r
		if !had || old.Up() != r.Up() || old.Class != r.Class {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return t.recompute()
}

// Active returns the findings active now, most severe first.
func (t *Tracker) Active() []Finding {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := slices.Collect(maps.Values(t.active))
	sortFindings(out)
	return out
}

// Snapshot returns the snapshot last given to Update, or nil.
func (t *Tracker) Snapshot() *Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.snap
}

func (t *Tracker) recompute() []Finding {
	now := map[string]Finding{}
	for _, f := range t.snap.Findings {
		now[f.Key()] = f
	}
	for _, f := range Assess(t.snap, ResultMap(t.results)) {
		now[f.Key()] = f
	}
	var out []Finding
	for k, f := range now {
		old, ok := t.active[k]
		if !ok || old.Summary != f.Summary || old.Severity != f.Severity {
			out = append(out, f)
		}
	}
	for k, f := range t.active {
		if _, ok := now[k]; !ok {
			f.Active = false
			out = append(out, f)
		}
	}
	t.active = now
	sortFindings(out)
	return out
}
