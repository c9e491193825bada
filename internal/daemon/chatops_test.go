package daemon

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/chatops"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/slack"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// Through the daemon's own listener: a P0 on a closed port is refused an ack from an
// unmapped Slack user and from a badly signed request, and acknowledged by the mapped
// operator, whose name the alert then carries; who answers from this host's sockets.
func TestServeChatOps(t *testing.T) {
	closed := testsvc.ClosedPort(t)
	path := filepath.Join(t.TempDir(), "pp.yaml")
	testsvc.WriteFile(t, path, fmt.Sprintf(`host_watch: {disabled: true}
defaults: {interval: 200ms, timeout: 100ms}
targets: [{url: %s, labels: {service: cache}}]
chatops:
  slack: {signing_secret: test-signing-secret}
  mattermost: {tokens: [test-mm-token]}
  users:
    - {user: alice, role: operator, slack: U0ALICE, mattermost: alice}
`, closed))
	d, base := startDaemon(t, path)
	target := "tcp://" + closed
	var id string
	eventually(t, "a firing P0 on the closed port", func() bool {
		as := d.engine().List(alert.Filter{Target: target, States: []patrol.AlertState{patrol.AlertFiring}})
		if len(as) > 0 {
			id = as[0].ID
		}
		return id != ""
	})
	slack := func(key, user, text string, at time.Time) (int, string) {
		body := url.Values{"user_id": {user}, "command": {"/portpatrol"}, "text": {text}}.Encode()
		ts := strconv.FormatInt(at.Unix(), 10)
		req, _ := http.NewRequest("POST", base+chatops.SlackPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(chatops.SignSlack(key, ts, []byte(body))))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r struct{ Text string }
		json.Unmarshal(b, &r)
		if r.Text == "" {
			r.Text = string(b)
		}
		return resp.StatusCode, r.Text
	}
	state := func() patrol.Alert {
		r, _ := d.engine().Get(id)
		return r.Alert
	}
	if code, _ := slack("wrong-secret", "U0ALICE", "ack "+id, time.Now()); code != 401 || state().State != patrol.AlertFiring {
		t.Fatalf("wrong secret: got %d and state %s, want 401 and firing", code, state().State)
	}
	if code, _ := slack("test-signing-secret", "U0ALICE", "ack "+id, time.Now().Add(-10*time.Minute)); code != 401 || state().State != patrol.AlertFiring {
		t.Fatalf("stale: got %d and state %s, want 401 and firing", code, state().State)
	}
	if code, text := slack("test-signing-secret", "U0MALLORY", "ack "+id, time.Now()); code != 200 || !strings.Contains(text, "refused") || state().State != patrol.AlertFiring {
		t.Fatalf("unmapped: got %d %q and state %s, want a refusal and firing", code, text, state().State)
	}
	code, text := slack("test-signing-secret", "U0ALICE", "ack "+id+" on it", time.Now())
	if st := state(); code != 200 || st.State != patrol.AlertAcknowledged || st.AckedBy != "alice via slack:U0ALICE" {
		t.Fatalf("mapped operator: got %d %q, alert %s by %q; want acknowledged by alice via slack:U0ALICE", code, text, st.State, st.AckedBy)
	}
	t.Logf("slack ack answer: %s", text)

	// who <port> over Mattermost, on a listener this test holds.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	form := url.Values{"token": {"test-mm-token"}, "user_id": {"x"}, "user_name": {"bob"}, "text": {fmt.Sprintf("who %d", port)}}.Encode()
	resp, err := http.Post(base+chatops.MattermostPath, "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), fmt.Sprintf("127.0.0.1:%d", port)) {
		t.Errorf("who %d: got %s, want the test's listener", port, b)
	}
	t.Logf("mattermost who answer: %s", b)
}

// The buttons Slack messages carry are the ones the chat handler answers.
func TestSlackButtonsMatchChatOps(t *testing.T) {
	if slack.ActionAck != chatops.ActionAck || slack.ActionSilence1h != chatops.ActionSilence1h {
		t.Errorf("slack buttons %q, %q; chatops answers %q, %q", slack.ActionAck, slack.ActionSilence1h, chatops.ActionAck, chatops.ActionSilence1h)
	}
}

