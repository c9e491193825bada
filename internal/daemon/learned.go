package daemon

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/hostwatch"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/postgres"
	"github.com/portpatrol/portpatrol/internal/sqlite"
)

// hostWiring is what the daemon keeps about the host watch's targets between two plans:
// which targets are listeners still being learned (probed, but their results raise no
// alert: learning decides paging, not probing) and the names of the watch's targets.
type hostWiring struct {
	learning atomic.Pointer[map[string]bool]
	names    atomic.Pointer[map[string]string]
	// identity is the configuration the daemon started with, whose host_name and
	// addresses name this host in every alert until the next start.
	identity atomic.Pointer[config.Config]
}

// hostLabel is the host label of host: host_name for every name and address of this
// host, host otherwise. Probes, the host watch, audits and certificate expiry all label
// with it, so grouping and inhibition see one machine.
func (d *Daemon) hostLabel(host string) string {
	if c := d.hw.identity.Load(); c != nil {
		return c.HostLabel(host)
	}
	return d.cfg().HostLabel(host)
}

// newWatch builds the host watch of cfg. The watch reads the daemon's clock, so forget_after
// and learn_after run on fake time in tests; its dump interval follows the system clock.
func (d *Daemon) newWatch(cfg *config.Config) *hostwatch.Watch {
	return hostwatch.New(hostwatch.Config{
		Store:       d.db,
		Sink:        hostwatch.SinkFunc(d.observeFinding),
		Host:        d.hostLabel(cfg.HostName),
		UDP:         cfg.HostWatch.UDP,
		Interval:    cfg.HostWatch.Interval,
		LearnAfter:  cfg.HostWatch.LearnAfter,
		ForgetAfter: cfg.HostWatch.ForgetAfter,
		Ignore:      cfg.HostWatchIgnore,
		Now:         d.clock.Now,
		Logger:      d.logger.With("component", "hostwatch"),
	})
}

// hostTargetName names a listener's target by its process: "mosquitto :1883", or
// ":1883" when the process is unknown.
func hostTargetName(l hostwatch.Listener) string {
	port := ":" + strconv.Itoa(int(l.Bind.Port()))
	if l.Process == "" {
		return port
	}
	return l.Process + " " + port
}

// addHostTargets adds a probe of every listener the host watch learns or has learned,
// through its bind address, named after its process; and records which of them are
// still being learned.
func (d *Daemon) addHostTargets(cfg *config.Config, specs []jobSpec) []jobSpec {
	if d.watch == nil {
		return specs
	}
	configured := make(map[string]bool, len(specs))
	for _, sp := range specs {
		configured[sp.target.ID] = true
	}
	learning, names := map[string]bool{}, map[string]string{}
	for _, l := range d.watch.Targets() {
		if l.Proto != "tcp" {
			continue
		}
		t, err := patrol.ParseTarget(l.Target)
		if err != nil {
			d.logger.Warn("host watch target", "target", l.Target, "err", err)
			continue
		}
		t.Interval, t.Timeout = cfg.Defaults.Interval, min(cfg.Defaults.Timeout, cfg.Defaults.Interval)
		t.Labels = map[string]string{"source": "host_watch"}
		if l.Process != "" {
			t.Labels["process"] = l.Process
		}
		if configured[t.ID] {
			continue // the configured target wins, and pages as configured
		}
		name := hostTargetName(l)
		names[t.ID] = name
		if l.State == hostwatch.StateLearning {
			learning[t.ID] = true
		}
		specs = append(specs, jobSpec{target: t, name: name, failure: cfg.Defaults.FailureThreshold, success: cfg.Defaults.SuccessThreshold})
	}
	d.hw.learning.Store(&learning)
	d.hw.names.Store(&names)
	return specs
}

// learningTarget reports whether target is a listener the host watch is still learning,
// whose results must not raise alerts. A configured target of the same ID is not.
func (d *Daemon) learningTarget(target string) bool {
	m := d.hw.learning.Load()
	return m != nil && (*m)[target]
}

// hostTargetNames returns the names of the host watch's targets by ID.
func (d *Daemon) hostTargetNames() map[string]string {
	if m := d.hw.names.Load(); m != nil {
		return *m
	}
	return nil
}

// learnedAPI is the API's view of the host watch; nil when it is disabled.
func (d *Daemon) learnedAPI(a *apiAdapter) api.Learned {
	if d.watch == nil {
		return nil
	}
	return a
}

var _ api.Learned = (*apiAdapter)(nil)

// Both stores write the host watch's learned set in one transaction.
var (
	_ hostwatch.BatchStore = (*sqlite.DB)(nil)
	_ hostwatch.BatchStore = (*postgres.DB)(nil)
)

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// LearnedListeners lists the host watch's listeners.
func (a *apiAdapter) LearnedListeners(context.Context) ([]api.LearnedListener, error) {
	ls := a.d.watch.List()
	out := make([]api.LearnedListener, 0, len(ls))
	for _, l := range ls {
		out = append(out, api.LearnedListener{
			Addr: l.Addr(), Port: int(l.Bind.Port()), Process: l.Process, PID: l.PID, State: string(l.State),
			FirstSeen: l.FirstSeen, LearnedAt: timePtr(l.LearnedAt), GoneSince: timePtr(l.GoneSince),
			LearnAt: timePtr(l.LearnAt), ForgetAt: timePtr(l.ForgetAt), TargetID: l.Target,
			Fate: string(l.Fate), Muted: l.Muted,
		})
	}
	return out, nil
}

