package hostwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

// fakeSource serves synthetic sockets.
type fakeSource struct {
	mu     sync.Mutex
	socks  []inventory.Socket
	owners map[uint64]inventory.Owner
	ctrs   inventory.Counters
	res    map[int]inventory.Resources
	asked  []uint64
	reads  int // Counters calls
	err    error
}

func (f *fakeSource) Listeners(_ context.Context, flt inventory.Filter) ([]inventory.Socket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := slices.Clone(f.socks)
	for n := range out {
		if !flt.Established {
			out[n].Established = 0
		}
		if !flt.Traffic {
			out[n].BytesIn, out[n].BytesOut = 0, 0
		}
	}
	return out, nil
}

func (f *fakeSource) Owners(_ context.Context, inodes []uint64) (map[uint64]inventory.Owner, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, inodes...)
	out := make(map[uint64]inventory.Owner)
	for _, ino := range inodes {
		if o, ok := f.owners[ino]; ok {
			out[ino] = o
		}
	}
	return out, nil
}

func (f *fakeSource) Counters() (inventory.Counters, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.ctrs, nil
}

func (f *fakeSource) Resources(pid int) (inventory.Resources, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.res[pid]
	if !ok {
		return inventory.Resources{}, errors.New("no such process")
	}
	return r, nil
}

// set replaces the sockets; owners maps inode to owner.
func (f *fakeSource) set(socks ...inventory.Socket) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.socks = socks
	for _, s := range socks {
		if s.Owner != nil {
			f.owners[s.Inode] = *s.Owner
		}
	}
	for n := range f.socks {
		f.socks[n].Owner = nil // the watch must find owners itself
	}
}

// sock is a TCP listener (UDP when bind starts with "udp:") owned by comm/pid.
func sock(bind string, inode uint64, comm string, pid int) inventory.Socket {
	proto := inventory.TCP
	if b, ok := strings.CutPrefix(bind, "udp:"); ok {
		proto, bind = inventory.UDP, b
	}
	ap := netip.MustParseAddrPort(bind)
	s := inventory.Socket{Proto: proto, IPv6: ap.Addr().Is6(), State: inventory.StateListen, Local: ap, Inode: inode, SendQ: 128}
	if proto == inventory.UDP {
		s.State, s.SendQ = inventory.StateClose, 0
	}
	if comm != "" {
		s.Owner = &inventory.Owner{PID: pid, Command: comm}
	}
	return s
}

// memStore is a LearnedStore in memory.
type memStore struct {
	mu sync.Mutex
	m  map[string]store.Learned
}

func newMemStore() *memStore { return &memStore{m: make(map[string]store.Learned)} }

func (s *memStore) PutLearned(_ context.Context, l store.Learned) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l.UpdatedAt = time.Now()
	s.m[l.Namespace+"\x00"+l.Key] = l
	return nil
}

func (s *memStore) GetLearned(_ context.Context, ns, k string) (store.Learned, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.m[ns+"\x00"+k]
	if !ok {
		return store.Learned{}, store.ErrNotFound
	}
	return l, nil
}

