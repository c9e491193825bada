package daemon

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/schedule"
	"github.com/portpatrol/portpatrol/internal/store"
)

// The self-checks: what portpatrol checks of itself, each a class self alert of its
// own (rule "self:<name>"), a series of portpatrol_self_check and a row of /-/self.
const (
	checkSchedulerLag  = "scheduler_lag"
	checkProbesSkipped = "probes_skipped"
	checkOutboxBacklog = "outbox_backlog"
	checkStoreWrite    = "store_write"
	checkClockJump     = "clock_jump"
	checkDropped       = "dropped_results"
	checkHostWatchDump = "hostwatch_dump"
	checkListenerCert  = "listener_cert"
)

// selfCheckNames lists the checks in the order they are shown.
var selfCheckNames = []string{checkSchedulerLag, checkProbesSkipped, checkOutboxBacklog, checkStoreWrite,
	checkClockJump, checkDropped, checkHostWatchDump, checkListenerCert}

// heartbeatChecks are the checks a heartbeat needs passing: the scheduler on time,
// results reaching the store, the outbox draining.
var heartbeatChecks = []string{checkSchedulerLag, checkProbesSkipped, checkOutboxBacklog, checkStoreWrite, checkDropped}

// clockJumpHold is how long a clock jump stays reported after it was seen: long enough
// for someone to look.
const clockJumpHold = 15 * time.Minute

// SelfCheck is the state of one self-check.
type SelfCheck struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Severity is the severity of its alert while it fails ("P1", "P2").
	Severity string `json:"severity,omitempty"`
	// Detail says what was seen, in words; empty while it passes.
	Detail string `json:"detail,omitempty"`
	// Since is when it last changed, on the daemon's clock.
	Since time.Time `json:"since,omitzero"`
}

// SelfStatus is what /-/self serves: every self-check and whether portpatrol counts
// itself healthy (the checks a heartbeat needs all pass).
type SelfStatus struct {
	Healthy bool        `json:"healthy"`
	At      time.Time   `json:"at,omitzero"`
	Checks  []SelfCheck `json:"checks"`
}

// Failing names the failing checks among names (all when names is nil), with details.
func (s SelfStatus) Failing(names []string) []SelfCheck {
	var out []SelfCheck
	for _, c := range s.Checks {
		if !c.OK && (names == nil || slices.Contains(names, c.Name)) {
			out = append(out, c)
		}
	}
	return out
}

// selfChecker runs the self-checks every interval and raises or clears their alerts.
// Its counters compare one run with the previous one, so a check fails for the
// interval in which its counter moved. Safe for concurrent use.
type selfChecker struct {
	d   *Daemon
	cfg config.SelfCheck
	// wall reads the host's wall clock and the monotonic time since the checker was
	// built, at one instant, for clock jumps; tests replace it.
	wall func() (time.Time, time.Duration)

	mu       sync.Mutex
	state    map[string]SelfCheck
	at       time.Time
	ran      bool
	prevWall time.Time
	prevMono time.Duration
	jumpAt   time.Duration // monotonic time of the last jump seen; 0 for none
	jumpMsg  string
	prevLag  uint64 // runs over the lag budget, cumulative
	prevMiss uint64
	prevB    store.BatchStats
	prevEng  uint64 // engine store errors
	prevDump uint64
}

func newSelfChecker(d *Daemon, cfg config.SelfCheck) *selfChecker {
	start := time.Now()
	s := &selfChecker{d: d, cfg: cfg.WithDefaults(), state: map[string]SelfCheck{}, wall: func() (time.Time, time.Duration) {
		t := time.Now()
		return t.Round(0), t.Sub(start) + time.Nanosecond
	}}
	for _, n := range selfCheckNames {
		s.state[n] = SelfCheck{Name: n, OK: true}
	}
	return s
}

// lagOver is how many recorded runs started later than budget, from the lag
// histogram: those above the smallest bucket bound at or over the budget.
func lagOver(h schedule.Histogram, budget time.Duration) uint64 {
	for i, b := range h.Bounds {
		if b >= budget {
			return h.Count - h.Counts[i]
		}
	}
	return 0
}

