package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/store"
)

// auditHeadEvery is how often the chain's head is logged, for an external system to
// pin.
const auditHeadEvery = time.Hour

// newAuditLog makes the audit chain over the store and publishes its head on
// /metrics; it returns nil when the store keeps no chain.
func (d *Daemon) newAuditLog() *auditlog.Log {
	s, ok := d.db.(store.AuditChainStore)
	if !ok {
		return nil
	}
	l, err := auditlog.New(auditlog.Config{Store: s, Now: d.clock.Now})
	if err != nil {
		return nil
	}
	// So that Head is the stored one from the start; Run logs it, or why it failed.
	_, _ = l.Refresh(d.ctx)
	d.metrics.Registry.MustRegister(&auditChainCollector{log: l})
	return l
}

// AuditLog returns the hash-chained log that automation records its decisions in, or
// nil when the store keeps none. It is safe for concurrent use.
func (d *Daemon) AuditLog() *auditlog.Log { return d.auditLog }

// runAuditLog logs the chain's head when Run starts and every hour of the daemon's
// clock after, so that an external system can pin it (audit-log verify --pin).
func (d *Daemon) runAuditLog(ctx context.Context) {
	if d.auditLog == nil {
		return
	}
	if err := d.logAuditHead(ctx); err != nil {
		d.logger.Warn("audit chain head", "err", err)
	}
	d.every(ctx, auditHeadEvery, "audit chain head", func(time.Time) error { return d.logAuditHead(ctx) })
}

func (d *Daemon) logAuditHead(ctx context.Context) error {
	h, err := d.auditLog.Refresh(ctx)
	if err != nil {
		return err
	}
	d.logger.Info("audit chain head", "entries", h.Seq, "hash", h.Hash, "pin", fmt.Sprintf("%d:%s", h.Seq, h.Hash))
	return nil
}

// auditChainCollector exports the chain's head on scrape, read from the store, since
// other instances sharing it append too.
type auditChainCollector struct{ log *auditlog.Log }

var (
	auditEntriesDesc = prometheus.NewDesc("portpatrol_audit_chain_entries",
		"Entries in the audit chain of automation decisions: the sequence number of its head.", nil, nil)
	auditHeadDesc = prometheus.NewDesc("portpatrol_audit_chain_head_info",
		"The hash of the audit chain's head, to pin (audit-log verify --pin ENTRIES:HASH); absent while the chain is empty.", []string{"hash"}, nil)
)

func (c *auditChainCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- auditEntriesDesc
	ch <- auditHeadDesc
}

func (c *auditChainCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	h, err := c.log.Refresh(ctx)
	if err != nil {
		h = c.log.Head() // the last one seen, rather than no figure at all
	}
	ch <- prometheus.MustNewConstMetric(auditEntriesDesc, prometheus.GaugeValue, float64(h.Seq))
	if h.Seq > 0 {
		ch <- prometheus.MustNewConstMetric(auditHeadDesc, prometheus.GaugeValue, 1, h.Hash)
	}
}
