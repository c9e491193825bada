package daemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/hostwatch"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// listenEnv makes the test binary a service: it listens on 127.0.0.1:0, prints the
// address, and accepts until killed.
const listenEnv = "DAEMON_TEST_LISTEN"

func TestMain(m *testing.M) {
	if os.Getenv(listenEnv) != "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(ln.Addr().String())
		for {
			if c, err := ln.Accept(); err == nil {
				c.Close()
			}
		}
	}
	os.Exit(m.Run())
}

// startService runs a child process that listens on a loopback port, and returns it
// with its address. It is killed at the end of the test.
func startService(t *testing.T) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), listenEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("service: %v", err)
	}
	return cmd, strings.TrimSpace(line)
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// ignoreAllBut is a host_watch.ignore.ports list that leaves only ports to be learned,
// so the test learns its own listeners and no other of the host's.
func ignoreAllBut(ports ...int) string {
	slices.Sort(ports)
	var rs []string
	lo := 1
	for _, p := range ports {
		if p > lo {
			rs = append(rs, fmt.Sprintf("%q", fmt.Sprintf("%d-%d", lo, p-1)))
		}
		lo = p + 1
	}
	if lo <= 65535 {
		rs = append(rs, fmt.Sprintf("%q", fmt.Sprintf("%d-65535", lo)))
	}
	return "[" + strings.Join(rs, ", ") + "]"
}

// learnedOf returns the listener at addr from GET /api/v1/learned, and whether it is
// listed.
func learnedOf(t *testing.T, base, addr string) (api.LearnedListener, bool) {
	t.Helper()
	code, body := testsvc.Get(t, base+"/api/v1/learned")
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/learned: %d %s", code, body)
	}
	var v struct{ Listeners []api.LearnedListener }
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("GET /api/v1/learned: %v: %s", err, body)
	}
	for _, l := range v.Listeners {
		if l.Addr == addr {
			return l, true
		}
	}
	return api.LearnedListener{}, false
}

// within advances the fake clock by step until ok holds, giving the daemon real time
// to act after each step; it fails after a minute of real time.
func within(t *testing.T, clock *notifytest.Clock, step time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %s", what)
		}
		clock.Advance(step)
		time.Sleep(100 * time.Millisecond)
	}
}

// aboutTarget says what the receiver was told about target, and the engine's alerts
// of it with their summaries and journals, so that a failure shows which source
// raised or resolved what.
func aboutTarget(d *Daemon, rcv *testsvc.Webhook, target string) string {
	var b strings.Builder
	for _, m := range testsvc.About(rcv.Messages(), target) {
		for _, a := range m.Alerts {
			if a.Labels["target"] == target {
				fmt.Fprintf(&b, "  message %s %s: rule=%s class=%s labels=%v\n", m.At.Format("15:04:05.000"), m.Kind, a.Labels["rule"], a.Labels["class"], a.Labels)
			}
		}
	}
	all := patrol.AlertStates
	for _, a := range d.engine().List(alert.Filter{Target: target, States: all}) {
		fmt.Fprintf(&b, "  alert %s %s rule=%s class=%s starts=%s fired=%s resolved=%s by %q\n    summary: %s\n    description: %s\n", a.ID, a.State, a.Rule, a.Class, a.StartsAt.Format(time.RFC3339Nano), a.FiredAt.Format(time.RFC3339Nano), a.ResolvedAt.Format(time.RFC3339Nano), a.ResolvedBy, a.Summary, a.Description)
		if r, ok := d.engine().Get(a.ID); ok {
			for _, n := range r.Notes {
				fmt.Fprintf(&b, "    note %s by %s %s: %s\n", n.At.Format(time.RFC3339Nano), n.By, n.Action, n.Text)
			}
		}
	}
	return b.String()
}

func kinds(ms []testsvc.WebhookMsg) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Kind)
	}
	return out
}

