package hostwatch

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

// listener is what the watch knows of one bind: the sockets on it in the last dump,
// whether it is expected, and the state of its alerts.
type listener struct {
	key    key
	socks  []inventory.Socket // in the last dump; empty when missing
	owner  *inventory.Owner   // last known
	since  time.Time          // start of its current unbroken presence
	gone   time.Time          // when it was first missed, while missing
	missed int                // dumps in a row it has been missing from

	expected  bool
	learnedAt time.Time
	persisted bool

	vanished  bool
	queue     bool // accept-queue alert active
	queueHigh int
	queueCalm int
	overflow  int64 // overflows attributed to it in the last dump
	full      bool  // its queue was full in the last dump
	files     bool  // open-files alert active
	public    string

	// From the last detail dump.
	established       int
	bytesIn, bytesOut uint64
	res               inventory.Resources
	resOK             bool
}

func (l *listener) process() string {
	if l.owner == nil {
		return ""
	}
	return l.owner.Command
}

// Listener is one expected listener, as a probe target.
type Listener struct {
	// Proto is "tcp" or "udp".
	Proto string
	// Bind is the address and port it listens on.
	Bind netip.AddrPort
	// Target is the probe target: the bind address, or 127.0.0.1 / ::1 for a wildcard
	// bind ("tcp://127.0.0.1:6379").
	Target string
	// Process is the owner's command name, when known.
	Process string
	// LearnedAt is when it became expected.
	LearnedAt time.Time
	// Present is false while it is missing from the host's sockets.
	Present bool
}

// learnedValue is an expected listener as stored.
type learnedValue struct {
	Proto     string    `json:"proto"`
	Bind      string    `json:"bind"`
	Process   string    `json:"process,omitempty"`
	LearnedAt time.Time `json:"learned_at"`
	// Forgotten marks a listener removed from the expected set (the store has no
	// delete).
	Forgotten bool `json:"forgotten,omitempty"`
}

// load reads the expected set from the store. Loaded listeners are expected at once:
// one missing from the first dumps is reported vanished after ConfirmTicks dumps.
func (w *Watch) load(ctx context.Context) error {
	if w.cfg.Store == nil {
		return nil
	}
	ls, err := w.cfg.Store.ListLearned(ctx, Namespace)
	if err != nil {
		return fmt.Errorf("load expected listeners: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, l := range ls {
		var v learnedValue
		if err := json.Unmarshal(l.Value, &v); err != nil {
			w.log.Warn("skip stored expected listener", "key", l.Key, "err", err)
			continue
		}
		if v.Forgotten {
			continue
		}
		bind, err := netip.ParseAddrPort(v.Bind)
		if err != nil || (v.Proto != string(inventory.TCP) && v.Proto != string(inventory.UDP)) {
			w.log.Warn("skip stored expected listener", "key", l.Key, "proto", v.Proto, "bind", v.Bind)
			continue
		}
		k := key{inventory.Proto(v.Proto), bind}
		w.ls[k] = &listener{
			key: k, expected: true, learnedAt: v.LearnedAt, persisted: true,
			owner: &inventory.Owner{Command: v.Process},
		}
		n++
	}
	if n > 0 {
		w.notify()
	}
	return nil
}

// persist stores newly expected listeners. A listener that cannot be stored stays
// expected in memory and is tried again on the next detail dump.
func (w *Watch) persist(ctx context.Context, ls []learnedValue) {
	if w.cfg.Store == nil {
		return
	}
	for _, v := range ls {
		b, err := json.Marshal(v)
		if err != nil {
			continue
		}
		id := v.Proto + "://" + v.Bind
		err = w.cfg.Store.PutLearned(ctx, store.Learned{Namespace: Namespace, Key: id, Value: b})
		if err != nil {
			w.log.Warn("store expected listener", "listener", id, "err", err)
			continue
		}
		if v.Forgotten {
			continue
		}
		bind, _ := netip.ParseAddrPort(v.Bind)
		w.mu.Lock()
		if l := w.ls[key{inventory.Proto(v.Proto), bind}]; l != nil && l.expected {
			l.persisted = true
		}
		w.mu.Unlock()
	}
}

func (l *listener) value() learnedValue {
	return learnedValue{
		Proto: string(l.key.proto), Bind: l.key.bind.String(),
		Process: l.process(), LearnedAt: l.learnedAt,
	}
}

// Targets returns the expected listeners as probe targets, sorted by target, one per
// target. A listener reported vanished stays in the set.
func (w *Watch) Targets() []Listener {
	w.mu.Lock()
	out := make([]Listener, 0, len(w.ls))
	for _, l := range w.ls {
		if !l.expected {
			continue
		}
		out = append(out, Listener{
			Proto: string(l.key.proto), Bind: l.key.bind, Target: l.key.target(),
			Process: l.process(), LearnedAt: l.learnedAt, Present: len(l.socks) > 0,
		})
	}
	w.mu.Unlock()
	slices.SortFunc(out, func(a, b Listener) int {
		return cmp.Or(cmp.Compare(a.Target, b.Target), a.Bind.Compare(b.Bind))
	})
	return slices.CompactFunc(out, func(a, b Listener) bool { return a.Target == b.Target })
}

// Changes returns a channel that receives a value after the expected set changes
// (loaded, a listener learned or forgotten). Notifications coalesce: read Targets after
// each. It is meant for one reader.
func (w *Watch) Changes() <-chan struct{} { return w.changes }

// Forget removes the listener bound at bind ("tcp://0.0.0.0:6379", as in the store and
// in public-bind subjects) from the expected set, clears its alerts, and records that
// in the store. It is how an operator retires a service for good. A listener still
// present is learned again after LearnAfter.
func (w *Watch) Forget(ctx context.Context, bind string) error {
	k, err := parseKey(bind)
	if err != nil {
		return err
	}
	now := w.cfg.Now()
	w.mu.Lock()
	l := w.ls[k]
	if l == nil || !l.expected {
		w.mu.Unlock()
		return fmt.Errorf("forget %s: not an expected listener", bind)
	}
	var evs []patrol.Finding
	w.clearAlerts(l, now, "it was removed from the expected listeners", &evs)
	if len(l.socks) == 0 {
		delete(w.ls, k)
	} else {
		l.expected, l.learnedAt, l.persisted, l.since = false, time.Time{}, false, now
	}
	v := learnedValue{Proto: string(k.proto), Bind: k.bind.String(), Forgotten: true}
	w.mu.Unlock()
	w.emit(ctx, evs)
	w.notify()
	if w.cfg.Store == nil {
		return nil
	}
	b, _ := json.Marshal(v)
	if err := w.cfg.Store.PutLearned(ctx, store.Learned{Namespace: Namespace, Key: k.id(), Value: b}); err != nil {
		return fmt.Errorf("forget %s: %w", bind, err)
	}
	return nil
}

// parseKey parses "tcp://ADDR:PORT" or "udp://ADDR:PORT".
func parseKey(s string) (key, error) {
	for _, p := range []inventory.Proto{inventory.TCP, inventory.UDP} {
		rest, ok := strings.CutPrefix(s, string(p)+"://")
		if !ok {
			continue
		}
		ap, err := netip.ParseAddrPort(rest)
		if err != nil {
			return key{}, fmt.Errorf("listener %q: %w", s, err)
		}
		return key{p, ap}, nil
	}
	return key{}, fmt.Errorf("listener %q: want tcp://ADDR:PORT or udp://ADDR:PORT", s)
}
