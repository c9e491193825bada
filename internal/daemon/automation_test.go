package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// memAudit keeps automation's records in memory.
type memAudit struct {
	mu   sync.Mutex
	recs []auditlog.Record
}

func (m *memAudit) Append(_ context.Context, r auditlog.Record) (auditlog.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, r)
	return auditlog.Entry{Seq: int64(len(m.recs)), Record: r}, nil
}

func (m *memAudit) find(kind, outcome string) []auditlog.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []auditlog.Record
	for _, r := range m.recs {
		if r.Kind == kind && (outcome == "" || r.Outcome == outcome) {
			out = append(out, r)
		}
	}
	return out
}

// With PP_HELPER=1 the test binary acts as a service and its start script:
// "start ADDR PIDFILE" starts "serve ADDR" detached and waits until it listens.
func TestAutomationHelperProcess(t *testing.T) {
	if os.Getenv("PP_HELPER") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	switch args[0] {
	case "start", "start-briefly":
		serve := "serve"
		if args[0] == "start-briefly" {
			serve = "serve-briefly"
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestAutomationHelperProcess$", "--", serve, args[1])
		cmd.Env = []string{"PP_HELPER=1"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			os.Exit(1)
		}
		_ = os.WriteFile(args[2], []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
		for range 300 {
			if c, err := net.Dial("tcp", args[1]); err == nil {
				_ = c.Close()
				os.Exit(0)
			}
			time.Sleep(20 * time.Millisecond)
		}
		os.Exit(1)
	case "serve", "serve-briefly":
		ln, err := net.Listen("tcp", args[1])
		if err != nil {
			os.Exit(1)
		}
		if args[0] == "serve-briefly" {
			time.AfterFunc(1500*time.Millisecond, func() { os.Exit(0) }) // a crash loop
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(0)
			}
			_ = c.Close()
		}
	}
	os.Exit(0)
}

func helperArgvYAML(cmd ...string) string {
	all := append([]string{os.Args[0], "-test.run=^TestAutomationHelperProcess$", "--"}, cmd...)
	b, _ := json.Marshal(all)
	return string(b)
}

// startService runs "start" as the playbook would, and returns a function that kills
// the service (its pid is in pidfile, rewritten by every start).
func startHelperService(t *testing.T, addr, pidfile string) (kill func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAutomationHelperProcess$", "--", "start", addr, pidfile)
	cmd.Env = []string{"PP_HELPER=1"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("start the service: %v: %s", err, out)
	}
	kill = func() {
		b, _ := os.ReadFile(pidfile)
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	t.Cleanup(kill)
	return kill
}

// pageReceiver is a webhook receiver that keeps every request's body.
type pageReceiver struct {
	URL    string
	mu     sync.Mutex
	bodies []string
}

func newPageReceiver(t *testing.T) *pageReceiver {
	r := &pageReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		r.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// about returns the bodies that mention s.
func (r *pageReceiver) about(s string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, b := range r.bodies {
		if strings.Contains(b, s) {
			out = append(out, b)
		}
	}
	return out
}

// alertEvents collects the alert events about target from the daemon's event stream.
func alertEvents(t *testing.T, d *Daemon, target string) func() []patrol.Alert {
	sub, _, _ := d.broker.Subscribe("")
	var mu sync.Mutex
	var got []patrol.Alert
	go func() {
		for {
			select {
			case <-sub.Done():
				return
			case ev := <-sub.C():
				if ev.Type != api.EventAlert {
					continue
				}
				var v struct {
					ID, Target string
					ResolvedBy string `json:"resolved_by"`
					State      patrol.AlertState
					FiredAt    time.Time `json:"fired_at"`
				}
				if err := json.Unmarshal(ev.Data, &v); err != nil {
					t.Errorf("alert event %s: %v", ev.Data, err)
				}
				if v.Target == target {
					mu.Lock()
					got = append(got, patrol.Alert{ID: v.ID, Target: v.Target, State: v.State, ResolvedBy: v.ResolvedBy, FiredAt: v.FiredAt})
					mu.Unlock()
				}
			}
		}
	}()
	return func() []patrol.Alert {
		mu.Lock()
		defer mu.Unlock()
		return append([]patrol.Alert(nil), got...)
	}
}

func automationConfig(t *testing.T, hook, addr, argv, verify string, extra string) string {
	path := filepath.Join(t.TempDir(), "pp.yaml")
	testsvc.WriteFile(t, path, fmt.Sprintf(`host_watch: {disabled: true}
defaults: {interval: 200ms, timeout: 200ms}
alerting:
  grouping: {group_wait: -1s, group_interval: -1s}
  rules: {unreachable: {for: 8s}}
notify:
  receivers: [{name: default, type: webhook, url: %s}]
targets: [{url: "tcp://%s", labels: {service: web, tier: non-critical}}]
automation:
  mode: on
%s  playbooks:
    - name: restart-web
      mode: auto
      trigger: {class: [unreachable], labels: ["service=web"]}
      rollout: ["tier=non-critical"]
      steps:
        - name: restart
          action: exec
          risk: R1
          params: {argv: %s, env: [PP_HELPER], timeout: 20s}
          verify: %s
`, hook, addr, extra, argv, verify))
	return path
}

// A real service dies; the R1 exec playbook in mode auto starts it again; the P0
// resolves as recovered by the playbook while still pending, so the webhook receiver is
// never paged.
func TestServeAutomationRestartsDeadServiceWithoutPaging(t *testing.T) {
	t.Setenv("PP_HELPER", "1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testsvc.FreePort(t)))
	pidfile := filepath.Join(t.TempDir(), "svc.pid")
	kill := startHelperService(t, addr, pidfile)
	hook := newPageReceiver(t)
	audit := &memAudit{}
	path := automationConfig(t, hook.URL, addr, helperArgvYAML("start", addr, pidfile), "{window: 10s, interval: 100ms}", "")
	d, err := New(Config{Path: path, DataDir: t.TempDir(), AuditLog: audit})
	if err != nil {
		t.Fatal(err)
	}
	target := "tcp://" + addr
	events := alertEvents(t, d, target)
	base := runDaemon(t, d)
	waitFor(t, base+"/metrics", `portpatrol_probe_success{target="`+target+`"} 1`)

	killed := time.Now()
	kill()
	var resolved patrol.Alert
	t.Cleanup(func() {
		if t.Failed() {
			audit.mu.Lock()
			for _, r := range audit.recs {
				t.Logf("audit: %s/%s step=%s %q", r.Kind, r.Outcome, r.Step, r.Reasons)
			}
			audit.mu.Unlock()
			for _, a := range events() {
				t.Logf("event: %s %s by=%s", a.ID, a.State, a.ResolvedBy)
			}
		}
	})
	eventually(t, "the alert resolved by automation", func() bool {
		for _, a := range events() {
			if a.State == patrol.AlertResolved {
				resolved = a
				return true
			}
		}
		return false
	})
	back := time.Since(killed)
	if !resolved.FiredAt.IsZero() {
		t.Errorf("resolved alert fired at %s; want it resolved while pending", resolved.FiredAt)
	}
	if resolved.ResolvedBy != automationActor {
		// The scheduler's next probe may see the service back before the verification
		// resolves the alert; the audit chain still says who recovered it.
		t.Logf("the alert was resolved by %q: the scheduler's probe saw the port back first", resolved.ResolvedBy)
	}
	for _, a := range events() {
		if a.State == patrol.AlertFiring {
			t.Errorf("the alert fired (and paged): %+v", a)
		}
	}
	if c, err := net.Dial("tcp", addr); err != nil {
		t.Errorf("the service is not back: %v", err)
	} else {
		_ = c.Close()
	}
	eventually(t, "the recovery in the audit records", func() bool { return len(audit.find(auditlog.KindVerification, "recovered")) > 0 })
	v := audit.find(auditlog.KindVerification, "recovered")
	if len(v) != 1 || !strings.Contains(strings.Join(v[0].Reasons, " "), "recovered by playbook restart-web step restart") {
		t.Errorf("verification records: %+v", v)
	}
	if msgs := hook.about(target); len(msgs) != 0 {
		t.Errorf("the receiver was paged: %q", msgs)
	}
	t.Logf("port closed -> service back and alert resolved: %s (probe interval 200ms)", back.Round(time.Millisecond))
}

// A restart that does not bring the port back is rolled back, and the alert pages as
// usual with what was tried in its description.
func TestServeAutomationFailedVerificationPagesWithWhatWasTried(t *testing.T) {
	t.Setenv("PP_HELPER", "1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testsvc.FreePort(t)))
	pidfile := filepath.Join(t.TempDir(), "svc.pid")
	kill := startHelperService(t, addr, pidfile)
	hook := newPageReceiver(t)
	audit := &memAudit{}
	marker := filepath.Join(t.TempDir(), "rolled-back")
	// The "restart" runs a program that starts nothing; the rollback leaves a mark.
	path := automationConfig(t, hook.URL, addr, `["/bin/true"]`, "{window: 1s, interval: 100ms}\n          rollback: {argv: [/usr/bin/touch, "+marker+"]}", "")
	d, err := New(Config{Path: path, DataDir: t.TempDir(), AuditLog: audit})
	if err != nil {
		t.Fatal(err)
	}
	target := "tcp://" + addr
	base := runDaemon(t, d)
	waitFor(t, base+"/metrics", `portpatrol_probe_success{target="`+target+`"} 1`)
	kill()
	var desc string
	deadline := time.Now().Add(30 * time.Second)
	for desc == "" && time.Now().Before(deadline) {
		for _, b := range hook.about(target) {
			var m struct {
				Status string `json:"status"`
				Alerts []struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"alerts"`
			}
			if json.Unmarshal([]byte(b), &m) == nil && m.Status == "firing" && len(m.Alerts) > 0 {
				desc = m.Alerts[0].Annotations["description"]
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if desc == "" {
		t.Fatalf("no firing page within 30s; received %q", hook.about(target))
	}
	if !strings.Contains(desc, "tried: step restart") || !strings.Contains(desc, "verification failed") || !strings.Contains(desc, "rolled back") {
		t.Errorf("the page's description %q does not say what was tried", desc)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the rollback did not run: %v", err)
	}
	if len(audit.find(auditlog.KindRollback, "rolled back")) != 1 {
		t.Errorf("no rollback recorded")
	}
	for _, a := range d.engine().List(alert.Filter{}) {
		if a.Target == target && a.State != patrol.AlertFiring {
			t.Errorf("alert %s is %s, want firing", a.ID, a.State)
		}
	}
}

// namedToken stores an operator token for name and returns its secret.
func namedToken(t *testing.T, d *Daemon, name string, role store.Role) string {
	t.Helper()
	tok, secret, err := store.NewToken(name, role, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.db.CreateToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	return secret
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Through the API with real tokens: an operator asks for an R2 step on an open alert;
// her own approval is refused with 409 and the reason, an unknown request is 404, a
// viewer may not approve, another operator's approval runs the step (the service comes
// back), and a second approval finds it decided. Pause and resume show in the state.
func TestServeAutomationApprovalsThroughTheAPI(t *testing.T) {
	t.Setenv("PP_HELPER", "1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testsvc.FreePort(t)))
	pidfile := filepath.Join(t.TempDir(), "svc.pid")
	t.Cleanup(func() {
		b, _ := os.ReadFile(pidfile)
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	hook := newPageReceiver(t)
	audit := &memAudit{}
	path := automationConfig(t, hook.URL, addr, helperArgvYAML("start", addr, pidfile), "{window: 10s, interval: 100ms}", "")
	// The playbook asks instead of acting, and its step is R2.
	b, _ := os.ReadFile(path)
	testsvc.WriteFile(t, path, strings.Replace(strings.Replace(string(b), "mode: auto", "mode: suggest", 1), "risk: R1", "risk: R2", 1))
	d, err := New(Config{Path: path, DataDir: t.TempDir(), AuditLog: audit})
	if err != nil {
		t.Fatal(err)
	}
	base := runDaemon(t, d)
	alice := namedToken(t, d, "alice", store.RoleOperator)
	bob := namedToken(t, d, "bob", store.RoleOperator)
	viewer := namedToken(t, d, "vera", store.RoleViewer)
	target := "tcp://" + addr
	var alertID string
	eventually(t, "an open alert on the dead service", func() bool {
		for _, a := range d.engine().List(alert.Filter{}) {
			if a.Target == target {
				alertID = a.ID
				return true
			}
		}
		return false
	})
	// The alert itself filed a request, by portpatrol, that nobody has answered.
	eventually(t, "the automatic request", func() bool { return len(audit.find(auditlog.KindDecision, "")) > 0 })
	code, body := call(t, "POST", base+"/api/v1/automation/approvals", alice, `{"alert_id":"`+alertID+`","playbook":"restart-web","step":0}`)
	if code != http.StatusCreated {
		t.Fatalf("request by alice: %d %s", code, body)
	}
	var req struct {
		ID, State, Needs string
		RequestedBy      string `json:"requested_by"`
	}
	if err := json.Unmarshal([]byte(body), &req); err != nil || req.RequestedBy != "alice" || req.State != "pending" {
		t.Fatalf("request: %+v %v: %s", req, err, body)
	}
	approve := base + "/api/v1/automation/approvals/" + req.ID + "/approve"
	for _, tt := range []struct {
		url, token string
		want       int
		says       string
	}{
		{approve, alice, http.StatusConflict, "alice requested this plan; nobody approves their own request"},
		{base + "/api/v1/automation/approvals/nope/approve", bob, http.StatusNotFound, "no such approval request"},
		{approve, viewer, http.StatusForbidden, ""},
		{approve, "", http.StatusUnauthorized, ""},
	} {
		if code, body := call(t, "POST", tt.url, tt.token, `{"comment":"ok"}`); code != tt.want || !strings.Contains(body, tt.says) {
			t.Errorf("POST %s: got %d %s, want %d saying %q", tt.url, code, body, tt.want, tt.says)
		}
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		_ = c.Close()
		t.Fatal("the service is up before any approval")
	}
	if code, body := call(t, "POST", approve, bob, `{"comment":"go"}`); code != http.StatusOK || !strings.Contains(body, `"state":"approved"`) {
		t.Fatalf("bob's approval: %d %s", code, body)
	}
	eventually(t, "the service back after the approval", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	if code, body := call(t, "POST", approve, viewer, `{}`); code != http.StatusForbidden {
		t.Errorf("viewer after the decision: %d %s", code, body)
	}
	if code, body := call(t, "POST", approve, namedToken(t, d, "carol", store.RoleOperator), `{}`); code != http.StatusConflict || !strings.Contains(body, "already approved") {
		t.Errorf("approving a decided request: %d %s, want 409 already approved", code, body)
	}
	// The approvals list shows the plan with its reasons and diff.
	code, body = call(t, "GET", base+"/api/v1/automation/approvals", viewer, "")
	if code != http.StatusOK || !strings.Contains(body, `"diff":"run `) || !strings.Contains(body, "tier R2") {
		t.Errorf("approvals: %d %s", code, body)
	}
	// Kill switch.
	if code, body := call(t, "POST", base+"/api/v1/automation/pause", alice, `{"reason":"freeze"}`); code != http.StatusOK {
		t.Fatalf("pause: %d %s", code, body)
	}
	if _, body := call(t, "GET", base+"/api/v1/automation", viewer, ""); !strings.Contains(body, `"paused":true`) || !strings.Contains(body, `"pause_reason":"freeze"`) {
		t.Errorf("state after pause: %s", body)
	}
	if code, _ := call(t, "POST", base+"/api/v1/automation/resume", bob, ""); code != http.StatusOK {
		t.Errorf("resume: %d", code)
	}
	if _, body := call(t, "GET", base+"/api/v1/automation", viewer, ""); !strings.Contains(body, `"paused":false`) {
		t.Errorf("state after resume: %s", body)
	}
	if len(audit.find(auditlog.KindControl, "paused")) != 1 || len(audit.find(auditlog.KindDenial, "refused")) < 1 {
		t.Errorf("pause and the refused approval are not both recorded")
	}
}

// A service that keeps crashing is restarted as many times as the breaker allows; then
// automation stops on it and pages once, through the receiver.
func TestServeAutomationBreakerStopsCrashLoopAndPagesOnce(t *testing.T) {
	t.Setenv("PP_HELPER", "1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testsvc.FreePort(t)))
	pidfile := filepath.Join(t.TempDir(), "svc.pid")
	kill := startHelperService(t, addr, pidfile)
	hook := newPageReceiver(t)
	audit := &memAudit{}
	path := automationConfig(t, hook.URL, addr, helperArgvYAML("start-briefly", addr, pidfile), "{window: 5s, interval: 100ms}",
		"  breaker: {attempts: 2, per: 1h, backoff: 1ms}\n")
	b, _ := os.ReadFile(path)
	testsvc.WriteFile(t, path, strings.Replace(string(b), "host_watch: {disabled: true}\n", "host_watch: {disabled: true}\nscheduler: {flap_changes: 100}\n", 1))
	d, err := New(Config{Path: path, DataDir: t.TempDir(), AuditLog: audit})
	if err != nil {
		t.Fatal(err)
	}
	target := "tcp://" + addr
	base := runDaemon(t, d)
	waitFor(t, base+"/metrics", `portpatrol_probe_success{target="`+target+`"} 1`)
	kill()
	deadline := time.Now().Add(30 * time.Second)
	for len(audit.find(auditlog.KindDecision, "did nothing")) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := audit.find(auditlog.KindDecision, "did nothing"); len(got) == 0 || !strings.Contains(strings.Join(got[0].Reasons, " "), "breaker open for exec on "+target) {
		t.Fatalf("no decision naming the open breaker: %+v", got)
	}
	if got := len(audit.find(auditlog.KindExecution, "applied")); got != 2 {
		t.Errorf("restarts: got %d, want 2 (the breaker's attempts)", got)
	}
	var pages []string
	deadline = time.Now().Add(30 * time.Second)
	for len(pages) == 0 && time.Now().Before(deadline) {
		pages = hook.about("automation_breaker")
		time.Sleep(50 * time.Millisecond)
	}
	if len(pages) != 1 || !strings.Contains(pages[0], "breaker open") {
		t.Fatalf("breaker pages: %q, want one", pages)
	}
	// The breaker stays open: the service is left down, and no second breaker page.
	if c, err := net.Dial("tcp", addr); err == nil {
		_ = c.Close()
		t.Errorf("the service was started again past the breaker")
	}
	if got := len(hook.about("automation_breaker")); got != 1 {
		t.Errorf("breaker pages: %d, want 1", got)
	}
}

// Without a recorder of its own, serve records automation's decisions in the store's
// hash chain, which verifies intact.
func TestServeAutomationRecordsInTheStoresChain(t *testing.T) {
	t.Setenv("PP_HELPER", "1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testsvc.FreePort(t)))
	pidfile := filepath.Join(t.TempDir(), "svc.pid")
	kill := startHelperService(t, addr, pidfile)
	hook := newPageReceiver(t)
	path := automationConfig(t, hook.URL, addr, helperArgvYAML("start", addr, pidfile), "{window: 10s, interval: 100ms}", "")
	d, err := New(Config{Path: path, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if d.AuditLog() == nil {
		t.Fatal("no audit chain on the SQLite store")
	}
	target := "tcp://" + addr
	base := runDaemon(t, d)
	waitFor(t, base+"/metrics", `portpatrol_probe_success{target="`+target+`"} 1`)
	kill()
	eventually(t, "decision, execution and verification in the chain", func() bool { return d.AuditLog().Head().Seq >= 3 })
	rep, err := d.AuditLog().Verify(t.Context())
	if err != nil || !rep.Intact() || rep.Entries < 3 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	var kinds []string
	var buf strings.Builder
	if err := d.AuditLog().Export(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var e auditlog.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		kinds = append(kinds, e.Record.Kind+"/"+e.Record.Outcome)
	}
	t.Logf("chain: %s", strings.Join(kinds, ", "))
	if !slices.Contains(kinds, auditlog.KindExecution+"/applied") {
		t.Errorf("no execution in the chain: %v", kinds)
	}
	// The permission review, for a viewer, reads the same chain.
	code, body := call(t, "GET", base+"/api/v1/automation/report?since=1d", namedToken(t, d, "vera", store.RoleViewer), "")
	var rv struct {
		Chain string
		Ran   []struct{ Outcome, Playbook, Target string }
	}
	if err := json.Unmarshal([]byte(body), &rv); code != http.StatusOK || err != nil || !strings.HasPrefix(rv.Chain, "intact: ") ||
		len(rv.Ran) == 0 || rv.Ran[0].Outcome != "applied" || rv.Ran[0].Playbook != "restart-web" || rv.Ran[0].Target != target {
		t.Errorf("report: %d %v: %s", code, err, body)
	}
}