// ForgetLearned forgets one learned listener.
func (a *apiAdapter) ForgetLearned(ctx context.Context, addr string) ([]string, error) {
	if _, err := hostwatch.ParseListener(addr); err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	id, err := a.d.watch.Forget(ctx, addr)
	switch {
	case errors.Is(err, hostwatch.ErrNotLearned):
		return nil, fmt.Errorf("%w: %v (see GET /api/v1/learned)", api.ErrNotFound, err)
	case err != nil:
		return nil, err
	}
	a.d.logger.Info("learned listener forgotten", "listener", id)
	return []string{addrOf(id)}, nil
}

// ForgetGoneLearned forgets every gone or retired learned listener.
func (a *apiAdapter) ForgetGoneLearned(ctx context.Context) ([]string, error) {
	ids, err := a.d.watch.ForgetGone(ctx)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = addrOf(id)
	}
	if len(ids) > 0 {
		a.d.logger.Info("gone learned listeners forgotten", "count", len(ids))
	}
	return out, err
}

// addrOf turns a listener ID ("tcp://127.0.0.1:1883") into the address the API and
// the CLI show ("127.0.0.1:1883"; UDP keeps its scheme).
func addrOf(id string) string {
	l, err := hostwatch.ParseListener(id)
	if err != nil {
		return id
	}
	return l.Addr()
}

// learnedResolved tells the host watch that the alert of target was resolved by hand,
// so a gone learned listener on it stays quiet, across restarts, until it listens
// again.
func (d *Daemon) learnedResolved(ctx context.Context, target string) {
	if d.watch == nil || target == "" {
		return
	}
	for _, l := range d.watch.Resolved(ctx, target) {
		d.logger.Info("gone learned listener muted by a hand resolve", "listener", l.ID(), "process", l.Process)
	}
}

// learnedHint is the hint of an alert about a learned listener that is gone: it may
// be forgotten.
func (d *Daemon) learnedHint(a patrol.Alert) string {
	if d.watch == nil || a.Target == "" {
		return ""
	}
	l, ok := d.watch.Lookup(a.Target)
	if !ok || l.State != hostwatch.StateGone && l.State != hostwatch.StateRetired {
		return ""
	}
	what := "is gone"
	switch {
	case l.State == hostwatch.StateRetired:
		what = "was retired"
	case l.Muted:
		what = "is gone; it stays quiet until it listens again"
	case !l.ForgetAt.IsZero():
		what = "is gone and its process exited; it will be retired at " + l.ForgetAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s is a learned listener (%s) that %s. If it is gone for good, forget it: portpatrol learned forget %s",
		l.Addr(), cmpOr(l.Process, "process unknown"), what, l.Addr())
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// quietExitedInterval is how often the alerts of gone listeners whose process exited
// are looked at.
const quietExitedInterval = 10 * time.Second

// quietExited acknowledges, in portpatrol's name, the firing alert of every learned
// listener that is gone with its process exited and not restarted: its one P0 has gone
// out, and neither reminders nor escalation follow while it waits to be retired. A
// listener whose process still runs or is being restarted keeps paging as any outage.
func (d *Daemon) quietExited(ctx context.Context) error {
	if d.watch == nil || !d.leading.Load() {
		return nil
	}
	var errs []error
	for _, l := range d.watch.List() {
		if l.State != hostwatch.StateGone || l.Fate != hostwatch.FateExited || l.Muted {
			continue
		}
		for _, a := range d.engine().List(alert.Filter{Target: l.Target, States: []patrol.AlertState{patrol.AlertFiring}}) {
			if a.Class != patrol.AlertUnreachable || !a.AckedAt.IsZero() {
				continue
			}
			note := fmt.Sprintf("%s is a learned listener whose process (%s) exited and was not restarted: no further pages. It is retired at %s (host_watch.forget_after) unless it listens again; to forget it now: portpatrol learned forget %s",
				l.Addr(), cmpOr(l.Process, "unknown"), l.ForgetAt.UTC().Format(time.RFC3339), l.Addr())
			err := d.withEngine(func(e *alert.Engine) error { return e.Ack(ctx, a.ID, "portpatrol", note) })
			if err != nil && !errors.Is(err, alert.ErrResolved) && !errors.Is(err, alert.ErrPending) {
				errs = append(errs, fmt.Errorf("acknowledge %s: %w", a.ID, err))
				continue
			}
			d.logger.Info("the alert of a gone learned listener whose process exited is acknowledged", "alert", a.ID, "listener", l.ID())
		}
	}
	return errors.Join(errs...)
}
