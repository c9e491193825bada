package daemon

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/doctor"
	"github.com/portpatrol/portpatrol/internal/hostwatch"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
)

// diagnoseTimeout bounds doctor's checks for one alert; diagnoseCache is how long a
// target's verdict is reused for its next alerts (a flapping target is diagnosed
// once, not at every incident).
// At most diagnoseParallel diagnoses run at once, so that an outage of many targets
// does not run doctor (socket dumps, nft) for all of them together; one that waits
// longer than diagnoseQueue for its turn attaches the impact alone. The alerts waiting
// are a queue of IDs and targets, worked through by at most diagnoseParallel
// goroutines, not a goroutine and a timer each: an outage of 50,000 targets queues
// 50,000 small records, not 50,000 stacks.
const (
	diagnoseTimeout  = 5 * time.Second
	diagnoseCache    = 3 * time.Minute
	diagnoseParallel = 4
	diagnoseQueue    = time.Minute
)

// diagnoser runs doctor's checks for the target of each P0 unreachable alert, in the
// background, and attaches the verdict and the impact to the alert. Its methods are
// safe for concurrent use.
type diagnoser struct {
	mu      sync.Mutex
	doc     *doctor.Doctor
	cache   map[string]verdict // by target
	started map[string]bool    // alert IDs diagnosed or being diagnosed
	queue   []diagJob          // alerts waiting for a worker, oldest first
	workers int                // goroutines working through queue
}

// diagJob is an alert waiting for its diagnosis, since queued.
type diagJob struct {
	id, target string
	queued     time.Time
}

type verdict struct {
	text string
	at   time.Time
}

// considerDiagnosis starts the diagnosis of a, unless it is no P0 unreachable alert, has one,
// or one is under way. It never blocks: the alert engine calls it through its change
// hook.
func (d *Daemon) considerDiagnosis(a patrol.Alert) {
	if a.Class != patrol.AlertUnreachable {
		return
	}
	g := &d.diag
	if !a.Active() {
		g.mu.Lock()
		delete(g.started, a.ID)
		g.mu.Unlock()
		return
	}
	if a.Severity != patrol.P0 || a.Diagnosis != "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started == nil {
		g.started, g.cache = map[string]bool{}, map[string]verdict{}
		g.doc = doctor.New(doctor.Config{Timeout: 3 * time.Second, Classify: probe.Classify})
	}
	if g.started[a.ID] {
		return
	}
	g.started[a.ID] = true
	g.queue = append(g.queue, diagJob{id: a.ID, target: a.Target, queued: time.Now()})
	if g.workers < diagnoseParallel {
		g.workers++
		go d.diagnoseQueued()
	}
}

// diagnoseQueued works through the queue of alerts to diagnose until it is empty or
// the daemon closes.
func (d *Daemon) diagnoseQueued() {
	g := &d.diag
	for {
		g.mu.Lock()
		if len(g.queue) == 0 || d.ctx.Err() != nil {
			g.workers--
			g.mu.Unlock()
			return
		}
		j := g.queue[0]
		g.queue[0] = diagJob{}
		g.queue = g.queue[1:]
		if len(g.queue) == 0 {
			g.queue = nil // let the backing array of a storm go
		}
		g.mu.Unlock()
		d.diagnose(j)
	}
}

// diagnose works out the diagnosis and impact of j's alert and attaches them.
func (d *Daemon) diagnose(j diagJob) {
	diag := ""
	if time.Since(j.queued) > diagnoseQueue {
		d.logger.Debug("diagnosis skipped: too many at once", "alert", j.id)
	} else {
		ctx, cancel := context.WithTimeout(d.ctx, diagnoseTimeout)
		diag = d.verdictOf(ctx, j.target)
		cancel()
		if d.ctx.Err() != nil {
			return // the daemon is closing
		}
	}
	impact := d.impactOf(j.target)
	if diag == "" && impact == "" {
		return
	}
	if err := d.withEngine(func(e *alert.Engine) error {
		return e.Annotate(j.id, diag, impact)
	}); err != nil {
		d.logger.Debug("attach diagnosis", "alert", j.id, "err", err)
	}
}

// verdictOf runs doctor for target, or returns its cached verdict.
func (d *Daemon) verdictOf(ctx context.Context, target string) string {
	g := &d.diag
	now := d.clock.Now()
	g.mu.Lock()
	v, ok := g.cache[target]
	doc := g.doc
	g.mu.Unlock()
	if ok && now.Sub(v.at) < diagnoseCache {
		return v.text
	}
	t, err := patrol.ParseTarget(target)
	if err != nil || t.Host == "" || t.Port <= 0 || t.Port > 65535 {
		return ""
	}
	r := doc.Connect(ctx, t.Host, uint16(t.Port))
	text := ""
	if r.Problem {
		text = r.Cause + ". Next step: " + r.Next
	} else if r.Cause != "" {
		text = "doctor found nothing wrong a moment later (" + r.Cause + "); the failure may be intermittent"
	}
	if text == "" {
		return ""
	}
	g.mu.Lock()
	g.cache[target] = verdict{text: text, at: now}
	for k, v := range g.cache {
		if now.Sub(v.at) >= diagnoseCache {
			delete(g.cache, k)
		}
	}
	g.mu.Unlock()
	return text
}

// impactOf says whom a failure of target affects: the clients its listener had, as
// the host watch saw them, and the other targets on the same host.
func (d *Daemon) impactOf(target string) string {
	var parts []string
	if d.watch != nil {
		if c, ok := d.watch.Clients(target); ok {
			s := fmt.Sprintf("%d clients connected at %s, just before it failed", c.Established, c.At.UTC().Format(time.TimeOnly))
			if c.Peak > c.Established {
				s += fmt.Sprintf(" (peak %d)", c.Peak)
			}
			s += fmt.Sprintf("; %s over the last %s", plural(c.Distinct, "distinct client address", "distinct client addresses"), shortDur(hostwatch.ClientWindow))
			parts = append(parts, s)
		}
	}
	if d.sched != nil {
		if host, others, down, ok := d.sched.SameHost(target); ok && host != "" {
			parts = append(parts, sharedHost(host, others, down))
		}
	}
	return strings.Join(parts, "; ")
}

// sharedHost says how many other targets are on host, and how many of them are down.
func sharedHost(host string, others, down int) string {
	switch {
	case others == 0:
		return "no other target is on " + host
	case others == 1:
		return fmt.Sprintf("1 other target is on %s (%d down)", host, down)
	}
	return fmt.Sprintf("%d other targets are on %s (%d down)", others, host, down)
}

func shortDur(d time.Duration) string {
	return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m")
}

// plural says n one or n many.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
