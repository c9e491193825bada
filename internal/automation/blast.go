package automation

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Defaults of the blast radius.
const (
	DefaultPoolLabel      = "pool"
	DefaultMaxPoolPercent = 25
	DefaultBlastWindow    = 10 * time.Minute
)

// BlastRadius limits how much of a pool one playbook step acts on: within Window, a step
// acts on at most MaxPoolPercent of the targets sharing its target's pool (at least one),
// and before it acts on another target of that pool, the ones it acted on must probe
// healthy again (the health check between batches). A target's pool is its PoolLabel
// label, else its "service" label; a target with neither is a pool of its own: a step
// acts on one target, on one host. The zero value means the defaults.
type BlastRadius struct {
	// PoolLabel names the label that groups targets into pools (default "pool").
	PoolLabel string `yaml:"pool_label"`
	// MaxPoolPercent is the share of a pool one step may act on within Window
	// (default 25; 100 lifts the limit). At least one target is always allowed.
	MaxPoolPercent int `yaml:"max_pool_percent"`
	// Window is how long an action counts against its pool (default 10m).
	Window time.Duration `yaml:"window"`
}

// blastHit is one target a step acted on in a pool.
type blastHit struct {
	alert patrol.Alert
	at    time.Time
}

// poolOf returns the pool of an alert's target: "label=value", and the label and value.
func (b BlastRadius) poolOf(a patrol.Alert) (key, label, value string) {
	for _, l := range []string{b.PoolLabel, "service"} {
		if v := a.Labels[l]; v != "" {
			return l + "=" + v, l, v
		}
	}
	return "", "", ""
}

// blastCheck decides whether step p may act on its target under the blast radius, and
// when it may, counts the target against its pool. It probes the targets acted on
// earlier in the pool without holding e.mu.
func (e *Engine) blastCheck(ctx context.Context, a patrol.Alert, p Plan) (ok bool, why string) {
	br := e.cfg.BlastRadius
	pool, label, value := br.poolOf(a)
	if pool == "" {
		return true, ""
	}
	key := p.Playbook + "\x00" + p.Step + "\x00" + pool
	size := 0
	if e.deps.PoolSize != nil {
		size = e.deps.PoolSize(label, value)
	}
	limit := max(1, size*br.MaxPoolPercent/100)

	e.mu.Lock()
	now := e.clk.Now()
	hits := slices.DeleteFunc(e.blast[key], func(h blastHit) bool { return !h.at.After(now.Add(-br.Window)) })
	e.blast[key] = hits
	var earlier []patrol.Alert
	for _, h := range hits {
		if h.alert.Target == a.Target {
			e.mu.Unlock()
			return true, "" // the same target again: the breaker governs that
		}
		earlier = append(earlier, h.alert)
	}
	e.mu.Unlock()
	of := "of an unknown number"
	if size > 0 {
		of = fmt.Sprintf("of %d", size)
	}
	if len(earlier) >= limit {
		return false, fmt.Sprintf("blast radius: step %s of playbook %s already acted on %d target(s) %s in pool %s within %s (the limit is %d, %d %% of the pool, at least one)",
			p.Step, p.Playbook, len(earlier), of, pool, br.Window, limit, br.MaxPoolPercent)
	}
	if e.deps.Probe != nil {
		for _, prev := range earlier {
			if healthy, detail := e.deps.Probe(ctx, prev); !healthy {
				return false, fmt.Sprintf("blast radius: %s, acted on earlier by step %s in pool %s, is not healthy (%s); the next target waits until it is",
					prev.Target, p.Step, pool, detail)
			}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	hits = e.blast[key]
	n := 0
	for _, h := range hits {
		if h.alert.Target != a.Target {
			n++
		}
	}
	if n >= limit {
		return false, fmt.Sprintf("blast radius: step %s of playbook %s already acted on %d target(s) %s in pool %s within %s (the limit is %d)",
			p.Step, p.Playbook, n, of, pool, br.Window, limit)
	}
	e.blast[key] = append(hits, blastHit{alert: a, at: now})
	return true, ""
}