// The Ack button of a Slack message the daemon sent, pressed by the mapped operator,
// acknowledges the alert: from the outbox to the chat endpoint and back to the engine.
func TestServeSlackButtonAcks(t *testing.T) {
	closed := testsvc.ClosedPort(t)
	hook := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Body: "ok"} })
	path := filepath.Join(t.TempDir(), "pp.yaml")
	testsvc.WriteFile(t, path, fmt.Sprintf(`host_watch: {disabled: true}
defaults: {interval: 200ms, timeout: 100ms}
targets: [{url: %s}]
alerting: {grouping: {group_wait: -1s, group_interval: -1s}}
notify:
  outbox: {backoff_min: 100ms, backoff_max: 200ms, poll_interval: 100ms}
  receivers: [{name: default, type: slack, url: "%s/services/T0/B0/X", buttons: true}]
chatops:
  slack: {signing_secret: test-signing-secret}
  users: [{user: alice, role: operator, slack: U0ALICE}]
`, closed, hook.URL))
	d, base := startDaemon(t, path)
	var id string
	eventually(t, "a Slack message with an Ack button", func() bool {
		for _, r := range hook.Requests() {
			var m struct {
				Attachments []struct {
					Blocks []struct {
						Type     string
						Elements []struct {
							ActionID string `json:"action_id"`
							Value    string
						}
					}
				}
			}
			json.Unmarshal(r.Body, &m)
			for _, a := range m.Attachments {
				for _, b := range a.Blocks {
					for _, e := range b.Elements {
						if b.Type == "actions" && e.ActionID == "portpatrol_ack" {
							id = e.Value
						}
					}
				}
			}
		}
		return id != ""
	})
	payload := fmt.Sprintf(`{"type":"block_actions","user":{"id":"U0ALICE"},"actions":[{"action_id":"portpatrol_ack","value":%q,"type":"button"}]}`, id)
	body := url.Values{"payload": {payload}}.Encode()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, _ := http.NewRequest("POST", base+chatops.SlackPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(chatops.SignSlack("test-signing-secret", ts, []byte(body))))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r, _ := d.engine().Get(id)
	if r.Alert.State != patrol.AlertAcknowledged || r.Alert.AckedBy != "alice via slack:U0ALICE" {
		t.Fatalf("after the button: alert %s by %q (answer %s), want acknowledged by alice via slack:U0ALICE", r.Alert.State, r.Alert.AckedBy, b)
	}
}

