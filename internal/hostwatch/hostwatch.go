// Package hostwatch keeps watch over the local host's own listening sockets, the watch
// that `portpatrol serve` runs with no configuration. Every few hundred milliseconds it
// takes a LISTEN-only dump of the socket inventory and compares it with the previous
// one. A listener that has lived long enough becomes expected; an expected listener
// that disappears raises a P0 within a second, an accept queue near its backlog or
// owner near its open-files limit raises a P2, and a well-known internal service bound
// to a public address raises a configuration finding. Listeners that come and go
// before they are learned are not paged.
//
// A learned listener has a life cycle: learning, learned, gone, retired. A gone
// listener whose process exited, and was not restarted (no new process of the same
// executable and cgroup), is retired after ForgetAfter: its one P0 is cleared and it
// is neither probed nor paged again. An alert resolved by hand while its listener is
// gone mutes the listener until it listens again. Ignore keeps ports, programs and
// cgroups from being learned at all.
//
// The watch reports what it finds as patrol.Findings to a Sink, exposes the expected listeners
// as probe targets, and exports what it sees as Prometheus metrics.
package hostwatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

// ownerRetry is how often the owner of a socket not found is searched for again.
const ownerRetry = time.Minute

// Namespace is the learned-store namespace that holds the expected listeners.
const Namespace = "hostwatch.expected"

// Source reads the host's sockets. *inventory.Inventory is one; tests feed synthetic
// sockets through their own.
type Source interface {
	// Listeners returns the listening sockets f selects, enriched as f asks.
	Listeners(ctx context.Context, f inventory.Filter) ([]inventory.Socket, error)
	// Owners finds the processes holding the sockets with these inodes.
	Owners(ctx context.Context, inodes []uint64) (map[uint64]inventory.Owner, error)
	// Counters reads the kernel's listen-queue counters.
	Counters() (inventory.Counters, error)
	// Resources reads what process pid uses.
	Resources(pid int) (inventory.Resources, error)
}

var _ Source = (*inventory.Inventory)(nil)

// Store keeps the expected set across restarts. store.LearnedStore satisfies it.
type Store interface {
	PutLearned(ctx context.Context, l store.Learned) error
	ListLearned(ctx context.Context, namespace string) ([]store.Learned, error)
}

var _ Store = store.LearnedStore(nil)

// Sink receives the watch's findings. Observe is called from the watch loop (and from
// Forget), so it should return quickly; it must be safe for concurrent use. A failed
// Observe is logged and the event is not retried.
type Sink interface {
	Observe(ctx context.Context, f patrol.Finding) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, f patrol.Finding) error

// Observe calls f.
func (fn SinkFunc) Observe(ctx context.Context, f patrol.Finding) error { return fn(ctx, f) }

// The rules of the watch's findings, besides the vanished listener, whose Rule is "" so
// that it is the same incident as the probes' unreachable alert on its target. A
// finding's Class is unreachable (a vanished listener), capacity (accept queue, open
// files) or config (a public bind of an internal service); its Subject is the
// listener's probe target (tcp://127.0.0.1:6379); for a public bind, one alert per
// process, "host:<name> process:<command>", its ports collapsed into ranges (or the
// bind, tcp://0.0.0.0:6379, when the process is unknown); or "host:<name>" for the host.
const (
	RuleAcceptQueue     = "accept_queue"
	RuleOpenFiles       = "open_files"
	RuleListenOverflows = "listen_overflows"
	RulePublicBind      = "public_bind"
)

