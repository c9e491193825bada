package hostwatch

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// listener is what the watch knows of one bind: the sockets on it in the last dump,
// whether it is expected, and the state of its alerts.
type listener struct {
	key       key
	socks     []inventory.Socket // in the last dump; empty when missing
	owner     *inventory.Owner   // last known
	firstSeen time.Time          // when the watch first saw it (or stored it)
	since     time.Time          // start of its current unbroken presence
	gone      time.Time          // when it was first missed, while missing
	missed    int                // dumps in a row it has been missing from
	ignore    string             // why it is never learned; "" when it may be

	expected  bool
	learnedAt time.Time
	persisted bool

	// The life cycle of a learned listener that is gone.
	ident    ProcID    // its owner's identity, read when learned or when the owner changed
	identPID int       // the process ident was read from
	fate     Fate      // what became of its process, while gone
	forgetAt time.Time // when it is retired; zero while its process runs or restarts
	retired  bool      // gone for good: not probed, never pages
	muted    bool      // its alert was resolved by hand while it was gone

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

func (l *listener) pid() int {
	if l.owner == nil {
		return 0
	}
	return l.owner.PID
}

// State is where a listener is in its life cycle.
type State string

// The states of a listener: learning until it has lived LearnAfter, then learned
// (probed, and its loss pages); gone while a learned listener is missing; retired once
// it has been gone ForgetAfter with its process exited and not restarted.
const (
	StateLearning State = "learning"
	StateLearned  State = "learned"
	StateGone     State = "gone"
	StateRetired  State = "retired"
)

// Fate is what became of the process of a listener that is gone.
type Fate string

// The fates of a gone listener's process: still running without its listener,
// restarted (a new process of the same executable and cgroup started after the
// listener went), or exited for good, after which the listener is retired.
const (
	FateRunning    Fate = "running"
	FateRestarting Fate = "restarting"
	FateExited     Fate = "exited"
)

func (l *listener) state() State {
	switch {
	case !l.expected:
		return StateLearning
	case l.retired:
		return StateRetired
	case len(l.socks) == 0 && (l.missed > 0 || l.vanished || !l.gone.IsZero()):
		return StateGone
	}
	return StateLearned
}

// Listener is one listener the watch knows, as a probe target and as the operator sees
// it.
type Listener struct {
	// Proto is "tcp" or "udp".
	Proto string
	// Bind is the address and port it listens on.
	Bind netip.AddrPort
	// Target is the probe target: the bind address, or 127.0.0.1 / ::1 for a wildcard
	// bind ("tcp://127.0.0.1:6379").
	Target string
	// Process is the owner's command name, when known; PID its process ID, 0 when
	// unknown.
	Process string
	PID     int
	// State is its place in the life cycle.
	State State
	// FirstSeen is when the watch first saw it.
	FirstSeen time.Time
	// LearnAt is when a learning listener will be learned; zero otherwise.
	LearnAt time.Time
	// LearnedAt is when it became expected; zero while learning.
	LearnedAt time.Time
	// GoneSince is when a gone or retired listener was first missed.
	GoneSince time.Time
	// Fate is what became of a gone listener's process, once looked at.
	Fate Fate
	// ForgetAt is when a gone listener will be retired; zero while its process runs or
	// restarts, or when it is not gone.
	ForgetAt time.Time
	// Muted is true when its alert was resolved by hand while it was gone: it is not
	// probed and does not page until it listens again.
	Muted bool
	// Present is false while it is missing from the host's sockets.
	Present bool
}

// ID is "tcp://0.0.0.0:6379", as in the store and in public-bind subjects.
func (l Listener) ID() string { return l.Proto + "://" + l.Bind.String() }

// Addr is the bind address as the operator names it: "127.0.0.1:1883" for TCP,
// "udp://127.0.0.1:53" for UDP.
func (l Listener) Addr() string {
	if l.Proto == string(inventory.TCP) {
		return l.Bind.String()
	}
	return l.ID()
}

func (w *Watch) public(l *listener) Listener {
	out := Listener{
		Proto: string(l.key.proto), Bind: l.key.bind, Target: l.key.target(),
		Process: l.process(), PID: l.pid(), State: l.state(), FirstSeen: l.firstSeen,
		LearnedAt: l.learnedAt, Present: len(l.socks) > 0, Muted: l.muted,
	}
	switch out.State {
	case StateLearning:
		out.LearnAt = l.since.Add(w.learnAfter(l))
	case StateGone:
		out.GoneSince, out.Fate, out.ForgetAt = l.gone, l.fate, l.forgetAt
	case StateRetired:
		out.GoneSince, out.Fate = l.gone, l.fate
	}
	return out
}

// learnedValue is an expected listener as stored.
type learnedValue struct {
	Proto     string    `json:"proto"`
	Bind      string    `json:"bind"`
	Process   string    `json:"process,omitempty"`
	PID       int       `json:"pid,omitempty"`
	Ident     ProcID    `json:"ident,omitzero"`
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LearnedAt time.Time `json:"learned_at"`
	GoneSince time.Time `json:"gone_since,omitzero"`
	Fate      Fate      `json:"fate,omitempty"`
	ForgetAt  time.Time `json:"forget_at,omitzero"`
	Retired   bool      `json:"retired,omitempty"`
	Muted     bool      `json:"muted,omitempty"`
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
			owner:     &inventory.Owner{Command: v.Process, PID: v.PID},
			firstSeen: cmp.Or(v.FirstSeen, v.LearnedAt), ident: v.Ident, identPID: v.PID,
			gone: v.GoneSince, fate: v.Fate, forgetAt: v.ForgetAt, retired: v.Retired, muted: v.Muted,
		}
		n++
	}
	if n > 0 {
		w.notify()
	}
	return nil
}

