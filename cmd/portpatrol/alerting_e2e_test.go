package main

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
	"syscall"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// TestMain lets the test binary stand in for the portpatrol binary: with
// PORTPATROL_TEST_MAIN=1 it runs the command line in its arguments, so end-to-end
// tests can start (and SIGKILL) a real daemon process.
func TestMain(m *testing.M) {
	if os.Getenv("PORTPATROL_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	if addr := os.Getenv("PORTPATROL_TEST_LISTEN"); addr != "" {
		// A stand-in service: listen, accept and hold until killed.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(1)
			}
			c.Close()
		}
	}
	os.Exit(m.Run())
}

func alertingConfig(target, webhook string) string {
	return fmt.Sprintf(`host_watch: {disabled: true}   # other processes' listeners are not this test's
defaults:
  interval: 500ms
  timeout: 200ms
  failure_threshold: 2
targets:
  - url: %s
    labels: {service: web}
alerting:
  grouping: {group_wait: -1s, group_interval: -1s}
api: {anonymous_read: true}
notify:
  outbox: {backoff_min: 100ms, backoff_max: 200ms, poll_interval: 100ms}
  receivers:
    - {name: default, type: webhook, url: %s}
`, target, webhook)
}

// daemonProc is a serve process started from the test binary.
type daemonProc struct {
	cmd  *exec.Cmd
	base string
	done chan error
}