// run checks everything once and raises or clears the alerts whose state changed
// (every failing one again at each run, so a new leader's engine learns them).
func (s *selfChecker) run(ctx context.Context) {
	now := s.d.clock.Now()
	wall, mono := s.wall()
	results := map[string]SelfCheck{}
	set := func(name, sev, format string, args ...any) {
		results[name] = SelfCheck{Name: name, Severity: sev, Detail: fmt.Sprintf(format, args...)}
	}

	st := s.d.sched.Stats()
	lag := lagOver(st.Lag, s.cfg.LagBudget)
	b := s.d.batch.Stats()
	engErrs := s.d.engine().Stats().StoreErrors
	var dump uint64
	if s.d.watch != nil {
		dump = s.d.watch.DumpErrors()
	}

	s.mu.Lock()
	first := !s.ran
	if !first {
		if n := lag - s.prevLag; n > 0 {
			set(checkSchedulerLag, "P1", "%d probes started more than %s late in the last %s (%d queued for a slot now); raise scheduler.concurrency or lengthen intervals", n, s.cfg.LagBudget, s.cfg.Interval, st.Queued)
		}
		if n := st.Missed - s.prevMiss; n > 0 {
			set(checkProbesSkipped, "P2", "%d probe runs skipped in the last %s: a target's previous run was still queued or running a whole interval later", n, s.cfg.Interval)
		}
		if n := b.WriteErrors - s.prevB.WriteErrors + engErrs - s.prevEng; n > 0 || b.Held > 0 {
			set(checkStoreWrite, "P1", "%d writes to storage failed in the last %s; %d results held in memory to be written when storage takes them again (check free disk space and the database)", n, s.cfg.Interval, b.Held)
		}
		if n := b.Dropped - s.prevB.Dropped + b.Failed - s.prevB.Failed; n > 0 {
			set(checkDropped, "P2", "%d probe results never reached storage in the last %s (history has a gap)", n, s.cfg.Interval)
		}
		if n := dump - s.prevDump; n > 0 {
			set(checkHostWatchDump, "P2", "%d dumps of this host's listening sockets failed in the last %s; vanished listeners are not noticed meanwhile", n, s.cfg.Interval)
		}
		// The wall clock against the monotonic one: a step of the host's clock.
		if diff := wall.Sub(s.prevWall) - (mono - s.prevMono); diff > s.cfg.ClockJump || -diff > s.cfg.ClockJump {
			s.jumpAt = mono
			dir := "forward"
			if diff < 0 {
				dir = "back"
			}
			s.jumpMsg = fmt.Sprintf("the wall clock stepped %s by %s at %s; deadlines, silences and windows follow the new time (check NTP)", dir, diff.Abs().Round(time.Second), wall.UTC().Format(time.RFC3339))
		}
		if s.jumpAt != 0 && mono-s.jumpAt < clockJumpHold {
			set(checkClockJump, "P2", "%s", s.jumpMsg)
		}
	}
	s.prevLag, s.prevMiss, s.prevB, s.prevEng, s.prevDump, s.prevWall, s.prevMono, s.ran = lag, st.Missed, b, engErrs, dump, wall, mono, true
	s.mu.Unlock()

	if _, full := results[checkStoreWrite]; full {
		if s.d.reserve.release() {
			s.d.logger.Warn("storage writes fail: released the disk reserve so that alerts and notifications can still be written", "bytes", reserveSize)
		}
	} else if !first && s.d.reserve.released() {
		if s.d.reserve.restore() {
			s.d.logger.Info("storage writes again and the disk has room: the disk reserve is back", "bytes", reserveSize)
		} else {
			// Writes go through on the reserve's space: the disk is still nearly full.
			set(checkStoreWrite, "P1", "storage writes failed for a full disk; portpatrol released its %d KiB reserve to keep alerting and writes on it. Free space on the disk of the data directory: the check clears when the reserve can be written again", reserveSize>>10)
		}
	}
	if msg := s.outbox(ctx, now); msg != "" {
		set(checkOutboxBacklog, "P1", "%s", msg)
	}
	if sev, msg := s.listenerCert(now); msg != "" {
		set(checkListenerCert, sev, "%s", msg)
	}

	s.mu.Lock()
	var changed []SelfCheck
	for _, n := range selfCheckNames {
		r, failing := results[n]
		if !failing {
			r = SelfCheck{Name: n, OK: true}
		}
		prev := s.state[n]
		r.Since = prev.Since
		if prev.OK != r.OK || prev.Severity != r.Severity || first {
			r.Since = now
		}
		s.state[n] = r
		// At the first run every check is told, passing ones too: an alert left open
		// by the previous process resolves.
		if !r.OK || prev.OK != r.OK || first {
			changed = append(changed, r)
		}
	}
	s.at = now
	s.mu.Unlock()
	for _, c := range changed {
		if err := s.d.observeFinding(ctx, s.finding(c, now)); err != nil && ctx.Err() == nil {
			s.d.logger.Warn("self-check alert", "check", c.Name, "err", err)
		}
	}
}

// finding is the alert of a check: active while it fails.
func (s *selfChecker) finding(c SelfCheck, now time.Time) patrol.Finding {
	host := s.d.cfg().HostName
	f := patrol.Finding{Class: patrol.AlertSelf, Rule: "self:" + c.Name, Subject: "portpatrol@" + host,
		Severity: c.Severity, Active: !c.OK, At: now,
		Labels: map[string]string{"check": c.Name, "host": host}}
	if !c.OK {
		f.Summary = "portpatrol self-check " + c.Name + " failing on " + host
		f.Description = c.Detail + ". See docs/operations.md, \"" + c.Name + "\"."
	}
	return f
}