func (s *memStore) ListLearned(_ context.Context, ns string) ([]store.Learned, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Learned
	for _, l := range s.m {
		if l.Namespace == ns {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b store.Learned) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

var _ store.LearnedStore = (*memStore)(nil)

// harness drives a Watch over a fakeSource on fake time, one tick at a time.
type harness struct {
	t     *testing.T
	src   *fakeSource
	rec   *recorder
	now   time.Time
	w     *Watch
	procs *fakeProcs
	hung  bool // the store hangs: the test closes the watch
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{
		t:   t,
		src: &fakeSource{owners: make(map[uint64]inventory.Owner), res: make(map[int]inventory.Resources)},
		rec: newRecorder(),
		now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
	}
	if cfg.Source == nil {
		cfg.Source = h.src
	}
	cfg.Sink = h.rec
	cfg.Host = "h1"
	if cfg.Procs == nil {
		h.procs = &fakeProcs{}
		cfg.Procs = h.procs
	}
	cfg.Now = func() time.Time { return h.now }
	if cfg.LearnAfter == 0 {
		cfg.LearnAfter = 10 * time.Second
	}
	h.w = New(cfg)
	if err := h.w.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if h.hung {
			return // the test closed it
		}
		if err := h.w.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return h
}

// flush waits until the learned set is in the store.
func (h *harness) flush() {
	h.t.Helper()
	if err := h.w.Flush(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

// step advances fake time by one interval and runs one tick, n times.
func (h *harness) step(n int) {
	h.t.Helper()
	for range n {
		h.now = h.now.Add(h.w.cfg.Interval)
		if err := h.w.tick(context.Background()); err != nil {
			h.t.Fatal(err)
		}
	}
}

// events returns the events since the last call.
func (h *harness) events() []patrol.Finding {
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	var out []patrol.Finding
	for _, r := range h.rec.events {
		out = append(out, r.Finding)
	}
	h.rec.events = nil
	return out
}

func (h *harness) wantEvents(what string, want ...func(patrol.Finding) bool) []patrol.Finding {
	h.t.Helper()
	got := h.events()
	if len(got) != len(want) {
		h.t.Fatalf("%s: got %d events, want %d: %+v", what, len(got), len(want), got)
	}
	for n := range want {
		if !want[n](got[n]) {
			h.t.Errorf("%s: event %d is %+v", what, n, got[n])
		}
	}
	return got
}

// targetsOf returns the probe targets of w's learned listeners, not those being
// learned.
func targetsOf(w *Watch) []string {
	var out []string
	for _, l := range w.Targets() {
		if l.State != StateLearning {
			out = append(out, l.Target)
		}
	}
	return out
}

// fakeProcs is a process table; a PID not in it has exited.
type fakeProcs struct {
	mu    sync.Mutex
	procs map[int]ProcID
}

func (f *fakeProcs) set(pid int, id ProcID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.procs == nil {
		f.procs = map[int]ProcID{}
	}
	f.procs[pid] = id
}

func (f *fakeProcs) exit(pid int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.procs, pid)
}

func (f *fakeProcs) Identity(pid int) (ProcID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.procs[pid]
	if !ok {
		return ProcID{}, fs.ErrNotExist
	}
	return id, nil
}

func (f *fakeProcs) Find(id ProcID) ([]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for pid, got := range f.procs {
		if id.same(got) {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ticks is how many ticks make d.
func ticks(d, interval time.Duration) int { return int(d / interval) }

func TestLearnVanishReturn(t *testing.T) {
	st := newMemStore()
	h := newHarness(t, Config{Store: st})
	redis := sock("127.0.0.1:6379", 10, "redis-server", 100)
	h.src.set(redis)
	h.step(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval))
	if got := targetsOf(h.w); len(got) != 0 {
		t.Fatalf("expected before LearnAfter: %v", got)
	}
	h.step(1)
	if got, want := targetsOf(h.w), []string{"tcp://127.0.0.1:6379"}; !slices.Equal(got, want) {
		t.Fatalf("targets: got %v, want %v", got, want)
	}
	select {
	case <-h.w.Changes():
	default:
		t.Error("no change notification after learning")
	}
	h.flush()
	if _, err := st.GetLearned(context.Background(), Namespace, "tcp://127.0.0.1:6379"); err != nil {
		t.Errorf("learned listener not stored: %v", err)
	}
	h.wantEvents("while learning")

	h.src.set()
	h.step(1)
	h.wantEvents("first missing dump")
	h.step(1)
	got := h.wantEvents("second missing dump", is("unreachable", "", "tcp://127.0.0.1:6379", true))
	e := got[0]
	if e.Severity != "P0" || e.Labels["process"] != "redis-server" || e.Labels["host"] != "h1" {
		t.Errorf("vanished event: %+v", e)
	}
	if !strings.Contains(e.Description, "redis-server (pid 100)") {
		t.Errorf("description does not name the process: %s", e.Description)
	}
	h.step(5)
	h.wantEvents("still missing")
	if l := h.w.Targets(); len(l) != 1 || l[0].Present {
		t.Errorf("targets while missing: got %+v, want the listener, not present", l)
	}

	h.src.set(sock("127.0.0.1:6379", 11, "redis-server", 101))
	h.step(1)
	got = h.wantEvents("back", is("unreachable", "", "tcp://127.0.0.1:6379", false))
	if !strings.Contains(got[0].Description, "pid 101") || !strings.Contains(got[0].Description, "after 1.75s missing") {
		t.Errorf("back description: %s", got[0].Description)
	}
}

func TestShortLivedNotPaged(t *testing.T) {
	h := newHarness(t, Config{})
	h.src.set(sock("127.0.0.1:41000", 20, "job", 200), sock("[::1]:41001", 21, "job", 200))
	h.step(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval) - 1)
	h.src.set()
	h.step(20)
	h.wantEvents("short-lived listeners")
	if got := h.w.Targets(); len(got) != 0 {
		t.Errorf("targets: got %+v, want none", got)
	}
	if h.w.ephemeral != 2 {
		t.Errorf("ephemeral listeners: got %d, want 2", h.w.ephemeral)
	}
}

func TestBlipRestartsLearning(t *testing.T) {
	h := newHarness(t, Config{})
	s := sock("127.0.0.1:8080", 30, "app", 300)
	h.src.set(s)
	h.step(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval) - 2)
	h.src.set()
	h.step(1)
	h.src.set(s)
	h.step(3)
	if got := targetsOf(h.w); len(got) != 0 {
		t.Fatalf("learned across a gap: %+v", got)
	}
	if got := h.w.Targets(); len(got) != 1 || got[0].State != StateLearning || !got[0].LearnAt.Equal(h.now.Add(h.w.cfg.LearnAfter-2*h.w.cfg.Interval)) {
		t.Fatalf("targets while learning again: got %+v, want one learning, to be learned %s after it came back", got, h.w.cfg.LearnAfter)
	}
	h.step(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval))
	if got := targetsOf(h.w); !slices.Equal(got, []string{"tcp://127.0.0.1:8080"}) {
		t.Fatalf("targets: got %v", got)
	}
}

func TestRestartFromStore(t *testing.T) {
	st := newMemStore()
	h := newHarness(t, Config{Store: st})
	h.src.set(sock("127.0.0.1:6379", 10, "redis-server", 100), sock("0.0.0.0:22", 11, "sshd", 1))
	h.step(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval) + 1)
	h.events()

	// The restarted watch finds sshd still listening and redis gone.
	h.flush()
	h2 := newHarness(t, Config{Store: st})
	if got, want := targetsOf(h2.w), []string{"tcp://127.0.0.1:22", "tcp://127.0.0.1:6379"}; !slices.Equal(got, want) {
		t.Fatalf("targets after load: got %v, want %v", got, want)
	}
	select {
	case <-h2.w.Changes():
	default:
		t.Error("no change notification after load")
	}
	h2.src.set(sock("0.0.0.0:22", 11, "sshd", 1))
	h2.step(1)
	h2.wantEvents("first dump after restart")
	h2.step(1)
	got := h2.wantEvents("confirming dump", is("unreachable", "", "tcp://127.0.0.1:6379", true))
	if !strings.Contains(got[0].Description, "learned before this watch started") || got[0].Labels["process"] != "redis-server" {
		t.Errorf("vanished after restart: %+v", got[0])
	}
}

func TestTargetIDs(t *testing.T) {
	for _, tc := range []struct{ bind, want string }{
		{"0.0.0.0:80", "tcp://127.0.0.1:80"},
		{"[::]:80", "tcp://[::1]:80"},
		{"10.1.2.3:8080", "tcp://10.1.2.3:8080"},
		{"[fd00::5]:443", "tcp://[fd00::5]:443"},
		{"udp:0.0.0.0:53", "udp://127.0.0.1:53"},
	} {
		t.Run(tc.bind, func(t *testing.T) {
			s := sock(tc.bind, 1, "", 0)
			k := key{s.Proto, s.Local}
			if got := k.target(); got != tc.want {
				t.Errorf("target: got %s, want %s", got, tc.want)
			}
			pt, err := patrol.ParseTarget(k.target())
			if err != nil || pt.ID != k.target() {
				t.Errorf("target %s is not canonical: %+v, %v", k.target(), pt.ID, err)
			}
			back, err := parseKey(k.id())
			if err != nil || back != k {
				t.Errorf("parseKey(%q): got %+v, %v", k.id(), back, err)
			}
		})
	}
}

func TestUDPOnlyWhenAsked(t *testing.T) {
	for _, udp := range []bool{false, true} {
		h := newHarness(t, Config{UDP: udp})
		h.src.set(sock("udp:0.0.0.0:5353", 40, "avahi", 400), sock("udp:0.0.0.0:0", 41, "x", 400))
		h.step(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval) + 1)
		got := targetsOf(h.w)
		if want := udp; (len(got) == 1 && got[0] == "udp://127.0.0.1:5353") != want || len(got) > 1 {
			t.Errorf("UDP %v: targets %v", udp, got)
		}
	}
}

