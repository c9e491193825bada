package alert

import (
	"container/heap"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// active reports whether ent is an active alert of the engine (not resolved, not
// dropped).
func (e *Engine) active(ent *entry) bool { return e.byFP[ent.Alert.Fingerprint] == ent }

// markVisit has the next Tick look at an alert.
func (e *Engine) markVisit(ent *entry) {
	if !ent.visiting {
		ent.visiting = true
		e.visit = append(e.visit, ent)
	}
}

// markMute has the next Tick work out what mutes an alert, and what it mutes.
func (e *Engine) markMute(ent *entry) {
	if !ent.muteQueued {
		ent.muteQueued = true
		e.muteList = append(e.muteList, ent)
	}
}

// schedule puts an active alert in e.due at the next time after now at which Tick has
// something to do with it: fire it, send its first notice, escalate, remind. A time
// already passed whose action is held back (owed and not yet sent, acknowledged,
// muted, flapping) needs no item: what lifts it changes the alert, and a changed
// alert is visited.
func (e *Engine) schedule(ent *entry, now time.Time) {
	var next time.Time
	at := func(t time.Time) {
		if !t.IsZero() && t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	a := &ent.Alert
	switch ent.base() {
	case patrol.AlertPending:
		at(a.StartsAt.Add(e.cfg.forOf(a.Class)))
	case patrol.AlertFiring:
		if !ent.Notified {
			if steps := e.cfg.chains[ent.Chain]; len(steps) > 0 {
				at(a.FiredAt.Add(steps[0].After))
			}
			break
		}
		at(a.Deadline)
		if e.cfg.repeat > 0 {
			at(ent.NextReminder)
		}
	}
	if next.Equal(ent.dueAt) {
		return
	}
	ent.dueAt = next
	if next.IsZero() {
		return
	}
	// Items of alerts gone or rescheduled stay until their time; drop them when they
	// outnumber the live ones.
	if len(e.due) > 1024 && len(e.due) > 2*len(e.byFP) {
		live := e.due[:0]
		for _, it := range e.due {
			if it.ent.dueAt.Equal(it.at) && e.active(it.ent) {
				live = append(live, it)
			}
		}
		clear(e.due[len(live):])
		e.due = live
		heap.Init(&e.due)
	}
	heap.Push(&e.due, dueItem{at: next, ent: ent})
}

// dueItem is a time at which Tick visits an alert.
type dueItem struct {
	at  time.Time
	ent *entry
}

// dueHeap is a min-heap of dueItems by time.
type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = dueItem{}
	*h = old[:len(old)-1]
	return it
}

func (h *dueHeap) pop() dueItem { return heap.Pop(h).(dueItem) }
