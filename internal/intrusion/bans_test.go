package intrusion

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/store"
)

// memBanStore keeps bans in memory for tests.
type memBanStore struct {
	mu   sync.Mutex
	bans map[string]store.Ban
}

func (m *memBanStore) PutBan(_ context.Context, b store.Ban) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bans == nil {
		m.bans = map[string]store.Ban{}
	}
	m.bans[b.Addr] = b
	return nil
}

func (m *memBanStore) ListBans(context.Context) ([]store.Ban, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Ban
	for _, b := range m.bans {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b store.Ban) int { return strings.Compare(a.Addr, b.Addr) })
	return out, nil
}

func (m *memBanStore) DeleteBans(_ context.Context, before time.Time) (int, error) { return 0, nil }

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// kernelLog is an Enforcer that remembers what it was told; the kernel's own sets
// are tested in network namespaces (netns_linux_test.go).
type kernelLog struct {
	bans map[netip.Addr]time.Duration
}

func (k *kernelLog) Ban(a netip.Addr, d time.Duration, _ string) error {
	k.bans[a] = d
	return nil
}
func (k *kernelLog) Unban(a netip.Addr) error { delete(k.bans, a); return nil }
func (k *kernelLog) List() ([]KernelBan, error) {
	var out []KernelBan
	for a, d := range k.bans {
		out = append(out, KernelBan{Addr: a, Expires: d})
	}
	return out, nil
}

func TestEscalationAndRecidive(t *testing.T) {
	clk := &fakeClock{t: t0}
	k := &kernelLog{bans: map[netip.Addr]time.Duration{}}
	rec := &memRecorder{}
	b := NewBanner(BannerConfig{Enforce: true, Enforcer: k, Store: &memBanStore{}, BanTime: 10 * time.Minute,
		MaxBanTime: 30 * time.Minute, Recorder: rec, Now: clk.now})
	var got []time.Duration
	for i := 0; i < 4; i++ {
		v, err := b.Ban(t.Context(), BanRequest{Addr: attacker, Reason: "scan", Kind: KindFastScan})
		if err != nil {
			t.Fatal(err)
		}
		// A finding repeated during the ban keeps it as it is.
		again, _ := b.Ban(t.Context(), BanRequest{Addr: attacker, Reason: "scan"})
		if again.Count != v.Count {
			t.Fatalf("repeat during the ban escalated: %d -> %d", v.Count, again.Count)
		}
		got = append(got, v.Duration)
		clk.t = v.Expires.Add(time.Hour)
	}
	want := []time.Duration{10 * time.Minute, 20 * time.Minute, 30 * time.Minute, 30 * time.Minute}
	if !slices.Equal(got, want) {
		t.Fatalf("ban times: got %v, want %v", got, want)
	}
	// After the recidive window, back to the first length.
	clk.t = clk.t.Add(8 * 24 * time.Hour)
	if v, _ := b.Ban(t.Context(), BanRequest{Addr: attacker, Reason: "scan"}); v.Duration != 10*time.Minute || v.Count != 1 {
		t.Fatalf("after the recidive window: got %s, count %d", v.Duration, v.Count)
	}
	if len(rec.all()) != 5 {
		t.Fatalf("audit records: got %d, want 5", len(rec.all()))
	}
}

func TestBreakerAndDryRun(t *testing.T) {
	clk := &fakeClock{t: t0}
	rec := &memRecorder{}
	b := NewBanner(BannerConfig{MaxPerMinute: 3, Recorder: rec, Now: clk.now})
	if !b.DryRun() {
		t.Fatal("the zero config is not dry run")
	}
	var errs []error
	for i := 0; i < 5; i++ {
		_, err := b.Ban(t.Context(), BanRequest{Addr: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), Reason: "scan"})
		errs = append(errs, err)
	}
	if errs[2] != nil || !errors.Is(errs[3], ErrBreakerOpen) || !errors.Is(errs[4], ErrBreakerOpen) {
		t.Fatalf("got %v, want 3 bans then the breaker", errs)
	}
	// By hand is not counted; a minute later automation may ban again.
	if _, err := b.Ban(t.Context(), BanRequest{Addr: attacker, Actor: "alice", Reason: "by hand"}); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(61 * time.Second)
	if _, err := b.Ban(t.Context(), BanRequest{Addr: victim, Reason: "scan"}); err != nil {
		t.Fatal(err)
	}
	all, _ := b.List(t.Context())
	for _, v := range all {
		if !v.DryRun || v.Active(clk.t) {
			t.Fatalf("dry run ban %+v is active", v)
		}
	}
	outcomes := 0
	for _, r := range rec.all() {
		if strings.HasPrefix(r.Outcome, "dry run: would ban") {
			outcomes++
		}
	}
	if outcomes != 5 {
		t.Fatalf("dry-run records: got %d, want 5", outcomes)
	}
}

