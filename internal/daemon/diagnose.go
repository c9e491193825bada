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
	"github.com/portpatrol/portpatrol/internal/schedule"
)

// diagnoseTimeout bounds doctor's checks for one alert; diagnoseCache is how long a
// target's verdict is reused for its next alerts (a flapping target is diagnosed
// once, not at every incident).
// At most diagnoseParallel diagnoses run at once, so that an outage of many targets
// does not run doctor (socket dumps, nft) for all of them together; one that waits
// longer than diagnoseQueue for its turn attaches the impact alone.
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
	slots   chan struct{}      // one per diagnosis running
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
	if g.started == nil {
		g.started, g.cache = map[string]bool{}, map[string]verdict{}
		g.slots = make(chan struct{}, diagnoseParallel)
		g.doc = doctor.New(doctor.Config{Timeout: 3 * time.Second, Classify: probe.Classify})
	}
	if g.started[a.ID] {
		g.mu.Unlock()
		return
	}
	g.started[a.ID] = true
	g.mu.Unlock()
	go d.diagnose(a)
}

// diagnose works out the diagnosis and impact of a and attaches them.
func (d *Daemon) diagnose(a patrol.Alert) {
	diag := ""
	select {
	case <-d.ctx.Done():
		return // the daemon is closing
	case d.diag.slots <- struct{}{}:
		ctx, cancel := context.WithTimeout(d.ctx, diagnoseTimeout)
		diag = d.verdictOf(ctx, a.Target)
		cancel()
		<-d.diag.slots
	case <-time.After(diagnoseQueue):
		d.logger.Debug("diagnosis skipped: too many at once", "alert", a.ID)
	}
	impact := d.impactOf(a.Target)
	if diag == "" && impact == "" {
		return
	}
	if err := d.withEngine(func(e *alert.Engine) error {
		return e.Annotate(a.ID, diag, impact)
	}); err != nil {
		d.logger.Debug("attach diagnosis", "alert", a.ID, "err", err)
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
		if s := sharedHost(target, d.sched.Snapshot()); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}

// sharedHost says how many other targets are on target's host, and how many of them
// are down.
func sharedHost(target string, jobs []schedule.JobState) string {
	host := ""
	for _, j := range jobs {
		if j.Job.ID == target {
			host = j.Job.Host
		}
	}
	if host == "" {
		return ""
	}
	others, down := 0, 0
	for _, j := range jobs {
		if j.Job.ID == target || j.Job.Host != host {
			continue
		}
		others++
		if j.Status == patrol.StatusDown {
			down++
		}
	}
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