// outbox says what is wrong with the outbox's backlog, or "".
func (s *selfChecker) outbox(ctx context.Context, now time.Time) string {
	limit := s.cfg.OutboxBacklog
	ds, err := s.d.db.List(ctx, notify.Filter{States: []notify.State{notify.StatePending}, Limit: limit + 1})
	if err != nil {
		return "" // a store that cannot be read is store_write's to report
	}
	if len(ds) > limit {
		return fmt.Sprintf("more than %d notifications wait in the outbox; a receiver is down or slow (see /api/v1/deliveries)", limit)
	}
	if len(ds) > 0 {
		if age := now.Sub(ds[0].EnqueuedAt); age > s.cfg.OutboxOldest {
			return fmt.Sprintf("the oldest undelivered notification (to %s) has waited %s, over %s; last error: %s", ds[0].Receiver, age.Round(time.Second), s.cfg.OutboxOldest, ds[0].LastError)
		}
	}
	return ""
}

// listenerCert reads the API listener's certificate file and says how soon it
// expires, with the severity: P2 within cert_warn, P1 within a third of it.
func (s *selfChecker) listenerCert(now time.Time) (string, string) {
	file := s.d.cfg().API.TLSCertFile
	if file == "" {
		return "", ""
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "P1", fmt.Sprintf("the listener's certificate %s cannot be read: %v", file, err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil {
		return "P1", fmt.Sprintf("the listener's certificate %s holds no PEM block", file)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return "P1", fmt.Sprintf("the listener's certificate %s: %v", file, err)
	}
	left := cert.NotAfter.Sub(now)
	switch {
	case left <= s.cfg.CertWarn/3:
		return "P1", fmt.Sprintf("the listener's certificate %s expires %s (in %s); renew it and restart", file, cert.NotAfter.UTC().Format(time.RFC3339), left.Round(time.Minute))
	case left <= s.cfg.CertWarn:
		return "P2", fmt.Sprintf("the listener's certificate %s expires %s (in %s); renew it", file, cert.NotAfter.UTC().Format(time.RFC3339), left.Round(time.Minute))
	}
	return "", ""
}

// Status returns every check's state.
func (s *selfChecker) Status() SelfStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := SelfStatus{Healthy: true, At: s.at}
	for _, n := range selfCheckNames {
		c := s.state[n]
		out.Checks = append(out.Checks, c)
		if !c.OK && slices.Contains(heartbeatChecks, n) {
			out.Healthy = false
		}
	}
	return out
}

// SelfStatus returns the state of portpatrol's self-checks, as /-/self serves it.
func (d *Daemon) SelfStatus() SelfStatus { return d.self.Status() }

// runSelfChecks runs the checks every interval of the system clock until ctx ends:
// they watch the host's real time, whatever clock drives the rest.
func (d *Daemon) runSelfChecks(ctx context.Context) {
	tick := time.NewTicker(d.self.cfg.Interval)
	d.spawn(func() {
		defer tick.Stop()
		d.self.run(ctx)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				d.self.run(ctx)
			}
		}
	})
}

// serveSelf serves /-/self: the self-checks as JSON, 503 while portpatrol is not
// healthy, for the dashboard's header and for load balancers.
func (d *Daemon) serveSelf(w http.ResponseWriter, _ *http.Request) {
	st := d.self.Status()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !st.Healthy {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(st)
}

var (
	selfCheckDesc = prometheus.NewDesc("portpatrol_self_check", "1 while portpatrol's self-check passes, 0 while it fails (see docs/operations.md).", []string{"check"}, nil)
	selfHealthy   = prometheus.NewDesc("portpatrol_self_healthy", "1 while the scheduler is on time, results reach storage and the outbox drains: what the heartbeat sends on.", nil, nil)
	selfHeld      = prometheus.NewDesc("portpatrol_history_results_held", "Probe results held in memory after a failed write, to be written again.", nil, nil)
)

// Describe implements prometheus.Collector.
func (s *selfChecker) Describe(ch chan<- *prometheus.Desc) {
	ch <- selfCheckDesc
	ch <- selfHealthy
	ch <- selfHeld
}

// Collect implements prometheus.Collector.
func (s *selfChecker) Collect(ch chan<- prometheus.Metric) {
	st := s.Status()
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, c := range st.Checks {
		ch <- prometheus.MustNewConstMetric(selfCheckDesc, prometheus.GaugeValue, b2f(c.OK), c.Name)
	}
	ch <- prometheus.MustNewConstMetric(selfHealthy, prometheus.GaugeValue, b2f(st.Healthy))
	ch <- prometheus.MustNewConstMetric(selfHeld, prometheus.GaugeValue, float64(s.d.batch.Stats().Held))
}
