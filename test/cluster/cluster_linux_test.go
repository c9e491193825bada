// Package cluster_test runs cluster mode as operators run it: a real three-server NATS
// JetStream cluster, three `portpatrol serve` processes in location eu sharing a
// PostgreSQL store, and two `portpatrol agent` processes in location us inside a
// network namespace the test makes. Members are killed with SIGKILL; pages are counted
// at a real webhook receiver.
package cluster_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

const (
	heartbeat = 250 * time.Millisecond
	ttl       = time.Second
	interval  = 250 * time.Millisecond
)

// unavailable skips the test with why, or fails it under CI=true, where this machine
// has everything the test needs.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: this test must run)", msg)
	}
	t.Skip(msg)
}

func sh(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

// netns makes a namespace joined to this one by a veth pair and returns its name, the
// host end's address and the namespace end's address.
func netns(t *testing.T) (name, hostIP, nsIP string) {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "this test needs root to make a network namespace")
	}
	for _, b := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(b); err != nil {
			unavailable(t, "this test needs %s", b)
		}
	}
	n := rand.IntN(200) + 20
	name = fmt.Sprintf("ppcl%d-%d", os.Getpid()%100000, n)
	host, peer := fmt.Sprintf("ppch%d", n), fmt.Sprintf("ppcn%d", n)
	hostIP, nsIP = fmt.Sprintf("10.213.%d.1", n), fmt.Sprintf("10.213.%d.2", n)
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	sh(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", name)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
	sh(t, "ip", "addr", "add", hostIP+"/24", "dev", host)
	sh(t, "ip", "link", "set", host, "up")
	sh(t, "ip", "-n", name, "addr", "add", nsIP+"/24", "dev", peer)
	sh(t, "ip", "-n", name, "link", "set", peer, "up")
	sh(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name, hostIP, nsIP
}

// listener accepts and closes connections on addr until closed.
type listener struct {
	addr string
	mu   sync.Mutex
	ln   net.Listener
}

func listen(t *testing.T, host string) *listener {
	t.Helper()
	l := &listener{}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	l.addr = ln.Addr().String()
	l.serve(ln)
	t.Cleanup(l.close)
	return l
}

func (l *listener) serve(ln net.Listener) {
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func (l *listener) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
		l.ln = nil
	}
}

func (l *listener) open(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		t.Fatalf("reopen %s: %v", l.addr, err)
	}
	l.serve(ln)
}

// proc is one portpatrol process.
type proc struct {
	name string
	argv []string
	base string // serve's API, empty for agents
	cmd  *exec.Cmd
	log  *os.File
}

type fleet struct {
	t    *testing.T
	bin  string
	dir  string
	mu   sync.Mutex
	proc map[string]*proc
}

func (f *fleet) start(p *proc) {
	f.t.Helper()
	logf, err := os.OpenFile(filepath.Join(f.dir, p.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		f.t.Fatal(err)
	}
	off, _ := logf.Seek(0, io.SeekEnd) // a restarted member's earlier lines come before
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd, p.log = cmd, logf
	f.mu.Lock()
	f.proc[p.name] = p
	f.mu.Unlock()
	if p.argv[1] == "serve" {
		p.base = f.servingAt(p.name, off)
	}
}

// servingAt waits for serve's "portpatrol serving" line in its log (it listens on a
// port the kernel picks) and returns its base URL.
func (f *fleet) servingAt(name string, off int64) string {
	f.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(filepath.Join(f.dir, name+".log"))
		data = data[min(int(off), len(data)):]
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.Contains(line, `msg="portpatrol serving"`) {
				continue
			}
			if _, rest, ok := strings.Cut(line, " addr="); ok {
				addr, _, _ := strings.Cut(rest, " ")
				return "http://" + addr
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.t.Fatalf("%s never said where it serves; log:\n%s", name, f.logs())
	return ""
}

// kill ends a member as a crash would: SIGKILL, no leave.
func (f *fleet) kill(name string) {
	f.mu.Lock()
	p := f.proc[name]
	f.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.log.Close()
}

func (f *fleet) stopAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.proc {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range f.proc {
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			f.t.Errorf("%s did not stop within 15s of SIGTERM", p.name)
		}
		p.log.Close()
	}
}

func (f *fleet) logs() string {
	var b strings.Builder
	names := make([]string, 0, len(f.proc))
	for n := range f.proc {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		data, _ := os.ReadFile(filepath.Join(f.dir, n+".log"))
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if !strings.Contains(l, "target state changed") && !strings.Contains(l, "jobs updated") {
				lines = append(lines, l)
			}
		}
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		fmt.Fprintf(&b, "--- %s (last lines)\n%s\n", n, strings.Join(lines, "\n"))
	}
	return b.String()
}