func TestPublicBind(t *testing.T) {
	h := newHarness(t, Config{})
	h.src.set(
		sock("0.0.0.0:6379", 50, "redis-server", 500), // by port and name
		sock("[::]:13306", 51, "mariadbd", 501),       // by name
		sock("127.0.0.1:5432", 52, "postgres", 502),   // loopback: fine
		sock("0.0.0.0:8080", 53, "nginx", 503),        // not internal
	)
	h.step(1)
	got := h.events()
	slices.SortFunc(got, func(a, b patrol.Finding) int { return strings.Compare(a.Subject, b.Subject) })
	if len(got) != 2 || !is("config", RulePublicBind, "host:h1 process:mariadbd", true)(got[0]) || !is("config", RulePublicBind, "host:h1 process:redis-server", true)(got[1]) {
		t.Fatalf("public binds: %+v", got)
	}
	if got[1].Labels["service"] != "Redis" || got[0].Labels["service"] != "MySQL/MariaDB" || got[0].Severity != "" ||
		got[1].Summary != "Redis listens on a public address: tcp 0.0.0.0:6379 (redis-server)" {
		t.Errorf("public bind events: %+v", got)
	}
	h.step(3)
	h.wantEvents("still public")

	// Redis is reconfigured onto loopback; MariaDB stops.
	h.src.set(sock("127.0.0.1:6379", 54, "redis-server", 504), sock("127.0.0.1:5432", 52, "postgres", 502), sock("0.0.0.0:8080", 53, "nginx", 503))
	h.step(1)
	got = h.events()
	slices.SortFunc(got, func(a, b patrol.Finding) int { return strings.Compare(a.Subject, b.Subject) })
	if len(got) != 2 || !is("config", RulePublicBind, "host:h1 process:mariadbd", false)(got[0]) || !is("config", RulePublicBind, "host:h1 process:redis-server", false)(got[1]) {
		t.Fatalf("public binds cleared: %+v", got)
	}
}

