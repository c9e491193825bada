package alert

import (
	"maps"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// evidence is the last results of one target, newest last, kept compact: every
// target has it, and at 100,000 targets five whole Results each, with an error
// message and a phase list apiece, were over 100 MB. What changes from one result to
// the next (start, duration, the duration of a lone phase: 32 bytes) is kept per
// result; the rest (class, target, error, address, the phase's name, the start's
// location, TLS, HTTP, capacity, details) is shared with the result before whenever
// it is the same, which for a target that keeps failing, or keeps answering, the same
// way is always. Results come back equal, field by field, to what was remembered.
type evidence struct {
	ring []evid // up to cap(ring) results, oldest at head once full
	head int
}

type evid struct {
	start int64 // Unix nanoseconds; rest.loc is its location
	dur   time.Duration
	phase time.Duration // the lone phase's duration, when rest.onePhase
	rest  *evidRest
}

// evidRest is the part of a result that seldom changes between results of a target.
// Every target has at least one, so what most results lack (several phases, TLS,
// HTTP, capacity, details) is behind one pointer: 112 bytes rather than 160.
type evidRest struct {
	class               patrol.Class
	loc                 *time.Location // of the start; nil for a zero start
	target, err, remote string
	phaseName           string
	onePhase            bool      // the result had exactly one phase: phaseName
	more                *evidMore // nil when the result had none of it
}

// evidMore is what only some results carry.
type evidMore struct {
	phases   []patrol.Phase // the phases, unless there was exactly one
	tls      *patrol.TLSInfo
	http     *patrol.HTTPInfo
	capacity *patrol.Capacity
	details  map[string]string
}

// same reports whether o holds what m holds; either may be nil.
func (m *evidMore) same(o *evidMore) bool {
	if m == nil || o == nil {
		return m == nil && o == nil
	}
	return m.phases == nil && o.phases == nil && m.tls == o.tls && m.http == o.http && m.capacity == o.capacity &&
		sameMap(m.details, o.details)
}

// add keeps r as the newest of the last n results.
func (ev *evidence) add(r *patrol.Result, n int) {
	if n <= 0 {
		return
	}
	x := evid{dur: r.Duration}
	rest := evidRest{class: r.Class, target: r.Target, err: r.Error, remote: r.RemoteAddr}
	more := evidMore{tls: r.TLS, http: r.HTTP, capacity: r.Capacity, details: r.Details}
	if !r.Start.IsZero() {
		x.start, rest.loc = r.Start.UnixNano(), r.Start.Location()
	}
	if len(r.Phases) == 1 {
		rest.onePhase, rest.phaseName, x.phase = true, r.Phases[0].Name, r.Phases[0].Duration
	} else {
		more.phases = r.Phases
	}
	if more.phases != nil || more.tls != nil || more.http != nil || more.capacity != nil || more.details != nil {
		rest.more = &more
	}
	if prev := ev.newest(); prev != nil && prev.rest.same(&rest) {
		x.rest = prev.rest
	} else {
		if prev != nil && rest.more != nil && rest.more.same(prev.rest.more) {
			rest.more = prev.rest.more
		}
		x.rest = &rest
	}
	if cap(ev.ring) != n {
		// First result, or the configured number changed: keep the newest ones.
		old := ev.ring
		ev.ring = make([]evid, 0, n)
		for i := max(0, len(old)-n+1); i < len(old); i++ {
			ev.ring = append(ev.ring, old[(ev.head+i)%len(old)])
		}
		ev.head = 0
	}
	if len(ev.ring) < n {
		ev.ring = append(ev.ring, x)
		return
	}
	ev.ring[ev.head] = x
	ev.head = (ev.head + 1) % n
}

// newest is the latest result kept, or nil.
func (ev *evidence) newest() *evid {
	if len(ev.ring) == 0 {
		return nil
	}
	if len(ev.ring) < cap(ev.ring) || ev.head == 0 {
		return &ev.ring[len(ev.ring)-1]
	}
	return &ev.ring[ev.head-1]
}

// len is the number of results kept.
func (ev *evidence) len() int { return len(ev.ring) }

// results returns the results kept, oldest first, as new Results.
func (ev *evidence) results() []patrol.Result {
	if len(ev.ring) == 0 {
		return nil
	}
	out := make([]patrol.Result, 0, len(ev.ring))
	for i := range ev.ring {
		x := &ev.ring[(ev.head+i)%len(ev.ring)]
		rs := x.rest
		r := patrol.Result{Target: rs.target, Duration: x.dur, Class: rs.class, Error: rs.err, RemoteAddr: rs.remote}
		if m := rs.more; m != nil {
			r.TLS, r.HTTP, r.Capacity, r.Details = m.tls, m.http, m.capacity, m.details
			r.Phases = m.phases
		}
		if rs.loc != nil {
			r.Start = time.Unix(0, x.start).In(rs.loc)
		}
		if rs.onePhase {
			r.Phases = []patrol.Phase{{Name: rs.phaseName, Duration: x.phase}}
		}
		out = append(out, r)
	}
	return out
}

// same reports whether o holds what r holds, so that r can be shared in its place.
// Results are read-only once made, so the pointers are compared, not what they
// point at.
func (r *evidRest) same(o *evidRest) bool {
	return r.class == o.class && r.loc == o.loc && r.target == o.target && r.err == o.err && r.remote == o.remote && r.onePhase == o.onePhase &&
		r.phaseName == o.phaseName && r.more.same(o.more)
}

func sameMap(a, b map[string]string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return len(a) == len(b) && maps.Equal(a, b)
}
