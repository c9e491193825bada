package config

import (
	"net/url"
	"slices"
	"time"
)

// SelfCheck sets the limits of portpatrol's checks of itself (docs/operations.md).
// The zero value checks every interval of 15s with the defaults below.
type SelfCheck struct {
	// Interval is how often the checks run (default 15s, at least 1s).
	Interval time.Duration `yaml:"interval"`
	// LagBudget is how late a probe may start before the scheduler counts as behind
	// (default 5s).
	LagBudget time.Duration `yaml:"lag_budget"`
	// OutboxBacklog is how many undelivered notifications the outbox may hold
	// (default 1000).
	OutboxBacklog int `yaml:"outbox_backlog"`
	// OutboxOldest is how long the oldest undelivered notification may wait (default
	// 10m).
	OutboxOldest time.Duration `yaml:"outbox_oldest"`
	// ClockJump is how far the wall clock may move against the monotonic clock
	// between two checks before it counts as a jump (default 30s).
	ClockJump time.Duration `yaml:"clock_jump"`
	// CertWarn is how long before its expiry the API listener's own certificate
	// raises a P2 (default 336h, 14 days); within a third of it, a P1.
	CertWarn time.Duration `yaml:"cert_warn"`
}

// The self-check defaults.
const (
	DefaultSelfCheckInterval = 15 * time.Second
	DefaultLagBudget         = 5 * time.Second
	DefaultOutboxBacklog     = 1000
	DefaultOutboxOldest      = 10 * time.Minute
	DefaultClockJump         = 30 * time.Second
	DefaultCertWarn          = 14 * 24 * time.Hour
	DefaultHeartbeatInterval = time.Minute
)

// WithDefaults returns s with its zero fields set to the defaults.
func (s SelfCheck) WithDefaults() SelfCheck {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&s.Interval, DefaultSelfCheckInterval)
	def(&s.LagBudget, DefaultLagBudget)
	def(&s.OutboxOldest, DefaultOutboxOldest)
	def(&s.ClockJump, DefaultClockJump)
	def(&s.CertWarn, DefaultCertWarn)
	if s.OutboxBacklog == 0 {
		s.OutboxBacklog = DefaultOutboxBacklog
	}
	return s
}

// Heartbeat is the dead man's switch: signals portpatrol sends only while it is
// healthy (its scheduler on time, results reaching the store, the outbox draining),
// so that their absence pages someone. The zero value sends none.
type Heartbeat struct {
	// Interval is how often a heartbeat is sent (default 1m, at least 1s).
	Interval time.Duration `yaml:"interval"`
	// Watchdog names a receiver (under notify.receivers) that gets an always-firing
	// alert every interval while portpatrol is healthy, Alertmanager's Watchdog
	// convention; the receiver's side pages when the messages stop.
	Watchdog HeartbeatWatchdog `yaml:"watchdog"`
	// Ping is a healthchecks.io / Cronitor style check URL: URL/start when the daemon
	// starts, URL every interval while healthy, URL/fail with the failing checks in the
	// body while not.
	Ping HeartbeatURL `yaml:"ping"`
	// PagerDuty is a PagerDuty heartbeat URL, requested every interval while healthy
	// and never while not: PagerDuty opens an incident when it stops.
	PagerDuty HeartbeatURL `yaml:"pagerduty"`
}

// HeartbeatWatchdog names the receiver of the Watchdog alert.
type HeartbeatWatchdog struct {
	Receiver string `yaml:"receiver"`
}

// HeartbeatURL is one URL a heartbeat requests.
type HeartbeatURL struct {
	// URL is http or https; it may hold a secret token, so it is never logged.
	URL string `yaml:"url"`
	// Timeout bounds one request (default 10s).
	Timeout time.Duration `yaml:"timeout"`
}

// Enabled reports whether any heartbeat is configured.
func (h Heartbeat) Enabled() bool {
	return h.Watchdog.Receiver != "" || h.Ping.URL != "" || h.PagerDuty.URL != ""
}

// resolveHeartbeat checks the self_check and heartbeat sections.
func (c *Config) resolveHeartbeat(at func(path, format string, args ...any)) {
	s := c.Source.SelfCheck
	for _, d := range []struct {
		path string
		v    time.Duration
	}{{"self_check.lag_budget", s.LagBudget}, {"self_check.outbox_oldest", s.OutboxOldest},
		{"self_check.clock_jump", s.ClockJump}, {"self_check.cert_warn", s.CertWarn}} {
		checkNotNegative(at, d.path, d.v)
	}
	if s.Interval < 0 || s.Interval > 0 && s.Interval < time.Second {
		at("self_check.interval", "must be at least 1s, got %s", s.Interval)
	}
	if s.OutboxBacklog < 0 {
		at("self_check.outbox_backlog", "must not be negative, got %d", s.OutboxBacklog)
	}
	h := c.Source.Heartbeat
	if h.Interval < 0 || h.Interval > 0 && h.Interval < time.Second {
		at("heartbeat.interval", "must be at least 1s, got %s", h.Interval)
	}
	if r := h.Watchdog.Receiver; r != "" {
		var names []string
		for _, rc := range c.Notify.Receivers {
			names = append(names, rc.Name)
		}
		if !slices.Contains(names, r) {
			at("heartbeat.watchdog.receiver", "%q is not a receiver under notify.receivers", r)
		}
	}
	for _, u := range []struct {
		path string
		v    HeartbeatURL
	}{{"heartbeat.ping", h.Ping}, {"heartbeat.pagerduty", h.PagerDuty}} {
		checkNotNegative(at, u.path+".timeout", u.v.Timeout)
		if u.v.URL == "" {
			if u.v.Timeout != 0 {
				at(u.path+".url", "empty; give the URL the timeout is for")
			}
			continue
		}
		p, err := url.Parse(u.v.URL)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			// The URL itself is not quoted: it usually holds a token.
			at(u.path+".url", "not an http or https URL with a host")
		}
	}
}