func TestNilRecorderAndUnban(t *testing.T) {
	k := &kernelLog{bans: map[netip.Addr]time.Duration{}}
	b := NewBanner(BannerConfig{Enforce: true, Enforcer: k})
	if _, err := b.Ban(t.Context(), BanRequest{Addr: netip.MustParseAddr("::ffff:203.0.113.9"), Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.bans[netip.MustParseAddr("203.0.113.9")]; !ok {
		t.Fatalf("kernel: got %v, want the unmapped address", k.bans)
	}
	if err := b.Unban(t.Context(), netip.MustParseAddr("203.0.113.9"), "bob", "false positive"); err != nil {
		t.Fatal(err)
	}
	if len(k.bans) != 0 {
		t.Fatalf("kernel after unban: %v", k.bans)
	}
	if n, _ := b.Active(t.Context()); n != 0 {
		t.Fatalf("active after unban: %d", n)
	}
}

// memRecorder is an in-memory audit chain.
type memRecorder struct {
	mu   sync.Mutex
	recs []auditlog.Record
}

func (m *memRecorder) Append(_ context.Context, r auditlog.Record) (auditlog.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, r)
	return auditlog.Entry{Seq: int64(len(m.recs)), Time: time.Now(), Record: r}, nil
}

func (m *memRecorder) all() []auditlog.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]auditlog.Record(nil), m.recs...)
}

// TestBannerReconfigure turns enforcement on, changes the ban time and allowlists an
// address; a ban already in the kernel stays when enforcement is turned off again.
func TestBannerReconfigure(t *testing.T) {
	clk := &fakeClock{t: t0}
	k := &kernelLog{bans: map[netip.Addr]time.Duration{}}
	b := NewBanner(BannerConfig{Enforcer: k, BanTime: 10 * time.Minute, Now: clk.now})
	if v, err := b.Ban(t.Context(), BanRequest{Addr: attacker, Reason: "scan"}); err != nil || !v.DryRun || len(k.bans) != 0 {
		t.Fatalf("dry run: got %+v, %v, kernel %v", v, err, k.bans)
	}
	other := netip.MustParseAddr("198.51.100.9")
	b.Reconfigure(BannerConfig{Enforce: true, BanTime: 3 * time.Minute})
	if b.DryRun() {
		t.Fatal("still dry run after Enforce")
	}
	if v, err := b.Ban(t.Context(), BanRequest{Addr: other, Reason: "scan"}); err != nil || v.DryRun || k.bans[other] != 3*time.Minute {
		t.Fatalf("enforced: got %+v, %v, kernel %v; want 3m in the kernel", v, err, k.bans)
	}
	allow := NewAllowlist(nil, []AllowRule{{netip.MustParsePrefix("203.0.113.0/24"), "kubernetes pod range of node n1"}})
	b.Reconfigure(BannerConfig{Allowlist: allow})
	if !b.DryRun() {
		t.Fatal("not dry run after a config without Enforce")
	}
	if k.bans[other] != 3*time.Minute {
		t.Fatalf("the ban in the kernel was touched: %v", k.bans)
	}
	_, err := b.Ban(t.Context(), BanRequest{Addr: attacker, Actor: "alice", Reason: "by hand"})
	var ae *AllowlistedError
	if !errors.As(err, &ae) || ae.Rule != "kubernetes pod range of node n1" {
		t.Fatalf("a ban of a newly allowlisted address: got %v", err)
	}
	if rule, ok := b.Allowlisted(attacker); !ok || rule != ae.Rule {
		t.Fatalf("Allowlisted: got %q, %v", rule, ok)
	}
}