// Config configures a Watch. The zero value watches the live host's TCP listeners with
// the defaults below, keeps the expected set in memory only and discards events.
type Config struct {
	// Source is where sockets are read; nil means inventory.New(inventory.Config{}).
	Source Source
	// Store keeps the expected set across restarts; nil keeps it in memory only.
	Store Store
	// Sink receives events; nil discards them.
	Sink Sink
	// Host names this host in events ("host:<Host>", the host label); "" means
	// os.Hostname.
	Host string
	// UDP also watches unconnected UDP sockets bound to a port; by default only TCP
	// listeners are watched.
	UDP bool

	// Interval is the time between two socket dumps; 0 means 250ms.
	Interval time.Duration
	// LearnAfter is how long a listener must live before it is expected; 0 means 2
	// minutes.
	LearnAfter time.Duration
	// ConfirmTicks is how many dumps in a row an expected listener must be missing from
	// before it is reported vanished; 0 means 2.
	ConfirmTicks int
	// QueueRatio is the share of its backlog an accept queue must exceed to count as
	// under pressure; 0 means 0.8.
	QueueRatio float64
	// QueueTicks is how many dumps in a row a queue must be under pressure to raise its
	// alert, and calm to clear it; 0 means 4.
	QueueTicks int
	// FDRatio is the share of the owner's open-files limit (RLIMIT_NOFILE) that its
	// open files or the listener's established connections must exceed; 0 means 0.8.
	FDRatio float64
	// DetailInterval is the time between the slower dumps that add established
	// connections, traffic and the owners' resources; 0 means 5s, negative never.
	DetailInterval time.Duration
	// NoTraffic leaves out tcp_info bytes in and out from the detail dumps.
	NoTraffic bool
	// ForgetAfter is how long a learned listener stays gone, its process exited and
	// not restarted, before it is retired: its alert is cleared, it is no longer
	// probed and it never pages again; 0 means 24 hours.
	ForgetAfter time.Duration
	// Ignore says which listeners are never learned.
	Ignore Ignore
	// Procs looks processes up; nil means the host's /proc.
	Procs Procs

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NewTicker returns a channel that receives every d and a function that stops it;
	// nil means time.NewTicker.
	NewTicker func(d time.Duration) (<-chan time.Time, func())
	// Logger receives the watch's own troubles; nil discards them.
	Logger *slog.Logger
}

// Watch watches the host's listeners. Create it with New and start it with Run. Its
// methods are safe for concurrent use.
type Watch struct {
	cfg     Config
	src     Source
	log     *slog.Logger
	metrics *metrics
	changes chan struct{}
	running atomic.Bool
	saver   *saver

	// dumpErrors counts failed dumps, for DumpErrors.
	dumpErrors atomic.Uint64

	// Owned by the loop goroutine.
	prev       []inventory.Socket
	owners     map[uint64]*inventory.Owner // inode → owner; nil when not found
	unowned    map[uint64]time.Time        // inode → when its owner was last searched in vain
	busy       bool                        // some accept queue was not empty at the last dump
	nextDetail time.Time
	lastErr    string

	mu        sync.Mutex
	ls        map[key]*listener
	ctrs      inventory.Counters
	ctrsOK    bool
	host      hostState
	ephemeral uint64
	publics   map[string]string // public-bind alerts raised: subject → the ports they name
	// clients holds, by probe target, the established counts of the detail dumps that
	// saw a listener on it, oldest first, over the last ClientWindow; it outlives the
	// listener, so that what it served before it failed can still be told.
	clients map[string][]clientSample
	// clientAddrs holds, by probe target, when each client address was last seen.
	clientAddrs map[string]map[netip.Addr]time.Time
	// clientsSwept is when clients and clientAddrs were last swept of old samples.
	clientsSwept time.Time
}

// hostState is the host-level overflow alert: overflows no full queue explains.
type hostState struct {
	active bool
	calm   int
}

// key identifies a listener across restarts of its process: protocol and bind.
type key struct {
	proto inventory.Proto
	bind  netip.AddrPort
}

// id is the key as stored: "tcp://0.0.0.0:6379".
func (k key) id() string { return string(k.proto) + "://" + k.bind.String() }

// addr is the listener as the operator names it: "127.0.0.1:1883", "udp://127.0.0.1:53".
func (k key) addr() string {
	if k.proto == inventory.TCP {
		return k.bind.String()
	}
	return k.id()
}

