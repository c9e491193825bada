package alert

import (
	"fmt"
	"slices"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// targetState is what the engine remembers of one target between results.
type targetState struct {
	evidence evidence // the last results, newest last
	slowRun  int      // consecutive slow results
	capRun   int      // consecutive results near the limit
	samples  []sample // durations of usable results, oldest first
	lastSeen time.Time
}

// sample is one duration for the anomaly rule, in microseconds to keep it small.
type sample struct {
	at int64 // unix nanoseconds
	us int64
}

// addSample records s as the newest sample, keeping at most max. Samples older than
// from, the start of the baseline, are dropped first: the baseline never reads them
// again, as time only moves forward, so a target keeps the baseline's durations (an
// hour: 60 at a 1m interval) rather than max (256, 4 KB) of them.
func (ts *targetState) addSample(s sample, from int64, max int) {
	k := 0
	for k < len(ts.samples) && ts.samples[k].at < from {
		k++
	}
	if len(ts.samples)-k >= max {
		k = len(ts.samples) - max + 1
	}
	if k > 0 {
		ts.samples = ts.samples[:copy(ts.samples, ts.samples[k:])]
		if len(ts.samples) < cap(ts.samples)/4 {
			// The interval grew, or the target was long down: give the room back.
			ts.samples = append([]sample(nil), ts.samples...)
		}
	}
	ts.samples = append(ts.samples, s)
}

func (e *Engine) target(id string) *targetState {
	ts := e.targets[id]
	if ts == nil {
		ts = &targetState{}
		e.targets[id] = ts
	}
	return ts
}

// observe runs the built-in rules on one signal.
func (e *Engine) observe(sig Signal, now time.Time) {
	ts := e.target(sig.Target)
	ts.lastSeen = now
	r := sig.Result
	ts.evidence.add(&r, e.cfg.evidence)
	// The alert's labels are made from the signal's only when an alert opens or its
	// labels change, not for every result.
	base := cond{subject: sig.Target, src: sig.Labels, host: sig.Host, lazy: true, at: sig.At, ready: true}

	// Unreachable, or flapping.
	c := base
	c.rs, c.rule, c.sev = &e.cfg.unreachable, e.cfg.unreachable.name, e.cfg.unreachable.severity
	if sig.Flapping {
		c.verdict = holds
		c.summary = fmt.Sprintf("%s is flapping between up and down (latest: %s)", sig.Target, describe(&r))
		ent := e.byFP[fingerprint(c.rule, c.subject)]
		if ent == nil && !c.rs.disabled {
			// Flapping opens the alert at once: the flap itself is the news.
			ent = e.open(c)
			if ent.base() == patrol.AlertPending {
				e.fire(ent, sig.At)
			}
		}
		if ent = e.apply(c, now); ent != nil {
			e.setFlapping(ent, true, now)
		}
	} else {
		if ent := e.byFP[fingerprint(c.rule, c.subject)]; ent != nil && ent.Flapping {
			e.setFlapping(ent, false, now)
		}
		switch {
		case sig.Status == patrol.StatusDown && c.rs.classes[r.Class]:
			c.verdict = holds
			c.summary = fmt.Sprintf("%s unreachable: %s", sig.Target, describe(&r))
		case sig.Status == patrol.StatusUp && c.rs.classes[r.Class]:
			// A failure the scheduler has not confirmed yet says nothing either way: it
			// must not clear the alert the host watch raised on the same condition (a
			// vanished listener) before the probe confirms it.
		case sig.Status == patrol.StatusDown, sig.Status == patrol.StatusUp:
			c.verdict = clears
		}
		e.apply(c, now)
	}

	// Slow: N consecutive slow results.
	c = base
	c.rs, c.rule, c.sev = &e.cfg.slow, e.cfg.slow.name, e.cfg.slow.severity
	switch r.Class {
	case patrol.ClassSlow:
		ts.slowRun++
		c.verdict = holds
		c.ready = ts.slowRun >= c.rs.count
		c.summary = fmt.Sprintf("%s slow: %d results in a row over its latency threshold, latest %s",
			sig.Target, ts.slowRun, r.Duration.Round(time.Millisecond))
	case patrol.ClassOK:
		ts.slowRun = 0
		c.verdict = clears
	}
	e.apply(c, now)

	// Capacity: near the limit, or the server says it is full.
	c = base
	c.rs, c.rule, c.sev = &e.cfg.capacity, e.cfg.capacity.name, e.cfg.capacity.severity
	switch {
	case r.Class == patrol.ClassOverloaded:
		c.verdict = holds
		c.summary = fmt.Sprintf("%s is full: %s", sig.Target, describe(&r))
	case r.Capacity != nil && r.Capacity.Limit > 0 && r.Capacity.Ratio() >= c.rs.threshold:
		c.verdict = holds
		c.summary = fmt.Sprintf("%s near its connection limit: %s %d of %d (%.0f%%)", sig.Target,
			r.Capacity.What, r.Capacity.Used, r.Capacity.Limit, 100*r.Capacity.Ratio())
	case r.Capacity != nil && r.Capacity.Limit > 0, r.Class.Up():
		c.verdict = clears
	}
	switch c.verdict {
	case holds:
		ts.capRun++
		c.ready = ts.capRun >= c.rs.count
	case clears:
		ts.capRun = 0
	}
	e.apply(c, now)

	e.apply(e.certExpiry(base, &r), now)

	// The built-in latency anomaly rule, unless the learned detector replaces it.
	if r.Up() && !e.cfg.anomaly.learned {
		c = base
		c.rs, c.rule, c.sev = &e.cfg.anomaly.ruleSettings, e.cfg.anomaly.name, e.cfg.anomaly.severity
		c.verdict, c.summary, c.desc = e.anomalous(ts, sig.Target, sig.At, r.Duration)
		e.apply(c, now)
	}
}

// anomalous records a duration and judges whether the p95 of the latest durations is
// over Factor times the median of the baseline.
func (e *Engine) anomalous(ts *targetState, target string, at time.Time, d time.Duration) (verdict, string, string) {
	cfg := &e.cfg.anomaly
	from := at.Add(-cfg.baseline).UnixNano()
	ts.addSample(sample{at: at.UnixNano(), us: d.Microseconds()}, from, cfg.maxSamples)
	base := e.scratch[:0]
	for _, s := range ts.samples {
		if s.at >= from {
			base = append(base, s.us)
		}
	}
	e.scratch = base
	if len(base) < cfg.minSamples {
		return unknown, "", ""
	}
	recent := slices.Clone(base[len(base)-min(cfg.window, len(base)):])
	slices.Sort(recent)
	p95 := recent[(len(recent)*95+99)/100-1]
	slices.Sort(base)
	median := base[len(base)/2]
	if float64(p95) <= cfg.factor*float64(median) || time.Duration(p95-median)*time.Microsecond < cfg.minIncrease {
		return clears, "", ""
	}
	us := func(v int64) time.Duration {
		return (time.Duration(v) * time.Microsecond).Round(100 * time.Microsecond)
	}
	ratio := float64(p95) / max(float64(median), 1)
	summary := fmt.Sprintf("%s latency anomaly: p95 %s is %.1f× its usual %s", target, us(p95), ratio, us(median))
	desc := fmt.Sprintf("The 95th percentile of the last %d response times is %s, %.1f times the median of %s over the last %s (%d results); the rule fires above %.1f times.",
		cfg.window, us(p95), ratio, us(median), cfg.baseline, len(base), cfg.factor)
	return holds, summary, desc
}

// describe renders a result's class and error for a summary.
func describe(r *patrol.Result) string {
	if r.Error == "" {
		return string(r.Class)
	}
	return string(r.Class) + ": " + r.Error
}