// Approve and deny from chat, through the daemon's listener, on the real remediation
// engine: an R2 step waits for an approver; an operator's approve and an unmapped
// user's are refused, the requester's own approval is refused though it comes from
// chat, the approver's runs the step (the dead service comes back), and the store's
// audit chain records both decisions with the chat user and the plan's hash.
func TestServeChatOpsApprovals(t *testing.T) {
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
	path := automationConfig(t, hook.URL, addr, helperArgvYAML("start", addr, pidfile), "{window: 10s, interval: 100ms}", "")
	b, _ := os.ReadFile(path)
	testsvc.WriteFile(t, path, strings.Replace(strings.Replace(string(b), "mode: auto", "mode: suggest", 1), "risk: R1", "risk: R2", 1)+`chatops:
  slack: {signing_secret: test-signing-secret}
  mattermost: {tokens: [test-mm-token]}
  users:
    - {user: alice, role: approver, slack: U0ALICE}
    - {user: vic, role: operator, slack: U0VIC}
    - {user: bob, role: approver, slack: U0BOB}
    - {user: carol, role: approver, mattermost: carol}
`)
	d, err := New(Config{Path: path, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	base := runDaemon(t, d)
	target := "tcp://" + addr
	var alertID string
	eventually(t, "an open alert on the dead service", func() bool {
		for _, a := range d.engine().List(alert.Filter{Target: target}) {
			alertID = a.ID
		}
		return alertID != ""
	})
	var auto string
	eventually(t, "the automatic approval request", func() bool {
		for _, r := range d.automation.eng.Requests() {
			if r.RequestedBy == "portpatrol" && r.State == "pending" {
				auto = r.ID
			}
		}
		return auto != ""
	})
	code, body := call(t, "POST", base+"/api/v1/automation/approvals", namedToken(t, d, "alice", store.RoleOperator),
		`{"alert_id":"`+alertID+`","playbook":"restart-web","step":0}`)
	var mine struct {
		ID   string
		Plan struct{ Hash string }
	}
	if err := json.Unmarshal([]byte(body), &mine); code != http.StatusCreated || err != nil || mine.Plan.Hash == "" {
		t.Fatalf("alice's request: %d %s", code, body)
	}
	slack := func(user, text string) (int, string, string) {
		body := url.Values{"user_id": {user}, "command": {"/portpatrol"}, "text": {text}}.Encode()
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequest("POST", base+chatops.SlackPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(chatops.SignSlack("test-signing-secret", ts, []byte(body))))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r struct {
			Text         string
			ResponseType string `json:"response_type"`
		}
		json.Unmarshal(b, &r)
		if r.Text == "" {
			r.Text = string(b)
		}
		return resp.StatusCode, r.ResponseType, r.Text
	}
	up := func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}

	// Carol denies the automatic request from Mattermost.
	form := url.Values{"token": {"test-mm-token"}, "user_id": {"x"}, "user_name": {"carol"}, "text": {"deny " + auto + " asking by hand instead"}}.Encode()
	resp, err := http.Post(base+chatops.MattermostPath, "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	mm, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(mm), "Denied "+auto+" by carol via mattermost:carol") {
		t.Fatalf("carol's deny: got %s", mm)
	}
	for _, c := range []struct{ user, text, want string }{
		{"U0VIC", "approve " + mine.ID, "approve is refused: vic has the operator role; only the approver role approves"},
		{"U0MALLORY", "approve " + mine.ID, "approve is refused: your slack user U0MALLORY is not mapped"},
		{"U0ALICE", "approve " + mine.ID, "alice requested this plan; nobody approves their own request"},
		{"U0BOB", "approve nope", "no such approval request"},
		{"U0BOB", "approve " + auto, "already denied"},
	} {
		code, rt, text := slack(c.user, c.text)
		if code != 200 || rt != "ephemeral" || !strings.Contains(text, c.want) {
			t.Errorf("%s %q: got %d %s %q, want an ephemeral answer saying %q", c.user, c.text, code, rt, text, c.want)
		}
	}
	if up() {
		t.Fatal("the service is up before any approval")
	}
	code, rt, text := slack("U0BOB", "approve "+mine.ID+" backup is warm")
	if code != 200 || rt != "in_channel" || !strings.Contains(text, "Approved "+mine.ID+" by bob via slack:U0BOB: restart-web step restart on "+target+" runs now") ||
		!strings.Contains(text, "plan "+mine.Plan.Hash[:12]) {
		t.Fatalf("bob's approval: got %d %s %q", code, rt, text)
	}
	t.Logf("slack approve answer: %s", text)
	eventually(t, "the service back after the approval from chat", up)

	// The store's chain, verified, holds both decisions with who made them and where.
	rep, err := d.AuditLog().Verify(t.Context())
	if err != nil || !rep.Intact() {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	var buf strings.Builder
	if err := d.AuditLog().Export(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	var approved, denied, refused bool
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var e auditlog.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		r := e.Record
		switch {
		case r.Kind == auditlog.KindApproval && r.Outcome == "approved":
			approved = r.Actor == "bob" && r.PlanHash == mine.Plan.Hash && r.Reasons[0] == "approved by bob via slack:U0BOB (approver): backup is warm"
		case r.Kind == auditlog.KindDenial && r.Outcome == "denied":
			denied = r.Actor == "carol" && r.Reasons[0] == "denied by carol via mattermost:carol: asking by hand instead"
		case r.Kind == auditlog.KindDenial && r.Outcome == "refused" && r.Actor == "alice":
			refused = strings.Contains(r.Reasons[0], "approval by alice via slack:U0ALICE refused")
		}
	}
	if !approved || !denied || !refused {
		t.Errorf("chain: approved by bob from slack %v, denied by carol from mattermost %v, alice's refusal %v; want all:\n%s", approved, denied, refused, buf.String())
	}
}