// TestPublicBindOnePerProcess: a process serving Redis on 950 public ports raises one
// alert naming the ports as ranges; it follows the ports as they change and clears
// when none is left. A listener of an unknown process keeps an alert of its own.
func TestPublicBindOnePerProcess(t *testing.T) {
	h := newHarness(t, Config{})
	var socks []inventory.Socket
	for p := range 950 {
		socks = append(socks, sock(fmt.Sprintf("0.0.0.0:%d", 20000+p), uint64(100+p), "redis-server", 4242))
	}
	socks = append(socks, sock("0.0.0.0:6379", 99, "redis-server", 4242), sock("0.0.0.0:11211", 98, "", 0))
	h.src.set(socks...)
	h.step(1)
	got := h.wantEvents("950 public ports", is("config", RulePublicBind, "host:h1 process:redis-server", true), is("config", RulePublicBind, "tcp://0.0.0.0:11211", true))
	if want := "Redis listens on public addresses: 951 ports of redis-server (pid 4242), tcp 6379, 20000–20949"; got[0].Summary != want {
		t.Errorf("summary: got %q, want %q", got[0].Summary, want)
	}
	h.step(3)
	h.wantEvents("unchanged")

	// A port in the middle closes: the one alert names the new ranges.
	h.src.set(slices.Delete(slices.Clone(socks), 500, 501)...)
	h.step(1)
	got = h.wantEvents("one port fewer", is("config", RulePublicBind, "host:h1 process:redis-server", true))
	if want := "tcp 6379, 20000–20499, 20501–20949"; !strings.HasSuffix(got[0].Summary, want) {
		t.Errorf("summary: got %q, want it to end in %q", got[0].Summary, want)
	}

	h.src.set()
	h.step(1)
	h.wantEvents("all gone", is("config", RulePublicBind, "host:h1 process:redis-server", false), is("config", RulePublicBind, "tcp://0.0.0.0:11211", false))
}

