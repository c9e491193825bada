package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

// routedSink passes the alert engine's notifications to the outbox, keeping back those
// for receivers that are not configured (logged once per receiver) so that one missing
// receiver never blocks the rest.
type routedSink struct {
	next   alert.Sink
	known  []string
	logger *slog.Logger

	mu     sync.Mutex
	warned map[string]bool
}

func (s *routedSink) Enqueue(ctx context.Context, ns []patrol.Notification) error {
	keep := ns[:0:0]
	for _, n := range ns {
		if slices.Contains(s.known, n.Receiver) {
			keep = append(keep, n)
			continue
		}
		s.mu.Lock()
		if !s.warned[n.Receiver] {
			if s.warned == nil {
				s.warned = map[string]bool{}
			}
			s.warned[n.Receiver] = true
			if len(s.known) == 0 {
				// No receivers at all is a choice the start-up log already explained;
				// a warning per default receiver would blame a setting never made.
				s.logger.Debug("alert notifications are kept in the API only: no receivers are configured", "receiver", n.Receiver)
			} else {
				s.logger.Warn("alert notifications for a receiver that is not configured are kept in the API only",
					"receiver", n.Receiver, "hint", "add it under notify.receivers")
			}
		}
		s.mu.Unlock()
	}
	if len(keep) == 0 {
		return nil
	}
	return s.next.Enqueue(ctx, keep)
}

// flushAlerts saves what the alert engine observed since its last tick, so that nothing
// is lost when the engine is dropped: at Close, before a reload builds a new engine
// from the store, and when this replica stops leading.
func (d *Daemon) flushAlerts(ctx context.Context) error {
	eng := d.alerts.Load()
	if eng == nil {
		return nil
	}
	if err := eng.Flush(ctx); err != nil {
		return fmt.Errorf("save alerts: %w", err)
	}
	return nil
}

// engineCollector exports the alert engine's, the outbox's and the history writer's
// counts on scrape.
type engineCollector struct {
	alerts   func() *alert.Engine
	notifier func() *notify.Dispatcher
	batch    *store.BatchWriter
}

var (
	alertsDesc  = prometheus.NewDesc("portpatrol_alerts", "Alerts by state and severity.", []string{"state", "severity"}, nil)
	silenceDesc = prometheus.NewDesc("portpatrol_silences_active", "Active silences.", nil, nil)
	windowDesc  = prometheus.NewDesc("portpatrol_maintenance_windows_open", "Maintenance windows open now.", nil, nil)
	notifyDesc  = prometheus.NewDesc("portpatrol_notifications_total", "Notifications by provider and outcome.", []string{"provider", "outcome"}, nil)
	historyDesc = prometheus.NewDesc("portpatrol_history_results_total", "Probe results by what became of them on the way to storage.", []string{"outcome"}, nil)
)

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{alertsDesc, silenceDesc, windowDesc, notifyDesc, historyDesc} {
		ch <- d
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.alerts().Stats()
	for k, n := range st.Alerts {
		ch <- prometheus.MustNewConstMetric(alertsDesc, prometheus.GaugeValue, float64(n), string(k.State), k.Severity.String())
	}
	ch <- prometheus.MustNewConstMetric(silenceDesc, prometheus.GaugeValue, float64(st.Silences))
	ch <- prometheus.MustNewConstMetric(windowDesc, prometheus.GaugeValue, float64(st.Windows))
	for _, s := range c.notifier().Stats() {
		ch <- prometheus.MustNewConstMetric(notifyDesc, prometheus.CounterValue, float64(s.Count), s.Provider, string(s.Outcome))
	}
	b := c.batch.Stats()
	for _, o := range []struct {
		name string
		v    uint64
	}{{"written", b.Written}, {"dropped", b.Dropped}, {"failed", b.Failed}} {
		ch <- prometheus.MustNewConstMetric(historyDesc, prometheus.CounterValue, float64(o.v), o.name)
	}
}