// TestLearnedListenerLifeCycle: with no targets configured, a real service's listener
// is probed at once while it is learned, named after its process; once learned and
// killed it pages one P0, is acknowledged in portpatrol's name (its process exited
// and was not restarted), is retired after forget_after on the daemon's fake clock
// with no further page, and is forgotten through the API. A listener on an ignored
// port is never learned.
func TestLearnedListenerLifeCycle(t *testing.T) {
	rcv := testsvc.NewWebhook(t)
	ignored, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ignored.Close()
	child, addr := startService(t)
	port := portOf(t, addr)
	target := "tcp://" + addr
	clock := notifytest.NewClock(time.Now())
	cfg := parse(t, fmt.Sprintf(`host_name: e2e-host
host_watch:
  interval: 100ms
  learn_after: 1m
  forget_after: 6h
  ignore: {ephemeral_after: -1s, ports: %s}
defaults: {interval: 300ms, timeout: 200ms}
api: {anonymous_read: true}
alerting: {grouping: {group_wait: -1s, group_interval: -1s}}
notify:
  outbox: {backoff_min: 100ms, backoff_max: 200ms, poll_interval: 100ms}
  receivers: [{name: default, type: webhook, url: %s}]
`, ignoreAllBut(port), rcv.URL))
	d, err := New(Config{Config: cfg, DataDir: t.TempDir(), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	base := runDaemon(t, d)

	// The first minute: learning, with its countdown, and probed at once.
	var l api.LearnedListener
	within(t, clock, 0, "the service being learned", func() bool {
		var ok bool
		l, ok = learnedOf(t, base, addr)
		return ok
	})
	if l.State != "learning" || l.LearnAt == nil || !l.LearnAt.Equal(l.FirstSeen.Add(time.Minute)) || l.TargetID != target || l.Port != port || l.PID != child.Process.Pid {
		t.Errorf("learning listener: got %+v, want learning until first_seen+1m, target %s, pid %d", l, target, child.Process.Pid)
	}
	waitFor(t, base+"/metrics", `portpatrol_probe_success{`, `target="`+target+`"} 1`)
	code, body := testsvc.Get(t, base+"/api/v1/targets/"+url.PathEscape(target))
	if want := fmt.Sprintf(`"name":"%s :%d"`, l.Process, port); code != 200 || l.Process == "" || !strings.Contains(body, want) {
		t.Errorf("target %s: got %d %s, want %s", target, code, body, want)
	}
	if _, ok := learnedOf(t, base, ignored.Addr().String()); ok {
		t.Errorf("a listener on an ignored port is listed")
	}

	within(t, clock, 5*time.Second, "the service learned", func() bool {
		l, _ = learnedOf(t, base, addr)
		return l.State == "learned"
	})

	// Killed: one P0, labelled with the host's one name.
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	within(t, clock, time.Second, "the P0 at the receiver", func() bool { return len(testsvc.About(rcv.Messages(), target)) > 0 })
	first := testsvc.About(rcv.Messages(), target)[0]
	if first.Kind != "firing" || first.Alerts[0].Labels["severity"] != "P0" || first.Alerts[0].Labels["host"] != "e2e-host" {
		t.Errorf("first message: %+v, want a firing P0 with host=e2e-host", first)
	}
	within(t, clock, time.Second, "the listener gone", func() bool {
		l, _ = learnedOf(t, base, addr)
		return l.State == "gone" && l.Fate != ""
	})
	if l.State != "gone" || l.Fate != "exited" || l.ForgetAt == nil || l.GoneSince == nil || !l.ForgetAt.Equal(l.GoneSince.Add(6*time.Hour)) {
		t.Fatalf("killed service's listener: got %+v, want gone, exited, retired 6h after it went", l)
	}
	within(t, clock, time.Second, "the alert acknowledged by portpatrol", func() bool {
		as := d.engine().List(alert.Filter{Target: target})
		return len(as) == 1 && as[0].AckedBy == "portpatrol"
	})
	acked := aboutTarget(d, rcv, target) // before the engine drops resolved alerts

	// Six hours on: retired, resolved, and not one more page.
	within(t, clock, 30*time.Minute, "the listener retired", func() bool {
		l, _ = learnedOf(t, base, addr)
		return l.State == "retired"
	})
	within(t, clock, time.Second, "the resolve at the receiver", func() bool {
		ms := testsvc.About(rcv.Messages(), target)
		return ms[len(ms)-1].Kind == "resolved"
	})
	clock.Advance(24 * time.Hour)
	time.Sleep(time.Second)
	clock.Advance(time.Second)
	time.Sleep(500 * time.Millisecond)
	if got := kinds(testsvc.About(rcv.Messages(), target)); !slices.Equal(got, []string{"firing", "acknowledged", "resolved"}) {
		t.Errorf("notifications about %s: got %q, want one page, portpatrol's ack and the resolve\nwhen acknowledged:\n%s\nat the end:\n%s", target, got, acked, aboutTarget(d, rcv, target))
	}
	if code, _ := testsvc.Get(t, base+"/api/v1/targets/"+url.PathEscape(target)); code != http.StatusNotFound {
		t.Errorf("a retired listener is still a target: GET answered %d", code)
	}

	// Forgotten through the API: gone from the list.
	op := newToken(t, d, store.RoleOperator)
	code, body = send(t, http.MethodPost, base+"/api/v1/learned/forget?gone=true", op, nil)
	if code != http.StatusOK || !strings.Contains(body, `"`+addr+`"`) {
		t.Errorf("forget gone: got %d %s, want %s forgotten", code, body, addr)
	}
	if _, ok := learnedOf(t, base, addr); ok {
		t.Errorf("%s still listed after forget", addr)
	}
}

// TestHandResolveOfLearnedListenerSticks: the P0 of a learned listener that is gone
// while its process still runs, resolved by hand, does not fire again: not from its
// probe, not from the watch, not after a restart. The resolve answer hints that it may
// be forgotten.
func TestHandResolveOfLearnedListenerSticks(t *testing.T) {
	rcv := testsvc.NewWebhook(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	target := "tcp://" + addr
	dir := t.TempDir()
	body := fmt.Sprintf(`host_watch:
  interval: 100ms
  learn_after: 1m
  ignore: {ephemeral_after: -1s, ports: %s}
defaults: {interval: 300ms, timeout: 200ms}
api: {anonymous_read: true}
alerting: {grouping: {group_wait: -1s, group_interval: -1s}}
notify:
  outbox: {backoff_min: 100ms, backoff_max: 200ms, poll_interval: 100ms}
  receivers: [{name: default, type: webhook, url: %s}]
`, ignoreAllBut(portOf(t, addr)), rcv.URL)
	clock := notifytest.NewClock(time.Now())
	d, err := New(Config{Config: parse(t, body), DataDir: dir, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	base, stop := serveDaemon(t, d)
	within(t, clock, 5*time.Second, "the listener learned", func() bool {
		l, _ := learnedOf(t, base, addr)
		return l.State == "learned"
	})
	ln.Close() // this process runs on: an outage, not a retirement
	within(t, clock, time.Second, "the P0", func() bool { return len(testsvc.About(rcv.Messages(), target)) > 0 })
	within(t, clock, 0, "the listener gone", func() bool {
		l, _ := learnedOf(t, base, addr)
		return l.State == "gone"
	})
	as := d.engine().List(alert.Filter{Target: target, States: []patrol.AlertState{patrol.AlertFiring}})
	if len(as) != 1 {
		t.Fatalf("firing alerts of %s: %+v", target, as)
	}
	op := newToken(t, d, store.RoleOperator)
	code, answer := send(t, http.MethodPost, base+"/api/v1/alerts/"+as[0].ID+"/resolve", op, nil)
	if code != http.StatusOK || !strings.Contains(answer, `"hint":"`+addr+` is a learned listener`) || !strings.Contains(answer, "portpatrol learned forget "+addr) {
		t.Fatalf("resolve: got %d %s, want a hint to forget it", code, answer)
	}
	within(t, clock, 0, "the listener gone, muted, its process running", func() bool {
		l, _ := learnedOf(t, base, addr)
		return l.State == "gone" && l.Muted && l.Fate == "running"
	})
	// Its probe ran every 300ms before: 20 s of both clocks would have fired it again.
	for range 10 {
		clock.Advance(2 * time.Second)
		time.Sleep(200 * time.Millisecond)
	}
	paged := func() int {
		n := 0
		for _, m := range testsvc.About(rcv.Messages(), target) {
			if m.Kind == "firing" {
				n++
			}
		}
		return n
	}
	if n := paged(); n != 1 {
		t.Errorf("after the hand resolve: %d firing messages, want the first only; %q", n, kinds(testsvc.About(rcv.Messages(), target)))
	}
	stop()

	// After a restart, still quiet.
	clock = notifytest.NewClock(clock.Now())
	d2, err := New(Config{Config: parse(t, body), DataDir: dir, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	base = runDaemon(t, d2)
	for range 10 {
		clock.Advance(2 * time.Second)
		time.Sleep(200 * time.Millisecond)
	}
	if n := paged(); n != 1 {
		t.Errorf("after a restart: %d firing messages, want the first only", n)
	}
	if l, ok := learnedOf(t, base, addr); !ok || !l.Muted {
		t.Errorf("after a restart: %+v, want it listed, muted", l)
	}
	if code, _ := testsvc.Get(t, base+"/api/v1/targets/"+url.PathEscape(target)); code != http.StatusNotFound {
		t.Errorf("a muted gone listener is probed after a restart: GET target answered %d", code)
	}
}

// TestOneHostNameAcrossSources: a probe of 127.0.0.1, the host watch and an audit of
// 127.0.0.1 label their alerts with the one host_name.
func TestOneHostNameAcrossSources(t *testing.T) {
	closed := testsvc.ClosedPort(t)
	rogue := testsvc.Listen(t)
	watched, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	testsvc.WriteFile(t, filepath.Join(dir, "ports.yaml"), fmt.Sprintf("scan:\n  ports: \"%d\"\nhosts:\n  - match: 127.0.0.1\n", portOf(t, rogue)))
	path := filepath.Join(dir, "pp.yaml")
	testsvc.WriteFile(t, path, fmt.Sprintf(`host_name: one-box
host_watch: {interval: 100ms, learn_after: 1s, ignore: {ephemeral_after: -1s, ports: %s}}
defaults: {interval: 300ms, timeout: 200ms}
targets: [{url: "tcp://%s"}]
audits: [{name: local, policy: ports.yaml, interval: 1s, targets: [127.0.0.1]}]
`, ignoreAllBut(portOf(t, watched.Addr().String())), closed))
	d, _ := startDaemon(t, path)
	wtarget := "tcp://" + watched.Addr().String()
	deadline := time.Now().Add(time.Minute)
	for !slices.ContainsFunc(d.watch.Targets(), func(l hostwatch.Listener) bool { return l.Target == wtarget && l.State == hostwatch.StateLearned }) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never learned", wtarget)
		}
		time.Sleep(100 * time.Millisecond)
	}
	watched.Close()
	// The audit's alert is that of this test's process, which holds the rogue port
	// among others.
	_, roguePort, _ := net.SplitHostPort(rogue)
	want := []string{"probe", "host watch", "audit"}
	for {
		got := map[string]string{}
		for _, a := range d.engine().List(alert.Filter{States: patrol.AlertStates}) {
			switch {
			case a.Class == patrol.AlertUnreachable && a.Target == "tcp://"+closed:
				got["probe"] = a.Labels["host"]
			case a.Class == patrol.AlertUnreachable && a.Target == wtarget: // its probe's or the watch's, one incident
				got["host watch"] = a.Labels["host"]
			case a.Class == patrol.AlertSecurity && (a.Labels["port"] == roguePort || strings.Contains(a.Summary, roguePort)):
				got["audit"] = a.Labels["host"]
			}
		}
		if len(got) == len(want) {
			for tg, h := range got {
				if h != "one-box" {
					t.Errorf("alert of %s: host=%q, want one-box", tg, h)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("alerts after a minute: %v, want one for each of %v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A configured target on a listener the watch is still learning is the configured one:
// its results page as configured.
func TestConfiguredTargetWinsOverLearning(t *testing.T) {
	conf, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conf.Close()
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cfg := parse(t, fmt.Sprintf(`host_watch: {interval: 100ms, learn_after: 1h, ignore: {ephemeral_after: -1s, ports: %s}}
targets: [{url: "tcp://%s", name: configured}]
`, ignoreAllBut(portOf(t, conf.Addr().String()), portOf(t, other.Addr().String())), conf.Addr()))
	d, err := New(Config{Config: cfg, DataDir: t.TempDir(), Clock: notifytest.NewClock(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, d)
	mine, theirs := "tcp://"+conf.Addr().String(), "tcp://"+other.Addr().String()
	deadline := time.Now().Add(30 * time.Second)
	for !d.learningTarget(theirs) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never probed while being learned", theirs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := d.reapply(); err != nil {
		t.Fatal(err)
	}
	if d.learningTarget(mine) {
		t.Errorf("the configured target %s is taken for a listener being learned: its failures would page nobody", mine)
	}
	if got := (&apiAdapter{d: d}).names()[mine]; got != "configured" {
		t.Errorf("name of %s: got %q, want the configured one", mine, got)
	}
}