// target is the probe target of the listener: its bind address, or loopback of its
// family for a wildcard bind.
func (k key) target() string {
	a := k.bind.Addr()
	if a.IsUnspecified() {
		if a.Is4() {
			a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		} else {
			a = netip.IPv6Loopback()
		}
	}
	return string(k.proto) + "://" + netip.AddrPortFrom(a, k.bind.Port()).String()
}

// New returns a Watch for cfg with the defaults filled in.
func New(cfg Config) *Watch {
	if cfg.Source == nil {
		cfg.Source = inventory.New(inventory.Config{})
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 250 * time.Millisecond
	}
	if cfg.LearnAfter <= 0 {
		cfg.LearnAfter = 2 * time.Minute
	}
	if cfg.ConfirmTicks <= 0 {
		cfg.ConfirmTicks = 2
	}
	if cfg.QueueRatio <= 0 {
		cfg.QueueRatio = 0.8
	}
	if cfg.QueueTicks <= 0 {
		cfg.QueueTicks = 4
	}
	if cfg.FDRatio <= 0 {
		cfg.FDRatio = 0.8
	}
	if cfg.DetailInterval == 0 {
		cfg.DetailInterval = 5 * time.Second
	}
	if cfg.ForgetAfter <= 0 {
		cfg.ForgetAfter = 24 * time.Hour
	}
	if cfg.Procs == nil {
		cfg.Procs = newProcFS("/proc")
	}
	if cfg.Ignore.Ephemeral == (PortRange{}) {
		cfg.Ignore.Ephemeral = ephemeralRange("/proc")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewTicker == nil {
		cfg.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watch{
		cfg:     cfg,
		src:     cfg.Source,
		log:     log,
		changes: make(chan struct{}, 1),
		owners:  make(map[uint64]*inventory.Owner),
		unowned: make(map[uint64]time.Time),
		ls:      make(map[key]*listener),
	}
	w.metrics = newMetrics(w)
	w.saver = newSaver(w)
	return w
}

// DumpErrors counts the ticks whose socket dump failed since the watch started.
func (w *Watch) DumpErrors() uint64 { return w.dumpErrors.Load() }

// Run loads the expected set from the store, then dumps the host's listeners every
// Interval until ctx is done. Changes to the expected set are written to the store in
// the background; Close writes what is left. It returns ctx's error, or an error when
// the expected set cannot be loaded or sockets cannot be read on this system at all. A
// failed dump is logged and skipped: it never counts as listeners gone. Run may be
// called once.
func (w *Watch) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("hostwatch: Run called twice")
	}
	if err := w.load(ctx); err != nil {
		return err
	}
	tick, stop := w.cfg.NewTicker(w.cfg.Interval)
	defer stop()
	for {
		if err := w.tick(ctx); err != nil {
			if errors.Is(err, inventory.ErrUnsupported) {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			w.metrics.errors.Inc()
			w.dumpErrors.Add(1)
			if msg := err.Error(); msg != w.lastErr {
				w.lastErr = msg
				w.log.Warn("listener dump failed", "err", err)
			}
		} else {
			w.lastErr = ""
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
		}
	}
}

// tick takes one dump and judges it.
func (w *Watch) tick(ctx context.Context) error {
	start := time.Now()
	defer func() { w.metrics.tick.Observe(time.Since(start).Seconds()) }()
	now := w.cfg.Now()
	detail := w.cfg.DetailInterval > 0 && !now.Before(w.nextDetail)
	f := inventory.Filter{Proto: inventory.TCP}
	if w.cfg.UDP {
		f.Proto = ""
	}
	if detail {
		f.Established = true
		f.Traffic = !w.cfg.NoTraffic
	}
	socks, err := w.src.Listeners(ctx, f)
	if err != nil {
		return fmt.Errorf("list listeners: %w", err)
	}
	if detail {
		w.nextDetail = now.Add(w.cfg.DetailInterval)
	}
	w.resolveOwners(ctx, now, socks, detail)
	// Reading /proc/net/netstat costs as much as the dump itself, and the overflow
	// counter grows only while some accept queue is full: read it while any queue is
	// busy (and one dump after), and on detail dumps for the metrics and for
	// overflows between dumps.
	busy := false
	for n := range socks {
		busy = busy || socks[n].RecvQ > 0 && socks[n].State == inventory.StateListen
	}
	var ctrs inventory.Counters
	ctrsOK := false
	if detail || busy || w.busy {
		c, err := w.src.Counters()
		if err != nil {
			w.log.Debug("listen counters", "err", err)
		}
		ctrs, ctrsOK = c, err == nil
	}
	w.busy = busy
	var res map[int]inventory.Resources
	if detail {
		res = w.resources(socks)
	}
	w.prev = socks

	w.mu.Lock()
	o := w.judge(now, socks, ctrs, ctrsOK, detail, res)
	w.mu.Unlock()

	if o.changed {
		w.notify() // the targets first: many events may take a while
	}
	// The store is written in the background: saving a thousand listeners learned at
	// once must not hold up the next dump.
	w.saver.save(o.learned...)
	w.emit(ctx, o.events)
	return nil
}

// resolveOwners sets the Owner of each socket, asking the source only about inodes
// new since the last dump and, on detail dumps, once a minute about those whose owner
// was not found (held from another PID namespace, say).
func (w *Watch) resolveOwners(ctx context.Context, now time.Time, socks []inventory.Socket, detail bool) {
	gone, added := inventory.Diff(w.prev, socks)
	for _, s := range gone {
		delete(w.owners, s.Inode)
		delete(w.unowned, s.Inode)
	}
	var need []uint64
	for _, s := range added {
		if s.Inode != 0 {
			need = append(need, s.Inode)
		}
	}
	if detail {
		for ino, o := range w.owners {
			if o == nil && now.Sub(w.unowned[ino]) >= ownerRetry {
				need = append(need, ino)
			}
		}
	}
	if len(need) > 0 {
		found, err := w.src.Owners(ctx, need)
		if err != nil {
			w.log.Debug("socket owners", "err", err)
		}
		for _, ino := range need {
			if o, ok := found[ino]; ok {
				w.owners[ino] = &o
				delete(w.unowned, ino)
			} else {
				w.owners[ino] = nil
				w.unowned[ino] = now
			}
		}
	}
	for n := range socks {
		socks[n].Owner = w.owners[socks[n].Inode]
	}
}

// resources reads the resources of each owner of socks. The sockets of an owner that
// has exited are looked up again on the next detail dump: another process may hold
// them now.
func (w *Watch) resources(socks []inventory.Socket) map[int]inventory.Resources {
	out := make(map[int]inventory.Resources)
	exited := make(map[int]bool)
	for _, s := range socks {
		if s.Owner == nil {
			continue
		}
		pid := s.Owner.PID
		if _, ok := out[pid]; ok || exited[pid] {
			continue
		}
		r, err := w.src.Resources(pid)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			exited[pid] = true
		case err != nil && r.MaxOpenFiles == 0:
			w.log.Debug("process resources", "pid", pid, "err", err)
		default:
			// A partial answer (open files unreadable) still has the limit.
			out[pid] = r
		}
	}
	for ino, o := range w.owners {
		if o != nil && exited[o.PID] {
			w.owners[ino] = nil
			delete(w.unowned, ino)
		}
	}
	return out
}

// emit hands events to the sink.
func (w *Watch) emit(ctx context.Context, evs []patrol.Finding) {
	for _, e := range evs {
		w.log.Debug("listener finding", "class", e.Class, "rule", e.Rule, "subject", e.Subject, "active", e.Active, "summary", e.Summary)
		if w.cfg.Sink == nil {
			continue
		}
		if err := w.cfg.Sink.Observe(ctx, e); err != nil {
			w.log.Error("deliver listener finding", "subject", e.Subject, "rule", e.Rule, "err", err)
		}
	}
}

// notify signals Changes without blocking.
func (w *Watch) notify() {
	select {
	case w.changes <- struct{}{}:
	default:
	}
}