func TestAcceptQueue(t *testing.T) {
	h := newHarness(t, Config{QueueTicks: 3})
	s := sock("127.0.0.1:8080", 60, "app", 600)
	s.SendQ = 10
	at := func(q uint32) inventory.Socket { c := s; c.RecvQ = q; c.Owner = s.Owner; return c }
	h.src.set(at(8)) // 80 %: not over
	h.step(5)
	h.wantEvents("at 80 %")
	h.src.set(at(9))
	h.step(2)
	h.wantEvents("over for two dumps")
	h.step(1)
	got := h.wantEvents("over for three dumps", is("capacity", RuleAcceptQueue, "tcp://127.0.0.1:8080", true))
	if got[0].Severity != "P2" || !strings.Contains(got[0].Summary, "9 of 10") {
		t.Errorf("accept queue event: %+v", got[0])
	}
	h.src.set(at(1))
	h.step(2)
	h.wantEvents("calm for two dumps")
	h.src.set(at(10))
	h.step(1)
	h.src.set(at(0))
	h.step(2)
	h.wantEvents("calm streak broken")
	h.step(1)
	h.wantEvents("calm for three dumps", is("capacity", RuleAcceptQueue, "tcp://127.0.0.1:8080", false))
}

func TestListenOverflows(t *testing.T) {
	h := newHarness(t, Config{QueueTicks: 3, DetailInterval: time.Second}) // detail dumps at ticks 1, 5, 9…
	full := sock("127.0.0.1:8080", 60, "app", 600)
	full.SendQ, full.RecvQ = 4, 5
	other := sock("127.0.0.1:9090", 61, "other", 601)
	h.src.ctrs = inventory.Counters{ListenOverflows: 100, ListenDrops: 100}
	h.src.set(full, other)
	h.step(1)
	h.wantEvents("first dump")
	h.src.ctrs = inventory.Counters{ListenOverflows: 107, ListenDrops: 107}
	h.step(1)
	got := h.wantEvents("overflow while full", is("capacity", RuleAcceptQueue, "tcp://127.0.0.1:8080", true))
	if !strings.Contains(got[0].Description, "grew by 7") {
		t.Errorf("description: %s", got[0].Description)
	}

	// With every queue empty the counters wait for the next detail dump; overflows
	// that no full queue explains then go to the host.
	full.RecvQ = 0
	h.src.set(full, other)
	h.step(1)
	reads := h.src.reads
	h.src.ctrs = inventory.Counters{ListenOverflows: 110, ListenDrops: 112}
	h.step(1)
	if h.src.reads != reads {
		t.Errorf("counters read with every queue empty")
	}
	h.wantEvents("between detail dumps")
	h.step(1)
	h.wantEvents("detail dump",
		is("capacity", RuleListenOverflows, "host:h1", true),
		is("capacity", RuleAcceptQueue, "tcp://127.0.0.1:8080", false))
	h.step(2)
	h.wantEvents("host calm for two dumps")
	h.step(1)
	h.wantEvents("host calm", is("capacity", RuleListenOverflows, "host:h1", false))
}

func TestOpenFiles(t *testing.T) {
	h := newHarness(t, Config{DetailInterval: time.Second})
	s := sock("0.0.0.0:8080", 70, "app", 700)
	h.src.set(s)
	h.src.res[700] = inventory.Resources{OpenFiles: 500, MaxOpenFiles: 1024, RSS: 1 << 20, CPU: 3 * time.Second}
	h.step(3) // a detail dump every fourth tick: the first, the fifth…
	h.wantEvents("half the limit")
	h.src.res[700] = inventory.Resources{OpenFiles: 900, MaxOpenFiles: 1024}
	h.step(1)
	h.wantEvents("between detail dumps")
	h.step(1)
	got := h.wantEvents("over the limit", is("capacity", RuleOpenFiles, "tcp://127.0.0.1:8080", true))
	if !strings.Contains(got[0].Summary, "900 of 1024") {
		t.Errorf("summary: %s", got[0].Summary)
	}
	// Established connections alone count too (held by forked workers, say).
	h.src.res[700] = inventory.Resources{OpenFiles: 10, MaxOpenFiles: 1024}
	s.Established = 1000
	h.src.set(s)
	h.step(4)
	h.wantEvents("established over the limit")
	s.Established = 3
	h.src.set(s)
	h.step(4)
	h.wantEvents("cleared", is("capacity", RuleOpenFiles, "tcp://127.0.0.1:8080", false))
	h.src.res[700] = inventory.Resources{OpenFiles: 10, MaxOpenFiles: inventory.Unlimited}
	h.step(8)
	h.wantEvents("unlimited")
}

