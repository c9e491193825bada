package alert

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// group batches the notifications of one receiver for alerts with the same group
// labels.
type group struct {
	receiver string
	key      string // "host=10.0.0.5"; the alert ID when every alert is alone
	// impact groups hold the impact notices of one audience; key is the audience.
	impact bool
	// items wait in the order they came; has holds the same items, so that an item
	// owed again is found without walking a group of many alerts.
	items   []item
	has     map[item]struct{}
	flushAt time.Time
	// lastFlush is when the group last sent; flushed reports it ever did.
	lastFlush time.Time
	flushed   bool
}

// item is one owed notification of one alert waiting in a group.
type item struct {
	id   string
	kind patrol.NotificationKind
	seq  int
}

// kindOrder is the order of the notifications one group flush sends.
var kindOrder = []patrol.NotificationKind{patrol.NotifyResolved, patrol.NotifyAck, patrol.NotifyFiring,
	patrol.NotifyEscalation, patrol.NotifyReminder, patrol.NotifyFlapping, patrol.NotifyImpact}

// groupKey returns the key of the group an alert belongs to.
func (e *Engine) groupKey(a *patrol.Alert) string {
	if e.cfg.groupNone {
		return a.ID
	}
	get := labelGetter(a)
	var b strings.Builder
	for i, n := range e.cfg.groupBy {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(get(n))
	}
	return b.String()
}

// enqueue puts one owed notification into its receiver's group. A new group waits
// group_wait; a group that sent recently waits until group_interval after that.
func (e *Engine) enqueue(ent *entry, k patrol.NotificationKind, seq int, receiver string, now time.Time) {
	key, impact := e.groupKey(&ent.Alert), k == patrol.NotifyImpact
	gid := receiver + "\x00" + key
	if impact {
		// Impact notices are grouped by audience, whatever group_by says: one
		// outage of many ports is one notice to a customer.
		key = ent.ImpactAudience
		gid = receiver + "\x00impact\x00" + key
	}
	g := e.groups[gid]
	if g == nil {
		g = &group{receiver: receiver, key: key, impact: impact}
		e.groups[gid] = g
	}
	it := item{id: ent.Alert.ID, kind: k, seq: seq}
	if _, ok := g.has[it]; ok {
		return
	}
	if g.has == nil {
		g.has = map[item]struct{}{}
	}
	g.has[it] = struct{}{}
	if len(g.items) == 0 {
		if g.flushed {
			g.flushAt = later(now, g.lastFlush.Add(e.cfg.groupInterval))
		} else {
			g.flushAt = now.Add(e.cfg.groupWait)
		}
	}
	g.items = append(g.items, it)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// valid reports whether a waiting item is still owed to the group's receiver.
func (e *Engine) valid(it item, receiver string) (*entry, bool) {
	ent := e.alerts[it.id]
	if ent == nil {
		return nil, false
	}
	if paging(it.kind) && (ent.Alert.MutedBy != "" || ent.base() != patrol.AlertFiring) {
		return nil, false
	}
	for _, o := range ent.Owed {
		if o.Kind == it.kind && o.Seq == it.seq && slices.Contains(o.Receivers, receiver) {
			return ent, true
		}
	}
	return nil, false
}

// flush sends every group whose time has come, in one call to the sink.
func (e *Engine) flush(ctx context.Context, now time.Time) error {
	type sent struct {
		g     *group
		items []item
	}
	var (
		due   []sent
		batch []patrol.Notification
	)
	for _, gid := range slices.Sorted(maps.Keys(e.groups)) {
		g := e.groups[gid]
		if len(g.items) == 0 || now.Before(g.flushAt) {
			continue
		}
		var ok []item
		byKind := map[patrol.NotificationKind][]item{}
		for _, it := range g.items {
			if _, v := e.valid(it, g.receiver); v {
				ok = append(ok, it)
				byKind[it.kind] = append(byKind[it.kind], it)
			}
		}
		if len(ok) == 0 {
			g.items = nil
			clear(g.has)
			continue
		}
		due = append(due, sent{g, ok})
		for _, k := range kindOrder {
			its := byKind[k]
			if len(its) == 0 {
				continue
			}
			slices.SortFunc(its, func(a, b item) int { return cmp.Or(cmp.Compare(a.id, b.id), cmp.Compare(a.seq, b.seq)) })
			n := patrol.Notification{Receiver: g.receiver, Kind: k, CreatedAt: now, Alerts: make([]patrol.Alert, 0, len(its))}
			for _, it := range its {
				if g.impact {
					n.Alerts = append(n.Alerts, publicAlert(e.alerts[it.id]))
				} else {
					n.Alerts = append(n.Alerts, e.snapshot(e.alerts[it.id]))
				}
			}
			switch {
			case g.impact:
				n.Group = g.key
				h := fnv.New64a()
				for _, it := range its {
					fmt.Fprintf(h, "%s/%d\x00", it.id, it.seq)
				}
				n.Key = fmt.Sprintf("impact/%s/%s/%016x", g.key, g.receiver, h.Sum64())
			case e.cfg.groupNone:
				n.Key = fmt.Sprintf("%s/%s/%d/%s", its[0].id, k, its[0].seq, g.receiver)
			default:
				n.Group = g.key
				h := fnv.New64a()
				for _, it := range its {
					fmt.Fprintf(h, "%s/%d\x00", it.id, it.seq)
				}
				n.Key = fmt.Sprintf("group/%s/%s/%s/%016x", g.key, k, g.receiver, h.Sum64())
			}
			batch = append(batch, n)
		}
	}
	if len(batch) == 0 {
		return nil
	}
	if err := e.sink.Enqueue(ctx, batch); err != nil {
		e.sinkErrors++
		for _, d := range due {
			d.g.flushAt = now.Add(sinkRetry)
		}
		return fmt.Errorf("enqueue %d notifications: %w", len(batch), err)
	}
	e.sent += uint64(len(batch))
	for _, d := range due {
		for _, it := range d.items {
			e.commit(e.alerts[it.id], it.kind, it.seq, d.g.receiver, now)
		}
		for _, it := range d.items {
			delete(d.g.has, it)
		}
		d.g.items = slices.DeleteFunc(d.g.items, func(it item) bool {
			if _, waiting := d.g.has[it]; !waiting {
				return true // sent
			}
			if _, ok := e.valid(it, d.g.receiver); !ok {
				delete(d.g.has, it)
				return true
			}
			return false
		})
		d.g.lastFlush, d.g.flushed = now, true
	}
	return nil
}
