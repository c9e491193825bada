//go:build linux

package intrusion

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/auditlog"
)

// guarded is the victim's watch: conntrack events read inside the victim, the
// detector, and bans in the victim's own nftables table.
type guarded struct {
	table    *Table
	banner   *Banner
	guard    *Guard
	source   *Source
	rec      *memRecorder
	mu       sync.Mutex
	findings []Finding
	banned   map[netip.Addr]error
}

func (g *guarded) found(src netip.Addr, class string) (Finding, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, f := range g.findings {
		if f.Source == src && (class == "" || f.Class == class) {
			return f, true
		}
	}
	return Finding{}, false
}

func (g *guarded) banResult(src netip.Addr) (error, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	err, ok := g.banned[src]
	return err, ok
}

func (l *lab) guard(t *testing.T, cfg Config, banTime time.Duration) *guarded {
	t.Helper()
	tbl, err := OpenTable(nsPath(l.vic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	allow := NewAllowlist([]netip.Addr{vicAttAddr, vicMonAddr, vicAttAddr6, vicMonAddr6}, []AllowRule{
		{monNet, "config intrusion.allowlist[0] (monitoring)"}, {monNet6, "config intrusion.allowlist[1] (monitoring, IPv6)"}})
	cfg.Allowlist = allow
	g := &guarded{table: tbl, rec: &memRecorder{}, banned: map[netip.Addr]error{}}
	g.banner = NewBanner(BannerConfig{Enforce: true, Enforcer: tbl, BanTime: banTime, Allowlist: allow, Recorder: g.rec})
	g.guard = NewGuard(GuardConfig{Detector: NewDetector(cfg), Banner: g.banner,
		OnFinding: func(f Finding) {
			g.mu.Lock()
			g.findings = append(g.findings, f)
			g.mu.Unlock()
		},
		OnBan: func(f Finding, err error) {
			g.mu.Lock()
			g.banned[f.Source] = err
			g.mu.Unlock()
		}})
	g.source = NewSource(SourceConfig{NetNS: nsPath(l.vic)})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := g.source.Run(ctx, g.guard.Handle); err != nil {
			t.Errorf("conntrack source: %v", err)
		}
	}()
	go func() { defer wg.Done(); g.guard.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	select {
	case <-g.source.Listening():
	case <-time.After(30 * time.Second):
		t.Fatal("the conntrack source did not start listening")
	}
	return g
}

func (l *lab) nmap(t *testing.T, from string, args ...string) *exec.Cmd {
	t.Helper()
	argv := append([]string{"netns", "exec", from, "nmap", "-n", "-Pn"}, args...)
	cmd := exec.Command("ip", argv...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// TestScanDetectedAndBanned runs full nmap scans at -T4 from the attacker against
// the victim's address while the allowlisted monitor scans the victim too: the
// attacker is found and banned (its next connect times out), the monitor is
// neither, and still gets through.
func TestScanDetectedAndBanned(t *testing.T) {
	for _, scan := range []string{"-sT", "-sS", "-sT -T2"} {
		t.Run(scan, func(t *testing.T) {
			timing := "-T4"
			if s, t2, ok := strings.Cut(scan, " "); ok {
				scan, timing = s, t2
			}
			needLab(t, "nmap")
			l := newLab(t)
			l.listenRedisLike(t, 6379)
			g := l.guard(t, Config{}, time.Minute)

			// The monitor probes every port first, then keeps at it during the attack.
			mon := l.nmap(t, l.mon, "-sT", "-T4", "-p", "1-1024", vicMonAddr.String())
			start := time.Now()
			l.nmap(t, l.att, scan, timing, "-p", "1-65535", vicAttAddr.String())
			poll(t, 30*time.Second, "the attacker's scan found", func() bool { _, ok := g.found(attAddr, ClassScan); return ok })
			f, _ := g.found(attAddr, ClassScan)
			t.Logf("%s %s found %s after %s: %s (ports sample %v, %d samples)", scan, timing, f.Kind, f.LastSeen.Sub(start).Round(time.Millisecond), f.Reason, f.Ports, len(f.Samples))
			poll(t, 30*time.Second, "the attacker banned", func() bool { _, ok := g.banResult(attAddr); return ok })
			if err, _ := g.banResult(attAddr); err != nil {
				t.Fatalf("ban: %v", err)
			}
			inKernel, err := g.table.List()
			if err != nil {
				t.Fatal(err)
			}
			if len(inKernel) != 1 || inKernel[0].Addr != attAddr || inKernel[0].Expires <= 0 {
				t.Fatalf("kernel set: got %+v, want %s alone with time left", inKernel, attAddr)
			}
			err = dialFrom(t, l.att, netip.AddrPortFrom(vicAttAddr, 6379), 2*time.Second)
			if !isTimeout(err) {
				t.Fatalf("the banned attacker's connect: got %v, want a timeout", err)
			}
			if err := mon.Wait(); err != nil {
				t.Fatalf("monitor's nmap: %v", err)
			}
			if err := dialFrom(t, l.mon, netip.AddrPortFrom(vicMonAddr, 6379), 5*time.Second); err != nil {
				t.Fatalf("the monitor's connect: %v", err)
			}
			if f, ok := g.found(monAddr, ""); ok {
				t.Fatalf("the allowlisted monitor was found: %+v", f)
			}
			var bans []auditlog.Record
			for _, r := range g.rec.all() {
				if r.Kind == auditlog.KindBan {
					bans = append(bans, r)
				}
			}
			if len(bans) != 1 || bans[0].Target != attAddr.String() || !strings.HasPrefix(bans[0].Outcome, "banned for") || len(bans[0].Evidence) == 0 {
				t.Fatalf("audit records of bans: got %+v", bans)
			}
		})
	}
}

// TestBruteForceDetected runs a loop of short connections, each one wrong password,
// to the victim's Redis-like port.
func TestBruteForceDetected(t *testing.T) {
	l := newLab(t)
	l.listenRedisLike(t, 6379)
	g := l.guard(t, Config{}, time.Minute)
	addr := netip.AddrPortFrom(vicAttAddr, 6379)
	for i := 0; i < 100; i++ {
		if _, ok := g.found(attAddr, ClassBruteForce); ok {
			break
		}
		err := do(t, l.att, func() error {
			c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			fmt.Fprintf(c, "AUTH default guess%d\r\n", i)
			_, err = bufio.NewReader(c).ReadString('\n')
			return err
		})
		if err != nil && !isTimeout(err) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	poll(t, 30*time.Second, "brute force found", func() bool { _, ok := g.found(attAddr, ClassBruteForce); return ok })
	f, _ := g.found(attAddr, ClassBruteForce)
	if f.Attempts < 40 || f.Ports[0] != 6379 {
		t.Fatalf("got %+v", f)
	}
	poll(t, 30*time.Second, "the attacker banned", func() bool { err, ok := g.banResult(attAddr); return ok && err == nil })
	if err := dialFrom(t, l.att, addr, time.Second); !isTimeout(err) {
		t.Fatalf("the banned attacker's connect: got %v, want a timeout", err)
	}
}

// TestAllowlistedBanRefused asks by hand for a ban of the monitor.
func TestAllowlistedBanRefused(t *testing.T) {
	l := newLab(t)
	g := l.guard(t, Config{}, time.Minute)
	_, err := g.banner.Ban(t.Context(), BanRequest{Addr: monAddr, Actor: "alice", Reason: "test"})
	var ae *AllowlistedError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "intrusion.allowlist[0] (monitoring)") {
		t.Fatalf("got %v, want a refusal naming the allowlist rule", err)
	}
	if got, _ := g.table.List(); len(got) != 0 {
		t.Fatalf("kernel set: got %+v, want empty", got)
	}
	recs := g.rec.all()
	if len(recs) != 1 || !strings.HasPrefix(recs[0].Outcome, "refused: ") {
		t.Fatalf("audit: got %+v", recs)
	}
}

// TestBanExpiresWithProcessGone has another process ban the attacker for 3 s and
// exit: the kernel lifts the ban on time without it.
func TestBanExpiresWithProcessGone(t *testing.T) {
	if os.Getenv("PORTPATROL_TEST_BAN_NETNS") != "" {
		banAndExit(t)
		return
	}
	l := newLab(t)
	l.listenRedisLike(t, 6379)
	addr := netip.AddrPortFrom(vicAttAddr, 6379)
	if err := dialFrom(t, l.att, addr, 5*time.Second); err != nil {
		t.Fatalf("before the ban: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBanExpiresWithProcessGone$")
	cmd.Env = append(os.Environ(), "PORTPATROL_TEST_BAN_NETNS="+nsPath(l.vic), "PORTPATROL_TEST_BAN_ADDR="+attAddr.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the banning process: %v\n%s", err, out)
	}
	banned := time.Now()
	if !cmd.ProcessState.Exited() {
		t.Fatal("the banning process did not exit")
	}
	if err := dialFrom(t, l.att, addr, time.Second); !isTimeout(err) {
		t.Fatalf("during the ban: got %v, want a timeout", err)
	}
	poll(t, 30*time.Second, "the ban lifted by the kernel", func() bool { return dialFrom(t, l.att, addr, 500*time.Millisecond) == nil })
	t.Logf("a 3 s ban set by a process that exited was lifted after %s", time.Since(banned).Round(100*time.Millisecond))
}

func banAndExit(t *testing.T) {
	tbl, err := OpenTable(os.Getenv("PORTPATROL_TEST_BAN_NETNS"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.Ban(netip.MustParseAddr(os.Getenv("PORTPATROL_TEST_BAN_ADDR")), 3*time.Second, "test: expires without its process"); err != nil {
		t.Fatal(err)
	}
}

// TestReconcile restores bans kept in the store into an emptied kernel set and
// removes what the store does not know.
func TestReconcile(t *testing.T) {
	l := newLab(t)
	tbl, err := OpenTable(nsPath(l.vic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	st := &memBanStore{}
	b := NewBanner(BannerConfig{Enforce: true, Enforcer: tbl, Store: st, BanTime: time.Hour})
	if _, err := b.Ban(t.Context(), BanRequest{Addr: attAddr, Reason: "scan"}); err != nil {
		t.Fatal(err)
	}
	stray := netip.MustParseAddr("2001:db8::66")
	if err := tbl.Ban(stray, time.Hour, "unknown to the store"); err != nil {
		t.Fatal(err)
	}
	// The daemon restarts after the table was removed (a firewall reload).
	if err := tbl.Remove(); err != nil {
		t.Fatal(err)
	}
	tbl2, err := OpenTable(nsPath(l.vic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl2.Close() })
	if err := tbl2.Ban(stray, time.Hour, "unknown to the store"); err != nil {
		t.Fatal(err)
	}
	b2 := NewBanner(BannerConfig{Enforce: true, Enforcer: tbl2, Store: st, BanTime: time.Hour})
	applied, removed, err := b2.Reconcile(t.Context())
	if err != nil || applied != 1 || removed != 1 {
		t.Fatalf("reconcile: got %d applied, %d removed, %v; want 1, 1", applied, removed, err)
	}
	got, err := tbl2.List()
	if err != nil || len(got) != 1 || got[0].Addr != attAddr || got[0].Expires < 50*time.Minute {
		t.Fatalf("kernel set: got %+v, %v", got, err)
	}
	// A ban of a banned address replaces it, with its new time (an escalation).
	if err := tbl2.Ban(attAddr, 3*time.Hour, "recurrence"); err != nil {
		t.Fatal(err)
	}
	if got, err := tbl2.List(); err != nil || len(got) != 1 || got[0].Expires < 2*time.Hour || got[0].Comment != "recurrence" {
		t.Fatalf("after replacing: got %+v, %v; want one element with about 3h left", got, err)
	}
	// A second open keeps the table and its elements.
	tbl3, err := OpenTable(nsPath(l.vic))
	if err != nil {
		t.Fatal(err)
	}
	defer tbl3.Close()
	if got, _ := tbl3.List(); len(got) != 1 {
		t.Fatalf("reopened table: got %+v, want the ban kept", got)
	}
}

// TestOverrunResyncs makes the kernel drop events (a tiny socket buffer and a
// stalled reader during a burst of flows): the source counts the overrun, reads on,
// and feeds the flows of a dump.
func TestOverrunResyncs(t *testing.T) {
	l := newLab(t)
	tbl, err := OpenTable(nsPath(l.vic)) // keeps connection tracking on in the victim
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	src := NewSource(SourceConfig{NetNS: nsPath(l.vic), ReadBuffer: 4096})
	release := make(chan struct{})
	var mu sync.Mutex
	seen := 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(at time.Time, e *Event) {
			<-release
			mu.Lock()
			seen++
			mu.Unlock()
		})
	}()
	defer func() { cancel(); <-done }()
	<-src.Listening()
	// 100 connections held open (still tracked when the dump is taken), then
	// connects to a closed port: a new flow and its reset, 3000 times.
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	l.listenHold(t, 7000)
	if err := do(t, l.att, func() error {
		for i := 0; i < 100; i++ {
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(vicAttAddr, 7000).String(), 5*time.Second)
			if err != nil {
				return err
			}
			held = append(held, c)
		}
		for i := 0; i < 3000; i++ {
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(vicAttAddr, 9).String(), time.Second)
			if err == nil {
				c.Close()
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	close(release)
	poll(t, 30*time.Second, "an overrun counted and a dump fed", func() bool {
		mu.Lock()
		mu.Unlock()
		select {
		case err := <-done:
			t.Fatalf("run: %v", err)
		default:
		}
		return src.Lost() > 0 && src.Resynced() > 0
	})
	if src.Resynced() < 100 {
		t.Errorf("fed again from the dump: got %d flows, want the 100 held open at least", src.Resynced())
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d events read, %d overruns, %d flows fed again from a dump", seen, src.Lost(), src.Resynced())
}

// TestRecordNmap records, with -record-nmap, the victim's conntrack events during a
// real nmap -sT -T4 scan of 300 ports (no bans) into testdata, for
// TestRecordedScanReplayedSlowly. Without it, it checks the recording there: the
// attacker's flows to 300 ports, each new and then destroyed.
func TestRecordNmap(t *testing.T) {
	if !*recordNmap {
		recs := readRecording(t, nmapRecording)
		ports, destroyed := map[uint16]bool{}, 0
		for _, r := range recs {
			if r.Src != attAddr || r.Dst != vicAttAddr {
				t.Fatalf("a recorded event not from the attacker to the victim: %+v", r)
			}
			ports[r.DstPort] = true
			if r.Type == EventDestroy {
				destroyed++
			}
		}
		if len(ports) != 300 || destroyed != 300 {
			t.Fatalf("%s: %d ports, %d flows destroyed; want 300 and 300 (record again with -record-nmap)", nmapRecording, len(ports), destroyed)
		}
		return
	}
	needLab(t, "nmap")
	l := newLab(t)
	l.listenRedisLike(t, 6379)
	tbl, err := OpenTable(nsPath(l.vic)) // connection tracking on
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	src := NewSource(SourceConfig{NetNS: nsPath(l.vic)})
	var mu sync.Mutex
	var recs []recorded
	var first time.Time
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(at time.Time, e *Event) {
			mu.Lock()
			defer mu.Unlock()
			if e.Src != attAddr {
				return
			}
			if first.IsZero() {
				first = at
			}
			recs = append(recs, recorded{Offset: at.Sub(first), Type: e.Type, Proto: e.Proto, Src: e.Src, Dst: e.Dst,
				SrcPort: e.SrcPort, DstPort: e.DstPort, TCPState: e.TCPState, Assured: e.Assured})
		})
	}()
	<-src.Listening()
	cmd := l.nmap(t, l.att, "-sT", "-T4", "-p", "1-300", vicAttAddr.String())
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the last resets
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	f, err := os.Create(nmapRecording)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("recorded %d events to %s", len(recs), nmapRecording)
}

// TestIPv6ScanBannedAndExpires runs a full nmap -sT -T4 scan over IPv6 from the
// attacker's unique local address while the allowlisted monitor probes the victim
// over IPv6 too: the attacker is found and banned in the victim's IPv6 set with the
// ban's timeout, its next connect times out, and the kernel lifts the ban on time.
func TestIPv6ScanBannedAndExpires(t *testing.T) {
	needLab(t, "nmap", "nft")
	l := newLab(t)
	l.listenRedisLike(t, 6379)
	const banTime = 4 * time.Second
	g := l.guard(t, Config{}, banTime)
	target := netip.AddrPortFrom(vicAttAddr6, 6379)
	if err := dialFrom(t, l.att, target, 5*time.Second); err != nil {
		t.Fatalf("before the scan, over IPv6: %v", err)
	}
	mon := l.nmap(t, l.mon, "-6", "-sT", "-T4", "-p", "1-1024", vicMonAddr6.String())
	start := time.Now()
	scan := l.nmap(t, l.att, "-6", "-sT", "-T4", "-p", "1-65535", vicAttAddr6.String())
	poll(t, 30*time.Second, "the attacker's IPv6 scan found", func() bool { _, ok := g.found(attAddr6, ClassScan); return ok })
	f, _ := g.found(attAddr6, ClassScan)
	t.Logf("found %s from %s after %s: %s", f.Kind, f.Source, f.LastSeen.Sub(start).Round(time.Millisecond), f.Reason)
	poll(t, 30*time.Second, "the attacker banned", func() bool { _, ok := g.banResult(attAddr6); return ok })
	banned := time.Now()
	if err, _ := g.banResult(attAddr6); err != nil {
		t.Fatalf("ban: %v", err)
	}
	scan.Process.Kill() // no more flows once the ban ends

	inKernel, err := g.table.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(inKernel) != 1 || inKernel[0].Addr != attAddr6 || inKernel[0].Expires <= 0 || inKernel[0].Expires > banTime {
		t.Fatalf("kernel sets: got %+v, want %s alone with at most %s left", inKernel, attAddr6, banTime)
	}
	// What nft itself shows: the element in the IPv6 set with its timeout, the IPv4
	// set empty.
	out, err := exec.Command("ip", "netns", "exec", l.vic, "nft", "list", "set", "inet", TableName, setV6).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list set %s: %v: %s", setV6, err, out)
	}
	if want := attAddr6.String() + " timeout 4s expires"; !strings.Contains(string(out), want) {
		t.Fatalf("nft list set %s: got\n%s\nwant an element %q", setV6, out, want)
	}
	out, err = exec.Command("ip", "netns", "exec", l.vic, "nft", "list", "set", "inet", TableName, setV4).CombinedOutput()
	if err != nil || strings.Contains(string(out), "elements") {
		t.Fatalf("nft list set %s: got %v\n%s\nwant no elements", setV4, err, out)
	}
	if err := dialFrom(t, l.att, target, time.Second); !isTimeout(err) {
		t.Fatalf("the banned attacker's IPv6 connect: got %v, want a timeout", err)
	}
	if err := mon.Wait(); err != nil {
		t.Fatalf("monitor's nmap: %v", err)
	}
	if err := dialFrom(t, l.mon, netip.AddrPortFrom(vicMonAddr6, 6379), 5*time.Second); err != nil {
		t.Fatalf("the monitor's IPv6 connect: %v", err)
	}
	if f, ok := g.found(monAddr6, ""); ok {
		t.Fatalf("the allowlisted monitor was found: %+v", f)
	}

	poll(t, 3*banTime, "the IPv6 ban lifted by the kernel", func() bool {
		got, err := g.table.List()
		return err == nil && len(got) == 0
	})
	lifted := time.Since(banned)
	if lifted < banTime-time.Second {
		t.Fatalf("the ban was lifted after %s, before its %s", lifted, banTime)
	}
	if err := dialFrom(t, l.att, target, 5*time.Second); err != nil {
		t.Fatalf("the attacker's IPv6 connect after the ban: %v", err)
	}
	t.Logf("a %s IPv6 ban lifted by the kernel %s after it was set", banTime, lifted.Round(100*time.Millisecond))
}
