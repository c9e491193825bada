package automation

import (
	"fmt"
	"sort"
	"time"
)

// breaker counts attempts of one action on one target.
type breaker struct {
	attempts []time.Time
	// paged is set once the breaker has paged since it last opened.
	paged bool
}

// BreakerState is one breaker as State shows it.
type BreakerState struct {
	Action   string      `json:"action"`
	Target   string      `json:"target"`
	Attempts []time.Time `json:"attempts"`
	Open     bool        `json:"open"`
	// NextAt is when the next attempt is allowed; zero when it is allowed now.
	NextAt time.Time `json:"next_at,omitzero"`
	Reason string    `json:"reason,omitempty"`
}

// limits holds the breakers and the fleet-wide count. It is not safe for concurrent
// use; the engine holds its lock.
type limits struct {
	cfg      Config
	breakers map[[2]string]*breaker
	fleet    []time.Time
}

func newLimits(cfg Config) *limits { return &limits{cfg: cfg, breakers: map[[2]string]*breaker{}} }

// backoff is the wait after n attempts: Backoff doubled n-1 times, at most MaxDelay.
func (l *limits) backoff(n int) time.Duration {
	d := l.cfg.Breaker.Backoff
	for i := 1; i < n && d < l.cfg.Breaker.MaxDelay; i++ {
		d *= 2
	}
	return min(d, l.cfg.Breaker.MaxDelay)
}

// check says whether action may run on target at now; when not, why and whether the
// breaker has just opened (and so should page).
func (l *limits) check(action, target string, now time.Time) (ok bool, reason string, nextAt time.Time, page bool) {
	b := l.breakers[[2]string{action, target}]
	if b == nil {
		return true, "", time.Time{}, false
	}
	l.prune(b, now)
	n := len(b.attempts)
	if n == 0 {
		b.paged = false
		return true, "", time.Time{}, false
	}
	if n >= l.cfg.Breaker.Attempts {
		next := b.attempts[0].Add(l.cfg.Breaker.Per)
		reason = fmt.Sprintf("breaker open for %s on %s: %d attempts within %s (the limit is %d); next attempt allowed at %s",
			action, target, n, l.cfg.Breaker.Per, l.cfg.Breaker.Attempts, next.UTC().Format(time.RFC3339))
		page = !b.paged
		b.paged = true
		return false, reason, next, page
	}
	b.paged = false
	next := b.attempts[n-1].Add(l.backoff(n))
	if now.Before(next) {
		return false, fmt.Sprintf("backing off %s on %s after %d attempt(s): next attempt allowed at %s",
			action, target, n, next.UTC().Format(time.RFC3339)), next, false
	}
	return true, "", time.Time{}, false
}

func (l *limits) prune(b *breaker, now time.Time) {
	i := 0
	for i < len(b.attempts) && !b.attempts[i].After(now.Add(-l.cfg.Breaker.Per)) {
		i++
	}
	b.attempts = b.attempts[i:]
}

// record counts an attempt, and reports whether the fleet-wide limit is now exceeded.
func (l *limits) record(action, target string, now time.Time) (fleetTripped bool, count int) {
	k := [2]string{action, target}
	b := l.breakers[k]
	if b == nil {
		b = &breaker{}
		l.breakers[k] = b
	}
	b.attempts = append(b.attempts, now)
	i := 0
	for i < len(l.fleet) && !l.fleet[i].After(now.Add(-l.cfg.Fleet.Window)) {
		i++
	}
	l.fleet = append(l.fleet[i:], now)
	return len(l.fleet) > l.cfg.Fleet.MaxActions, len(l.fleet)
}

// states lists the breakers, by action and target.
func (l *limits) states(now time.Time) []BreakerState {
	out := make([]BreakerState, 0, len(l.breakers))
	for k, b := range l.breakers {
		l.prune(b, now)
		s := BreakerState{Action: k[0], Target: k[1], Attempts: append([]time.Time(nil), b.attempts...)}
		ok, reason, next, _ := l.peek(k[0], k[1], now)
		s.Open, s.Reason, s.NextAt = !ok, reason, next
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Action != out[j].Action {
			return out[i].Action < out[j].Action
		}
		return out[i].Target < out[j].Target
	})
	return out
}

// peek is check without changing whether the breaker has paged.
func (l *limits) peek(action, target string, now time.Time) (bool, string, time.Time, bool) {
	b := l.breakers[[2]string{action, target}]
	if b == nil {
		return true, "", time.Time{}, false
	}
	paged := b.paged
	ok, reason, next, page := l.check(action, target, now)
	b.paged = paged
	return ok, reason, next, page
}