func TestOwnersOnlyForNewInodes(t *testing.T) {
	h := newHarness(t, Config{DetailInterval: -1})
	h.src.set(sock("127.0.0.1:1", 1, "a", 1), sock("127.0.0.1:2", 2, "b", 2))
	h.step(1)
	h.step(10)
	if got := h.src.asked; !slices.Equal(got, []uint64{1, 2}) && !slices.Equal(got, []uint64{2, 1}) {
		t.Fatalf("owners asked for %v, want 1 and 2 once", got)
	}
	h.src.asked = nil
	h.src.set(sock("127.0.0.1:1", 1, "a", 1), sock("127.0.0.1:2", 2, "b", 2), sock("127.0.0.1:3", 3, "c", 3))
	h.step(5)
	if got := h.src.asked; !slices.Equal(got, []uint64{3}) {
		t.Fatalf("owners asked for %v, want 3 only", got)
	}
	if l := h.w.ls[key{inventory.TCP, netip.MustParseAddrPort("127.0.0.1:3")}]; l.process() != "c" {
		t.Errorf("owner of the new socket: %q", l.process())
	}
}

func TestUnownedRetriedOncePerMinute(t *testing.T) {
	h := newHarness(t, Config{DetailInterval: time.Second})
	s := sock("0.0.0.0:2024", 7, "", 0) // held from another PID namespace
	h.src.set(s)
	h.step(4 * 59) // detail dumps every second for 59s
	if got := len(h.src.asked); got != 1 {
		t.Fatalf("asked %d times in 59s, want once", got)
	}
	h.step(5)
	if got := len(h.src.asked); got != 2 {
		t.Fatalf("asked %d times in 60.25s, want twice", got)
	}
}

func TestDumpErrorIsNotVanish(t *testing.T) {
	h := newHarness(t, Config{})
	h.src.set(sock("127.0.0.1:6379", 10, "redis-server", 100))
	h.step(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval) + 1)
	h.src.mu.Lock()
	h.src.err = errors.New("sock_diag: no answer")
	h.src.mu.Unlock()
	for range 10 {
		h.now = h.now.Add(h.w.cfg.Interval)
		if err := h.w.tick(context.Background()); err == nil {
			t.Fatal("tick hid the dump error")
		}
	}
	h.wantEvents("failed dumps")
}

func TestForget(t *testing.T) {
	st := newMemStore()
	h := newHarness(t, Config{Store: st})
	h.src.set(sock("127.0.0.1:6379", 10, "redis-server", 100), sock("127.0.0.1:22", 11, "sshd", 1))
	h.step(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval) + 1)
	h.src.set(sock("127.0.0.1:22", 11, "sshd", 1))
	h.step(2)
	h.wantEvents("vanished", is("unreachable", "", "tcp://127.0.0.1:6379", true))
	<-h.w.Changes()

	ctx := context.Background()
	if _, err := h.w.Forget(ctx, "tcp://127.0.0.1:6379"); err != nil {
		t.Fatal(err)
	}
	h.wantEvents("forgotten", is("unreachable", "", "tcp://127.0.0.1:6379", false))
	if got := targetsOf(h.w); !slices.Equal(got, []string{"tcp://127.0.0.1:22"}) {
		t.Errorf("targets after Forget: %v", got)
	}
	if _, err := h.w.Forget(ctx, "tcp://127.0.0.1:6379"); !errors.Is(err, ErrNotLearned) {
		t.Errorf("forgot twice: got %v, want ErrNotLearned", err)
	}
	if _, err := h.w.Forget(ctx, "localhost:22"); err == nil || !strings.Contains(err.Error(), "want ADDR:PORT") {
		t.Errorf("Forget(localhost:22): got %v, want an error saying what it takes", err)
	}
	h.flush()
	h2 := newHarness(t, Config{Store: st})
	if got := targetsOf(h2.w); !slices.Equal(got, []string{"tcp://127.0.0.1:22"}) {
		t.Errorf("targets after restart: %v", got)
	}
}

