package daemon

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/chatops"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/slack"
	"github.com/portpatrol/portpatrol/internal/patrol"
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
