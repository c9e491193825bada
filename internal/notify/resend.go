package notify

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// resender remembers, for each receiver with a Resend interval, the active alerts it
// was last sent, and when, so Run can send them again before Alertmanager lets them
// lapse. It is rebuilt from the store's recent deliveries when Run starts.
type resender struct {
	mu     sync.Mutex
	active map[string]map[string]*resendEntry // receiver → alert fingerprint → entry
}

type resendEntry struct {
	alert patrol.Alert
	sent  time.Time
	lang  string
}

func newResender() *resender {
	return &resender{active: map[string]map[string]*resendEntry{}}
}

func alertKey(a patrol.Alert) string {
	if a.Fingerprint != "" {
		return a.Fingerprint
	}
	return a.ID
}

// observe records what n tells the receiver about its alerts.
func (r *resender) observe(receiver string, n patrol.Notification, at time.Time) {
	if n.Kind == patrol.NotifyTest || n.Kind == patrol.NotifyImpact {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.active[receiver]
	if m == nil {
		m = map[string]*resendEntry{}
		r.active[receiver] = m
	}
	for _, a := range n.Alerts {
		k := alertKey(a)
		if a.State == patrol.AlertResolved || n.Kind == patrol.NotifyResolved {
			delete(m, k)
			continue
		}
		m[k] = &resendEntry{alert: a, sent: at, lang: n.Lang}
	}
}

// due returns the receiver's active alerts last sent at least `every` before now,
// and marks them as sent at now.
func (r *resender) due(receiver string, every time.Duration, now time.Time) []patrol.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []patrol.Alert
	for _, e := range r.active[receiver] {
		if now.Sub(e.sent) >= every {
			out = append(out, e.alert)
			e.sent = now
		}
	}
	slices.SortFunc(out, func(a, b patrol.Alert) int {
		if a.StartsAt.Equal(b.StartsAt) {
			return strings.Compare(alertKey(a), alertKey(b))
		}
		return a.StartsAt.Compare(b.StartsAt)
	})
	return out
}

// seedResend rebuilds the resender from the deliveries of the last MaxAge: each
// receiver with a Resend interval gets the alerts its latest notifications left
// active. Resends are deliveries too, so an alert that has been firing for longer than
// MaxAge is still found.
func (d *Dispatcher) seedResend(ctx context.Context) {
	since := d.clock.Now().Add(-d.o.MaxAge)
	for _, name := range d.names {
		if d.receivers[name].Resend <= 0 {
			continue
		}
		var after int64
		for {
			ds, err := d.store.List(ctx, Filter{Receiver: name, Since: since, AfterSeq: after, Limit: 500})
			if err != nil {
				d.log.Error("notify: read deliveries to resend", "receiver", name, "err", err)
				break
			}
			for _, dl := range ds {
				d.resend.observe(name, dl.Notification, dl.EnqueuedAt)
				after = dl.Seq
			}
			if len(ds) < 500 {
				break
			}
		}
	}
}

// resendDue enqueues, for each receiver with a Resend interval, one reminder holding
// the active alerts not sent for that long.
func (d *Dispatcher) resendDue(ctx context.Context) {
	d.enqueuing.Lock()
	defer d.enqueuing.Unlock()
	now := d.clock.Now()
	var ns []patrol.Notification
	for _, name := range d.names {
		r := d.receivers[name]
		if r.Resend <= 0 {
			continue
		}
		alerts := d.resend.due(name, r.Resend, now)
		if len(alerts) == 0 {
			continue
		}
		ns = append(ns, patrol.Notification{
			Key:       "resend/" + now.UTC().Format(time.RFC3339Nano),
			Receiver:  name,
			Kind:      patrol.NotifyReminder,
			Alerts:    alerts,
			CreatedAt: now,
		})
	}
	if len(ns) == 0 {
		return
	}
	if err := d.enqueue(ctx, ns); err != nil && ctx.Err() == nil {
		d.log.Error("notify: enqueue resends", "err", err)
	}
}