func TestStoredValue(t *testing.T) {
	st := newMemStore()
	h := newHarness(t, Config{Store: st})
	h.src.set(sock("[::]:443", 10, "nginx", 100))
	h.step(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval) + 1)
	h.flush()
	l, err := st.GetLearned(context.Background(), Namespace, "tcp://[::]:443")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(l.Value, &v); err != nil {
		t.Fatal(err)
	}
	if v["proto"] != "tcp" || v["bind"] != "[::]:443" || v["process"] != "nginx" || v["learned_at"] != h.now.Format(time.RFC3339Nano) {
		t.Errorf("stored value: %s", l.Value)
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, Config{DetailInterval: time.Second})
	s := sock("127.0.0.1:6379", 10, "redis-server", 100)
	s.RecvQ, s.SendQ, s.Established, s.BytesIn, s.BytesOut = 3, 511, 42, 1000, 2000
	h.src.set(s, sock("udp:0.0.0.0:53", 11, "dns", 101))
	h.src.res[100] = inventory.Resources{CPU: 1500 * time.Millisecond, RSS: 4096, OpenFiles: 50, MaxOpenFiles: 1024}
	h.src.ctrs = inventory.Counters{ListenOverflows: 5, ListenDrops: 6}
	h.step(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval) + 1)
	h.src.set(sock("127.0.0.1:22", 12, "sshd", 1))
	h.step(1)

	reg := prometheus.NewRegistry()
	reg.MustRegister(h.w.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if lp := labelString(m.GetLabel()); lp != "" {
				name += "{" + lp + "}"
			}
			switch {
			case m.Gauge != nil:
				got[name] = m.GetGauge().GetValue()
			case m.Counter != nil:
				got[name] = m.GetCounter().GetValue()
			case m.Histogram != nil:
				got[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	redis := "{addr=127.0.0.1,port=6379,process=redis-server,proto=tcp}"
	sshd := "{addr=127.0.0.1,port=22,process=sshd,proto=tcp}"
	for name, want := range map[string]float64{
		"portpatrol_listener_up" + redis:                   0,
		"portpatrol_listener_expected" + redis:             1,
		"portpatrol_listener_up" + sshd:                    1,
		"portpatrol_listener_expected" + sshd:              0,
		"portpatrol_listener_accept_queue" + sshd:          0,
		"portpatrol_listener_backlog" + sshd:               128,
		"portpatrol_host_listen_overflows_total":           5,
		"portpatrol_host_listen_drops_total":               6,
		"portpatrol_hostwatch_expected_listeners":          1,
		"portpatrol_hostwatch_listeners":                   1,
		"portpatrol_hostwatch_ephemeral_listeners_total":   0,
		"portpatrol_hostwatch_tick_duration_seconds_count": float64(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval) + 2),
		"portpatrol_hostwatch_errors_total":                0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s: got %v (present %v), want %v", name, v, ok, want)
		}
	}
	if _, ok := got["portpatrol_listener_accept_queue"+redis]; ok {
		t.Error("a missing listener reports an accept queue")
	}

	// While present, the listener's details are there.
	h.src.set(s)
	h.step(4)
	mfs, err = reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got = make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if labelString(m.GetLabel()) == redis[1:len(redis)-1] {
				if m.Gauge != nil {
					got[mf.GetName()] = m.GetGauge().GetValue()
				} else if m.Counter != nil {
					got[mf.GetName()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	for name, want := range map[string]float64{
		"portpatrol_listener_up":                            1,
		"portpatrol_listener_accept_queue":                  3,
		"portpatrol_listener_backlog":                       511,
		"portpatrol_listener_established":                   42,
		"portpatrol_listener_received_bytes":                1000,
		"portpatrol_listener_sent_bytes":                    2000,
		"portpatrol_listener_process_cpu_seconds_total":     1.5,
		"portpatrol_listener_process_resident_memory_bytes": 4096,
		"portpatrol_listener_process_open_fds":              50,
		"portpatrol_listener_process_max_fds":               1024,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s%s: got %v (present %v), want %v", name, redis, v, ok, want)
		}
	}
}

func labelString(ls []*dto.LabelPair) string {
	var parts []string
	for _, l := range ls {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

func TestRunStopsAndReportsDumpErrors(t *testing.T) {
	src := &fakeSource{owners: map[uint64]inventory.Owner{}, err: errors.New("boom")}
	tick := make(chan time.Time)
	w := New(Config{Source: src, NewTicker: func(time.Duration) (<-chan time.Time, func()) { return tick, func() {} }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	tick <- time.Now()
	tick <- time.Now()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: got %v, want context.Canceled", err)
	}
	if err := w.Run(context.Background()); err == nil {
		t.Error("second Run did not fail")
	}
	src.err = inventory.ErrUnsupported
	if err := New(Config{Source: src}).Run(context.Background()); !errors.Is(err, inventory.ErrUnsupported) {
		t.Errorf("Run on an unsupported system: got %v", err)
	}
}