func startDaemonProc(t *testing.T, cfgPath, dataDir string) *daemonProc {
	t.Helper()
	addr := testsvc.ClosedPort(t)
	cmd := exec.Command(os.Args[0], "serve", "-c", cfgPath, "--data-dir", dataDir, "--listen", addr, "--log-level", "debug")
	cmd.Env = append(os.Environ(), "PORTPATROL_TEST_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{cmd: cmd, base: "http://" + addr, done: make(chan error, 1)}
	logPath := filepath.Join(t.TempDir(), "serve.log")
	go func() {
		f, _ := os.Create(logPath)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(f, sc.Text())
		}
		f.Close()
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("serve log:\n%s", b)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("serve at %s not ready within 15s", p.base)
	return nil
}

func (p *daemonProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

func TestServeClosedPortPagesOnceAndResolvesOnce(t *testing.T) {
	rcv := testsvc.NewWebhook(t)
	port := testsvc.NewFlip(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pp.yaml")
	testsvc.WriteFile(t, cfg, alertingConfig(port.Addr, rcv.URL))
	startDaemonProc(t, cfg, dir)

	time.Sleep(1200 * time.Millisecond) // up and judged up
	closedAt := time.Now()
	port.Close()
	msgs := rcv.Wait(t, 1, 10*time.Second)
	took := msgs[0].At.Sub(closedAt)
	// interval + timeout + the immediate confirmation, plus delivery.
	if limit := 500*time.Millisecond + 200*time.Millisecond + 200*time.Millisecond + 500*time.Millisecond; took > limit {
		t.Errorf("P0 arrived %s after the port closed, want within %s", took, limit)
	}
	t.Logf("port closed → P0 at the webhook in %s", took.Round(time.Millisecond))
	if m := msgs[0]; m.Status != "firing" || len(m.Alerts) != 1 || m.Alerts[0].Labels["severity"] != "P0" || m.Alerts[0].Labels["service"] != "web" {
		t.Errorf("first message = %+v, want one firing P0 alert labelled service=web", m)
	}

	port.Open(t)
	msgs = rcv.Wait(t, 2, 10*time.Second)
	time.Sleep(1500 * time.Millisecond) // nothing more may come
	msgs = rcv.Messages()
	if got := testsvc.Statuses(msgs); got != "firing,resolved" {
		t.Errorf("receiver got %q, want exactly firing,resolved", got)
	}
}

func TestServeReceiverOutageDeliversEverythingInOrder(t *testing.T) {
	rcv := testsvc.NewWebhook(t)
	port := testsvc.NewFlip(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pp.yaml")
	testsvc.WriteFile(t, cfg, alertingConfig(port.Addr, rcv.URL))
	startDaemonProc(t, cfg, dir)

	time.Sleep(1200 * time.Millisecond)
	rcv.SetDown(true)
	port.Close()
	time.Sleep(2 * time.Second) // fired while the receiver is down
	port.Open(t)
	time.Sleep(2 * time.Second) // resolved while it is still down
	if n := len(rcv.Messages()); n != 0 {
		t.Fatalf("receiver is down but holds %d messages", n)
	}
	rcv.SetDown(false)
	rcv.Wait(t, 2, 10*time.Second)
	time.Sleep(1 * time.Second)
	if got := testsvc.Statuses(rcv.Messages()); got != "firing,resolved" {
		t.Errorf("after the outage the receiver got %q, want firing,resolved in that order and once each", got)
	}
}

func TestServeSIGKILLDoesNotPageTwiceOrLoseTheResolve(t *testing.T) {
	rcv := testsvc.NewWebhook(t)
	port := testsvc.NewFlip(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pp.yaml")
	testsvc.WriteFile(t, cfg, alertingConfig(port.Addr, rcv.URL))
	p := startDaemonProc(t, cfg, dir)

	time.Sleep(1200 * time.Millisecond)
	port.Close()
	rcv.Wait(t, 1, 10*time.Second)
	time.Sleep(1500 * time.Millisecond) // let the history writer flush a batch or two
	before := recentResults(t, p.base, "tcp://"+port.Addr)
	p.kill(t)

	p = startDaemonProc(t, cfg, dir) // the incident is still open; the port still closed
	after := recentResults(t, p.base, "tcp://"+port.Addr)
	if len(before) == 0 || len(after) < len(before) {
		t.Errorf("history before the kill had %d results, after the restart %d: want it kept", len(before), len(after))
	}
	open := alertsJSON(t, p.base)
	if !strings.Contains(open, `"severity":"P0"`) || !strings.Contains(open, `"state":"firing"`) {
		t.Errorf("after the restart the incident is not open: %s", open)
	}
	time.Sleep(3 * time.Second)
	if got := testsvc.Statuses(rcv.Messages()); got != "firing" {
		t.Fatalf("after the restart the receiver got %q, want the one firing message only", got)
	}
	port.Open(t)
	rcv.Wait(t, 2, 10*time.Second)
	time.Sleep(1 * time.Second)
	if got := testsvc.Statuses(rcv.Messages()); got != "firing,resolved" {
		t.Errorf("receiver got %q, want firing,resolved", got)
	}
}

// recentResults reads a target's latest results through the API (anonymous reads are
// on in the test config).
func recentResults(t *testing.T, base, id string) []json.RawMessage {
	t.Helper()
	code, body := testsvc.Get(t, base+"/api/v1/targets/"+url.PathEscape(id))
	if code != 200 {
		t.Fatalf("GET target %s: %d %s", id, code, body)
	}
	var v struct {
		Recent []json.RawMessage `json:"recent"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("target %s: %v in %s", id, err, body)
	}
	return v.Recent
}

func alertsJSON(t *testing.T, base string) string {
	t.Helper()
	code, body := testsvc.Get(t, base+"/api/v1/alerts")
	if code != 200 {
		t.Fatalf("GET alerts: %d %s", code, body)
	}
	return body
}

// ignoreOtherPorts is a host_watch.ignore.ports list of every port but port.
func ignoreOtherPorts(port string) string {
	p, _ := strconv.Atoi(port)
	var rs []string
	if p > 1 {
		rs = append(rs, fmt.Sprintf(`"1-%d"`, p-1))
	}
	if p < 65535 {
		rs = append(rs, fmt.Sprintf(`"%d-65535"`, p+1))
	}
	return "[" + strings.Join(rs, ", ") + "]"
}

// startListenerProc runs a child process that listens on addr until killed.
func startListenerProc(t *testing.T, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PORTPATROL_TEST_LISTEN="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return cmd
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("child never listened on %s", addr)
	return nil
}

func TestServeHostWatchPagesWithinASecondWhenAListenerDies(t *testing.T) {
	rcv := testsvc.NewWebhook(t)
	addr := testsvc.ClosedPort(t)
	child := startListenerProc(t, addr)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pp.yaml")
	// The learned listener is probed too; a short interval lets its probe see it back
	// soon, since the probe and the watch share the incident.
	// The test's port comes from the ephemeral range, which is learned after an hour by
	// default; the host's other listeners are not this test's.
	_, port, _ := net.SplitHostPort(addr)
	testsvc.WriteFile(t, cfg, fmt.Sprintf(`host_watch: {interval: 250ms, learn_after: 1s, ignore: {ephemeral_after: -1s, ports: %s}}
defaults: {interval: 500ms, timeout: 200ms}
api: {anonymous_read: true}
alerting:
  grouping: {group_wait: -1s, group_interval: -1s}
notify:
  outbox: {backoff_min: 100ms, backoff_max: 200ms, poll_interval: 100ms}
  receivers:
    - {name: default, type: webhook, url: %s}
`, ignoreOtherPorts(port), rcv.URL))
	p := startDaemonProc(t, cfg, dir)

	// Probed through its bind address at once, and learned after a second.
	target := "tcp://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, targets := testsvc.Get(t, p.base+"/api/v1/targets")
		_, learned := testsvc.Get(t, p.base+"/api/v1/learned")
		var v struct {
			Listeners []struct{ Addr, State string }
		}
		_ = json.Unmarshal([]byte(learned), &v)
		if strings.Contains(targets, `"id":"`+target+`"`) && slices.ContainsFunc(v.Listeners, func(l struct{ Addr, State string }) bool {
			return l.Addr == addr && l.State == "learned"
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host watch never learned %s: %s", target, learned)
		}
		time.Sleep(100 * time.Millisecond)
	}
	killedAt := time.Now()
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	msgs := rcv.WaitAbout(t, target, 1, 10*time.Second)
	took := msgs[0].At.Sub(killedAt)
	t.Logf("listener killed → P0 at the webhook in %s", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("the P0 arrived %s after the kill, want within one second", took)
	}
	if m := msgs[0]; m.Status != "firing" || m.Alerts[0].Labels["severity"] != "P0" {
		t.Errorf("first message = %+v, want a firing P0 for %s", m, target)
	}
	startListenerProc(t, addr)
	msgs = rcv.WaitAbout(t, target, 2, 10*time.Second)
	if msgs[len(msgs)-1].Status != "resolved" {
		t.Errorf("after the listener came back the receiver got %q, want a resolve last", testsvc.Statuses(msgs))
	}
}

func TestServeHostWatchDoesNotPageShortLivedListeners(t *testing.T) {
	rcv := testsvc.NewWebhook(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pp.yaml")
	testsvc.WriteFile(t, cfg, fmt.Sprintf(`host_watch: {interval: 250ms, learn_after: 3s, ignore: {ephemeral_after: -1s}}
alerting:
  grouping: {group_wait: -1s, group_interval: -1s}
notify:
  receivers:
    - {name: default, type: webhook, url: %s}
`, rcv.URL))
	startDaemonProc(t, cfg, dir)
	addr := testsvc.ClosedPort(t)
	child := startListenerProc(t, addr)
	time.Sleep(time.Second)
	_ = child.Process.Kill()
	time.Sleep(3 * time.Second)
	if ms := testsvc.About(rcv.Messages(), "tcp://"+addr); len(ms) != 0 {
		t.Errorf("a listener that lived a second produced %d messages, want none: %+v", len(ms), ms)
	}
}
