package daemon

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// heartbeat is the dead man's switch: every interval of the daemon's clock it looks at
// the self-checks and, while portpatrol is healthy, sends its signals (the Watchdog
// alert, the ping, the PagerDuty heartbeat); while it is not, the ping goes to /fail
// with the failing checks and the others stop, so the receiving side pages.
type heartbeat struct {
	d      *Daemon
	cfg    config.Heartbeat
	client *http.Client
	sent   *prometheus.CounterVec // by kind and outcome
}

// heartbeatRuleWatchdog is the rule (and Alertmanager alertname) of the Watchdog alert.
const heartbeatRuleWatchdog = "Watchdog"

// runHeartbeat starts the heartbeat when the configuration asks for one.
func (d *Daemon) runHeartbeat(ctx context.Context) {
	cfg := d.cfg().Heartbeat
	if !cfg.Enabled() {
		return
	}
	if cfg.Interval <= 0 {
		cfg.Interval = config.DefaultHeartbeatInterval
	}
	h := &heartbeat{d: d, cfg: cfg, client: &http.Client{},
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portpatrol_heartbeats_total",
			Help: "Heartbeat signals sent, by kind (watchdog, ping, ping_fail, ping_start, pagerduty) and outcome (ok, error)."},
			[]string{"kind", "outcome"})}
	if err := d.metrics.Registry.Register(h.sent); err != nil {
		d.logger.Warn("heartbeat metrics", "err", err)
	}
	tick, stop := d.clock.NewTicker(cfg.Interval)
	d.spawn(func() {
		defer stop()
		if cfg.Ping.URL != "" {
			h.request(ctx, "ping_start", cfg.Ping, "/start", "portpatrol started\n")
		}
		h.beat(ctx)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick:
				h.beat(ctx)
			}
		}
	})
}

// beat sends one round of signals, as the self-checks stand.
func (h *heartbeat) beat(ctx context.Context) {
	st := h.d.self.Status()
	if !st.Healthy {
		if h.cfg.Ping.URL != "" {
			var b strings.Builder
			b.WriteString("portpatrol is not healthy:\n")
			for _, c := range st.Failing(heartbeatChecks) {
				fmt.Fprintf(&b, "%s (%s): %s\n", c.Name, c.Severity, c.Detail)
			}
			h.request(ctx, "ping_fail", h.cfg.Ping, "/fail", b.String())
		}
		return
	}
	if h.cfg.Ping.URL != "" {
		h.request(ctx, "ping", h.cfg.Ping, "", "portpatrol is healthy\n")
	}
	if h.cfg.PagerDuty.URL != "" {
		h.request(ctx, "pagerduty", h.cfg.PagerDuty, "", "")
	}
	if r := h.cfg.Watchdog.Receiver; r != "" {
		h.watchdog(ctx, r)
	}
}

// watchdog puts the always-firing Watchdog alert in the outbox for receiver, under a
// key of its own per beat: it arrives only while the outbox drains.
func (h *heartbeat) watchdog(ctx context.Context, receiver string) {
	now := h.d.clock.Now()
	host := h.d.cfg().HostName
	a := patrol.Alert{
		ID: "watchdog@" + host, Fingerprint: "self:watchdog/" + host, Rule: heartbeatRuleWatchdog, Class: patrol.AlertSelf,
		Severity: patrol.P3, State: patrol.AlertFiring, Target: "portpatrol@" + host,
		Labels:  map[string]string{"alertname": heartbeatRuleWatchdog, "host": host},
		Summary: "Watchdog: portpatrol on " + host + " is healthy. This alert always fires; page when it stops arriving.",
		Description: "The dead man's switch of portpatrol (docs/operations.md): sent every " + h.cfg.Interval.String() +
			" while the scheduler is on time, results reach storage and the outbox drains.",
		StartsAt: now, FiredAt: now,
	}
	n := patrol.Notification{Key: fmt.Sprintf("watchdog/%s/%d", host, now.UnixNano()), Receiver: receiver,
		Kind: patrol.NotifyFiring, Alerts: []patrol.Alert{a}, CreatedAt: now}
	outcome := "ok"
	if err := h.d.gen.Load().notifier.Enqueue(ctx, []patrol.Notification{n}); err != nil {
		outcome = "error"
		if ctx.Err() == nil {
			h.d.logger.Warn("heartbeat: enqueue the Watchdog alert", "receiver", receiver, "err", err)
		}
	}
	h.sent.WithLabelValues("watchdog", outcome).Inc()
}

// request POSTs body to u.URL+suffix. The URL is never logged: it usually holds the
// check's secret.
func (h *heartbeat) request(ctx context.Context, kind string, u config.HeartbeatURL, suffix, body string) {
	timeout := u.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(u.URL, "/")+suffix, strings.NewReader(body))
		if err != nil {
			return fmt.Errorf("build the request")
		}
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		req.Header.Set("User-Agent", "portpatrol-heartbeat")
		resp, err := h.client.Do(req)
		if err != nil {
			// The error quotes the URL: keep only what went wrong.
			if ue, ok := err.(interface{ Unwrap() error }); ok && ue.Unwrap() != nil {
				return ue.Unwrap()
			}
			return fmt.Errorf("request failed")
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("answered %s", resp.Status)
		}
		return nil
	}()
	outcome := "ok"
	if err != nil {
		outcome = "error"
		if ctx.Err() == nil || ctx.Err() == context.DeadlineExceeded {
			h.d.logger.Warn("heartbeat not delivered", "kind", kind, "err", err)
		}
	}
	h.sent.WithLabelValues(kind, outcome).Inc()
}