func (l *listener) value() learnedValue {
	return learnedValue{
		Proto: string(l.key.proto), Bind: l.key.bind.String(),
		Process: l.process(), PID: l.pid(), Ident: l.ident, FirstSeen: l.firstSeen, LearnedAt: l.learnedAt,
		GoneSince: l.gone, Fate: l.fate, ForgetAt: l.forgetAt, Retired: l.retired, Muted: l.muted,
	}
}

// Targets returns the listeners to probe, sorted by target, one per target: those
// being learned (probing starts at once; learning decides paging, not probing) and the
// learned ones, gone ones included, but not those retired, ignored, or gone with their
// alert resolved by hand.
func (w *Watch) Targets() []Listener {
	w.mu.Lock()
	out := make([]Listener, 0, len(w.ls))
	for _, l := range w.ls {
		if l.ignore != "" && !l.expected {
			continue
		}
		p := w.public(l)
		if p.State == StateRetired || p.State == StateGone && l.muted {
			continue
		}
		out = append(out, p)
	}
	w.mu.Unlock()
	slices.SortFunc(out, func(a, b Listener) int {
		// A learned listener wins over one being learned on the same target.
		return cmp.Or(cmp.Compare(a.Target, b.Target), b2i(a.State == StateLearning)-b2i(b.State == StateLearning), a.Bind.Compare(b.Bind))
	})
	return slices.CompactFunc(out, func(a, b Listener) bool { return a.Target == b.Target })
}

// List returns every listener the watch knows but the ignored ones, learning,
// learned, gone and retired, sorted by protocol and bind.
func (w *Watch) List() []Listener {
	w.mu.Lock()
	out := make([]Listener, 0, len(w.ls))
	for _, l := range w.ls {
		if l.ignore != "" && !l.expected {
			continue
		}
		out = append(out, w.public(l))
	}
	w.mu.Unlock()
	slices.SortFunc(out, func(a, b Listener) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto), a.Bind.Compare(b.Bind))
	})
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Changes returns a channel that receives a value after the expected set changes
// (loaded, a listener learned or forgotten). Notifications coalesce: read Targets after
// each. It is meant for one reader.
func (w *Watch) Changes() <-chan struct{} { return w.changes }

// Forget removes the listener bound at bind from the expected set, clears its alerts,
// and records that in the store. bind is "127.0.0.1:6379" (TCP, then UDP) or
// "tcp://0.0.0.0:6379" as in the store and in public-bind subjects. It is how an
// operator retires a service for good. A listener still present is learned again after
// LearnAfter. It returns the listener's ID.
func (w *Watch) Forget(ctx context.Context, bind string) (string, error) {
	k, err := w.lookupKey(bind)
	if err != nil {
		return "", err
	}
	if err := w.forget(ctx, k); err != nil {
		return "", err
	}
	if err := w.saver.flush(ctx); err != nil {
		return "", fmt.Errorf("forget %s: %w (kept and retried)", k.id(), err)
	}
	return k.id(), nil
}

// ErrNotLearned is returned by Forget for a listener that is not learned.
var ErrNotLearned = errors.New("not a learned listener")

