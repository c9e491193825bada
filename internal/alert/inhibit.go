package alert

import (
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// inhIndex is one inhibition rule's index of the active alerts, by the values of the
// rule's Equal labels: the sources (alerts that inhibit, with the one of least ID
// that a muted alert names) and the targets (alerts it may mute). Kept up to date
// alert by alert, it lets a change of one alert re-mute only the alerts that share
// its Equal labels, rather than every open alert.
type inhIndex struct {
	src map[string]*srcSet
	tgt map[string]map[*entry]struct{}
}

// srcSet holds the sources of one rule with the same Equal labels; best is the one of
// least ID.
type srcSet struct {
	members map[*entry]struct{}
	best    *entry
}

// inhMember is where an alert stands in one rule's index.
type inhMember struct {
	key      string
	src, tgt bool
}

// inhKey names one srcSet: a rule and the values of its Equal labels.
type inhKey struct {
	rule int
	key  string
}

// resetInhibition empties the index; indexAll fills it from every active alert.
func (e *Engine) resetInhibition() {
	e.inh = make([]inhIndex, len(e.cfg.inhibit))
	for i := range e.inh {
		e.inh[i] = inhIndex{src: map[string]*srcSet{}, tgt: map[string]map[*entry]struct{}{}}
	}
	for _, ent := range e.alerts {
		ent.inh, ent.src = nil, false
	}
}

// bestSource returns the source that mutes, under rule i, the alerts with Equal
// labels key.
func (e *Engine) bestSource(i int, key string) *entry {
	if s := e.inh[i].src[key]; s != nil {
		return s.best
	}
	return nil
}

// unindex takes an alert out of the inhibition index. before records, for each
// srcSet touched first, the source it named until then.
func (e *Engine) unindex(ent *entry, before map[inhKey]*entry) {
	for i, m := range ent.inh {
		if s := e.inh[i].src[m.key]; m.src && s != nil {
			k := inhKey{i, m.key}
			if _, seen := before[k]; !seen && before != nil {
				before[k] = s.best
			}
			delete(s.members, ent)
			switch {
			case len(s.members) == 0:
				delete(e.inh[i].src, m.key)
			case s.best == ent:
				s.best = nil
				for o := range s.members {
					if s.best == nil || o.Alert.ID < s.best.Alert.ID {
						s.best = o
					}
				}
			}
		}
		if m.tgt {
			t := e.inh[i].tgt[m.key]
			delete(t, ent)
			if len(t) == 0 {
				delete(e.inh[i].tgt, m.key)
			}
		}
	}
	ent.inh, ent.src = nil, false
}

// index puts an active alert into the inhibition index as its labels, severity and
// state now are; an alert that is not active stays out.
func (e *Engine) index(ent *entry, before map[inhKey]*entry) {
	if len(e.cfg.inhibit) == 0 || !e.active(ent) {
		return
	}
	get := labelGetter(&ent.Alert)
	pending := ent.base() == patrol.AlertPending
	ent.inh = make([]inhMember, len(e.cfg.inhibit))
	for i, r := range e.cfg.inhibit {
		m := inhMember{key: equalKey(&ent.Alert, r.equal)}
		m.src = !pending && r.source.Matches(get)
		m.tgt = r.target.Matches(get)
		ent.inh[i] = m
		if m.src {
			ent.src = true
			k := inhKey{i, m.key}
			s := e.inh[i].src[m.key]
			if _, seen := before[k]; !seen && before != nil {
				if s != nil {
					before[k] = s.best
				} else {
					before[k] = nil
				}
			}
			if s == nil {
				s = &srcSet{members: map[*entry]struct{}{}}
				e.inh[i].src[m.key] = s
			}
			s.members[ent] = struct{}{}
			if s.best == nil || ent.Alert.ID < s.best.Alert.ID {
				s.best = ent
			}
		}
		if m.tgt {
			t := e.inh[i].tgt[m.key]
			if t == nil {
				t = map[*entry]struct{}{}
				e.inh[i].tgt[m.key] = t
			}
			t[ent] = struct{}{}
		}
	}
}