func status(base string) (api.ClusterStatus, error) {
	var st api.ClusterStatus
	resp, err := http.Get(base + "/api/v1/cluster")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s: %s", resp.Status, b)
	}
	return st, json.Unmarshal(b, &st)
}

// tally records which member probed which target from which location, from the
// results stream itself.
type tally struct {
	mu   sync.Mutex
	seen map[string]map[string]map[string]time.Time // target → location → member → last result
}

func (ta *tally) add(target, loc, member string) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if ta.seen[target] == nil {
		ta.seen[target] = map[string]map[string]time.Time{}
	}
	if ta.seen[target][loc] == nil {
		ta.seen[target][loc] = map[string]time.Time{}
	}
	ta.seen[target][loc][member] = time.Now()
}

func (ta *tally) reset() {
	ta.mu.Lock()
	ta.seen = map[string]map[string]map[string]time.Time{}
	ta.mu.Unlock()
}

// members returns who probed target from loc since from.
func (ta *tally) members(target, loc string, from time.Time) []string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	var out []string
	for m, at := range ta.seen[target][loc] {
		if !at.Before(from) {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

func poll(t *testing.T, within time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > within {
			t.Fatalf("no %s within %s", what, within)
		}
		time.Sleep(25 * time.Millisecond)
	}
	return time.Since(start)
}

// pages counts the notifications the receiver got about target with the given alert
// name and status, as a receiver that honours Idempotency-Key does: a notification
// sent again after a leader died in the middle of its send counts once. raw counts
// every request.
func pages(rcv *testsvc.Webhook, target, alertname, status string) int {
	n, _ := countPages(rcv, target, alertname, status)
	return n
}

func countPages(rcv *testsvc.Webhook, target, alertname, status string) (distinct, raw int) {
	keys := map[string]bool{}
	for _, m := range rcv.Messages() {
		for _, a := range m.Alerts {
			if a.Labels["target"] == target && a.Labels["alertname"] == alertname && m.Status == status {
				raw++
				if m.Key == "" || !keys[m.Key] {
					distinct++
				}
				keys[m.Key] = true
				break
			}
		}
	}
	return distinct, raw
}

func TestClusterEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster, PostgreSQL and five portpatrol processes")
	}
	ns, hostIP, _ := netns(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "portpatrol")
	if out, err := exec.Command("go", "build", "-C", "../..", "-o", bin, "./cmd/portpatrol").CombinedOutput(); err != nil {
		t.Fatalf("build: %v: %s", err, out)
	}
	servers := testsvc.NATSClusterOn(t, 3, hostIP)
	urls := testsvc.NATSURLs(servers)
	pg := testsvc.Postgres(t, testsvc.PostgresOptions{})
	rcv := testsvc.NewWebhook(t)

	var static []*listener
	for range 12 {
		static = append(static, listen(t, hostIP))
	}
	flip, part := listen(t, hostIP), listen(t, hostIP)
	id := func(l *listener) string { return "tcp://" + l.addr }
	var targets strings.Builder
	for _, l := range append(slices.Clone(static), flip, part) {
		fmt.Fprintf(&targets, "  - url: %s\n", id(l))
	}
	cfgPath := filepath.Join(dir, "portpatrol.yaml")
	testsvc.WriteFile(t, cfgPath, fmt.Sprintf(`host_watch: {disabled: true}
storage: postgres://postgres@%s/test?sslmode=disable&connect_timeout=2
api: {anonymous_read: true}
defaults: {interval: %s, timeout: 200ms, failure_threshold: 1}
# The leader-kill rounds take a target down and up every second or two: as
# incidents, not as one flapping target.
scheduler: {flap_window: 200ms, flap_changes: 10}
alerting: {grouping: {group_wait: -1s, group_interval: -1s}}
notify:
  outbox: {backoff_min: 100ms, backoff_max: 500ms, poll_interval: 100ms}
  receivers: [{name: default, type: webhook, url: %s}]
cluster: {url: "%s", heartbeat: %s, ttl: %s, replicas: 3}
targets:
%s`, pg.Addr, interval, rcv.URL, urls, heartbeat, ttl, targets.String()))

	f := &fleet{t: t, bin: bin, dir: dir, proc: map[string]*proc{}}
	t.Cleanup(func() {
		f.stopAll()
		if t.Failed() {
			t.Log(f.logs())
			// The whole logs outlive the test's directory for a closer look.
			keep := filepath.Join(os.TempDir(), "portpatrol-cluster-test-logs")
			_ = os.RemoveAll(keep)
			_ = os.MkdirAll(keep, 0o700)
			logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
			for _, l := range logs {
				if b, err := os.ReadFile(l); err == nil {
					_ = os.WriteFile(filepath.Join(keep, filepath.Base(l)), b, 0o600)
				}
			}
			t.Logf("the members' logs are in %s", keep)
		}
	})
	serveProc := func(name string) *proc {
		data := filepath.Join(dir, name)
		if err := os.MkdirAll(data, 0o700); err != nil {
			t.Fatal(err)
		}
		return &proc{name: name, argv: []string{bin, "serve", "-c", cfgPath, "--listen", "127.0.0.1:0", "--data-dir", data,
			"--name", name, "--location", "eu", "--log-level", "debug"}}
	}
	agentProc := func(name string) *proc {
		return &proc{name: name, argv: []string{"ip", "netns", "exec", ns, bin, "agent", "--cluster", urls, "--location", "us",
			"--name", name, "--heartbeat", heartbeat.String(), "--ttl", ttl.String(), "--log-level", "debug"}}
	}
	procs := map[string]*proc{}
	for _, n := range []string{"s1", "s2", "s3"} {
		procs[n] = serveProc(n)
		f.start(procs[n])
	}
	for _, n := range []string{"g1", "g2"} {
		f.start(agentProc(n))
	}

	// The results stream, as the test sees it.
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ta := &tally{}
	ta.reset()
	if _, err := nc.Subscribe("portpatrol.results.>", func(m *nats.Msg) {
		var r struct{ Member, Location, Target string }
		if json.Unmarshal(m.Data, &r) == nil {
			ta.add(r.Target, r.Location, r.Member)
		}
	}); err != nil {
		t.Fatal(err)
	}

	// leaderOf returns the serve member that says it holds the alerting lease (a lease
	// record may still name a member that was just killed, until its TTL).
	leaderOf := func(string) string {
		for _, n := range []string{"s1", "s2", "s3"} {
			if p := procs[n]; p != nil {
				if st, err := status(p.base); err == nil && st.Leading {
					return n
				}
			}
		}
		return ""
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range []string{"s1", "s2", "s3"} {
			if p := procs[n]; p != nil {
				st, err := status(p.base)
				t.Logf("%s status: %+v %v", n, st, err)
				if resp, err := http.Get(p.base + "/api/v1/alerts?state=all"); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Logf("%s alerts: %s", n, b)
				}
			}
		}
		for _, m := range rcv.Messages() {
			for _, a := range m.Alerts {
				t.Logf("received %s %s %s at %s", m.Status, a.Labels["alertname"], a.Labels["target"], m.At.Format("15:04:05.000"))
			}
		}
	})
	live := func(base string, want int) bool {
		st, err := status(base)
		return err == nil && len(st.Members) == want && st.Leader != ""
	}
	took := poll(t, 90*time.Second, "five members and a leader", func() bool { return live(procs["s1"].base, 5) })
	t.Logf("five members and a leader %s after start", took.Round(time.Millisecond))

	all := append(slices.Clone(static), flip, part)
	exactlyOne := func(what string, live []string) {
		t.Helper()
		// Every live serve member sees the others, then the views settle (agents follow
		// within a heartbeat) and probes started under an older view finish.
		poll(t, 60*time.Second, what+": every serve member sees the members", func() bool {
			for _, n := range live {
				if st, err := status(procs[n].base); err != nil || len(st.Members) != len(live)+2 {
					return false
				}
			}
			return true
		})
		time.Sleep(4 * heartbeat)
		from := time.Now()
		time.Sleep(8 * interval)
		for _, l := range all {
			for _, loc := range []string{"eu", "us"} {
				if ms := ta.members(id(l), loc, from); len(ms) != 1 {
					t.Fatalf("%s: %s probed from %s by %v, want exactly one member", what, id(l), loc, ms)
				}
			}
		}
	}
	exactlyOne("at start", []string{"s1", "s2", "s3"})

	// A serve member that is not the leader dies: its targets move within the TTL.
	leader := leaderOf(procs["s1"].base)
	victim := "s3"
	if leader == victim {
		victim = "s2"
	}
	owned := []string{}
	from := time.Now()
	time.Sleep(4 * interval)
	for _, l := range all {
		if ms := ta.members(id(l), "eu", from); slices.Equal(ms, []string{victim}) {
			owned = append(owned, id(l))
		}
	}
	if len(owned) == 0 {
		t.Fatalf("%s owned none of the %d targets", victim, len(all))
	}
	f.kill(victim)
	killed := time.Now()
	moved := poll(t, 10*time.Second, "the killed member's targets probed by another", func() bool {
		for _, target := range owned {
			ms := ta.members(target, "eu", killed)
			if len(ms) == 0 || slices.Contains(ms, victim) && len(ms) == 1 {
				return false
			}
		}
		return true
	})
	t.Logf("SIGKILL of %s: its %d targets probed by another member %s later (TTL %s, interval %s)", victim, len(owned), moved.Round(time.Millisecond), ttl, interval)
	if limit := ttl + interval + 2*time.Second; moved > limit {
		t.Errorf("failover took %s, want under %s (TTL + interval + 2s for a loaded machine)", moved, limit)
	}
	exactlyOne("after the kill", slices.DeleteFunc([]string{"s1", "s2", "s3"}, func(n string) bool { return n == victim }))
	procs[victim] = serveProc(victim)
	f.start(procs[victim])
	poll(t, 60*time.Second, "the member back", func() bool { return live(procs["s1"].base, 5) })
	exactlyOne("after the member returned", []string{"s1", "s2", "s3"})

	// The alerting leader dies during open incidents, again and again: one page and
	// one resolve each time.
	rounds := 20
	base := func() string {
		for _, n := range []string{"s1", "s2", "s3"} {
			if _, err := status(procs[n].base); err == nil {
				return procs[n].base
			}
		}
		return procs["s1"].base
	}
	for i := range rounds {
		leader := ""
		poll(t, 30*time.Second, "a leader", func() bool { leader = leaderOf(base()); return leader != "" })
		t.Logf("round %d: leader %s, target down at %s", i+1, leader, time.Now().Format("15:04:05.000"))
		flip.close()
		if i%2 == 0 {
			// Killed before the page: the new leader pages.
			f.kill(leader)
		}
		poll(t, 30*time.Second, fmt.Sprintf("round %d: the page", i+1), func() bool {
			return pages(rcv, id(flip), "unreachable", "firing") >= i+1
		})
		if i%2 == 1 {
			// Killed with the incident open: the new leader resolves it.
			f.kill(leader)
		}
		procs[leader] = serveProc(leader)
		f.start(procs[leader])
		flip.open(t)
		poll(t, 30*time.Second, fmt.Sprintf("round %d: the resolve", i+1), func() bool {
			return pages(rcv, id(flip), "unreachable", "resolved") >= i+1
		})
	}
	time.Sleep(2 * time.Second) // a late duplicate would land now
	firing, rawFiring := countPages(rcv, id(flip), "unreachable", "firing")
	resolved, rawResolved := countPages(rcv, id(flip), "unreachable", "resolved")
	t.Logf("%d leader kills during incidents: %d pages and %d resolves at the receiver (%d and %d requests: the rest sent again after a leader died in the middle of a send, with the same Idempotency-Key)",
		rounds, firing, resolved, rawFiring, rawResolved)
	if firing != rounds || resolved != rounds {
		t.Errorf("got %d pages and %d resolves for %d incidents, want exactly one of each per incident", firing, resolved, rounds)
	}

	// One location cut off from a target: its agents' probes of it fail in their
	// namespace. No P0, one partial alert naming us, resolved when the link is back.
	poll(t, 60*time.Second, "five members and a leader", func() bool { return live(base(), 5) })
	_, port, _ := net.SplitHostPort(part.addr)
	sh(t, "ip", "netns", "exec", ns, "nft", "add table inet pptest")
	sh(t, "ip", "netns", "exec", ns, "nft", "add chain inet pptest out { type filter hook output priority 0 ; }")
	sh(t, "ip", "netns", "exec", ns, "nft", fmt.Sprintf("add rule inet pptest out ip daddr %s tcp dport %s reject with tcp reset", hostIP, port))
	poll(t, 30*time.Second, "the partial alert", func() bool {
		return pages(rcv, id(part), "unreachable_partial", "firing") >= 1
	})
	var summary string
	for _, m := range rcv.Messages() {
		for _, a := range m.Alerts {
			if a.Labels["target"] == id(part) && a.Labels["alertname"] == "unreachable_partial" {
				summary = fmt.Sprint(a.Labels)
			}
		}
	}
	time.Sleep(2 * time.Second)
	if n := pages(rcv, id(part), "unreachable", "firing"); n != 0 {
		t.Errorf("a P0 for %s with only one of two locations cut off (%d pages)", id(part), n)
	}
	sh(t, "ip", "netns", "exec", ns, "nft", "delete table inet pptest")
	poll(t, 30*time.Second, "the partial alert resolved", func() bool {
		return pages(rcv, id(part), "unreachable_partial", "resolved") >= 1
	})
	if n := pages(rcv, id(part), "unreachable_partial", "firing"); n != 1 {
		t.Errorf("%d partial pages, want 1", n)
	}
	t.Logf("location us cut off from %s: one partial alert (%s), no P0, resolved when the link was back", id(part), summary)

	// A member that does not own a target cannot raise its alert: a forged down
	// result from a non-member is fenced off by the leader.
	lead := leaderOf(base())
	if procs[lead] == nil {
		t.Fatalf("leader %q is not a serve member", lead)
	}
	before, err := status(procs[lead].base)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := json.Marshal(map[string]any{"member": "intruder", "location": "eu", "epoch": 1, "target": id(static[0]), "status": "down",
		"result": map[string]any{"target": id(static[0]), "class": "refused", "error": "forged", "start": time.Now()}})
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := js.Publish("portpatrol.results.eu", forged); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, 20*time.Second, "the forged results fenced", func() bool {
		st, err := status(procs[lead].base)
		return err == nil && st.Leader == lead && st.Fenced >= before.Fenced+5
	})
	time.Sleep(time.Second)
	if n := pages(rcv, id(static[0]), "unreachable", "firing"); n != 0 {
		t.Errorf("forged results from a non-member paged %d times", n)
	}
}