// lookupKey parses bind; a bare "ADDR:PORT" is the TCP listener there, or the UDP one
// when only that one is known.
func (w *Watch) lookupKey(bind string) (key, error) {
	if strings.Contains(bind, "://") {
		return parseKey(bind)
	}
	ap, err := netip.ParseAddrPort(bind)
	if err != nil {
		return key{}, fmt.Errorf("listener %q: want ADDR:PORT (127.0.0.1:1883, [::1]:53) or udp://ADDR:PORT", bind)
	}
	k := key{inventory.TCP, ap}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ls[k] == nil && w.ls[key{inventory.UDP, ap}] != nil {
		k.proto = inventory.UDP
	}
	return k, nil
}

// forget forgets k and queues the change for the store; the caller flushes it.
func (w *Watch) forget(ctx context.Context, k key) error {
	now := w.cfg.Now()
	w.mu.Lock()
	l := w.ls[k]
	if l == nil || !l.expected {
		w.mu.Unlock()
		return fmt.Errorf("forget %s: %w", k.id(), ErrNotLearned)
	}
	var evs []patrol.Finding
	if !l.muted && !l.retired {
		w.clearAlerts(l, now, "it was removed from the expected listeners", &evs)
	}
	if len(l.socks) == 0 {
		delete(w.ls, k)
	} else {
		*l = listener{key: k, socks: l.socks, owner: l.owner, firstSeen: now, since: now}
	}
	v := learnedValue{Proto: string(k.proto), Bind: k.bind.String(), Forgotten: true}
	w.mu.Unlock()
	w.emit(ctx, evs)
	w.notify()
	w.saver.save(v)
	return nil
}

// ForgetGone forgets every learned listener that is gone or retired, and returns
// their IDs ("tcp://127.0.0.1:1883").
func (w *Watch) ForgetGone(ctx context.Context) ([]string, error) {
	w.mu.Lock()
	var ks []key
	for k, l := range w.ls {
		if st := l.state(); st == StateGone || st == StateRetired {
			ks = append(ks, k)
		}
	}
	w.mu.Unlock()
	slices.SortFunc(ks, func(a, b key) int { return cmp.Compare(a.id(), b.id()) })
	out := make([]string, 0, len(ks))
	var errs []error
	for _, k := range ks {
		if err := w.forget(ctx, k); err != nil {
			if !errors.Is(err, ErrNotLearned) { // forgotten meanwhile
				errs = append(errs, err)
			}
			continue
		}
		out = append(out, k.id())
	}
	if len(out) > 0 {
		// All of them in one write.
		if err := w.saver.flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("forget %d listeners: %w (kept and retried)", len(out), err))
		}
	}
	return out, errors.Join(errs...)
}

// Resolved tells the watch that an operator resolved the alert of target by hand. A
// learned listener on it that is gone is muted: it is no longer probed and pages no
// more, across restarts, until it listens again. It returns the muted listeners.
func (w *Watch) Resolved(ctx context.Context, target string) []Listener {
	w.mu.Lock()
	var out []Listener
	var vs []learnedValue
	for _, l := range w.ls {
		if l.key.target() != target || l.state() != StateGone || l.muted {
			continue
		}
		l.muted = true // cleared by hand: no new vanished alert while it stays gone
		out = append(out, w.public(l))
		vs = append(vs, l.value())
	}
	w.mu.Unlock()
	if len(out) > 0 {
		w.saver.save(vs...)
		w.notify()
	}
	return out
}

// Lookup returns the listener with target as its probe target, preferring a learned
// one; false when there is none.
func (w *Watch) Lookup(target string) (Listener, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var best *listener
	for _, l := range w.ls {
		if l.key.target() == target && (l.ignore == "" || l.expected) && (best == nil || l.expected && !best.expected) {
			best = l
		}
	}
	if best == nil {
		return Listener{}, false
	}
	return w.public(best), true
}

// ParseListener parses a listener's address as Forget takes it: "127.0.0.1:1883" (TCP)
// or "tcp://0.0.0.0:6379", "udp://127.0.0.1:53". Only Proto and Bind are set.
func ParseListener(s string) (Listener, error) {
	var k key
	var err error
	if strings.Contains(s, "://") {
		k, err = parseKey(s)
	} else {
		var ap netip.AddrPort
		if ap, err = netip.ParseAddrPort(s); err != nil {
			err = fmt.Errorf("listener %q: want ADDR:PORT (127.0.0.1:1883, [::1]:53) or udp://ADDR:PORT", s)
		}
		k = key{inventory.TCP, ap}
	}
	if err != nil {
		return Listener{}, err
	}
	return Listener{Proto: string(k.proto), Bind: k.bind, Target: k.target()}, nil
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
