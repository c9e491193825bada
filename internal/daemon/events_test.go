package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// sseAlert is what the tests read of an alert event.
type sseAlert struct {
	ID       string            `json:"id"`
	State    patrol.AlertState `json:"state"`
	Summary  string            `json:"summary"`
	Deadline time.Time         `json:"deadline"`
	AckedBy  string            `json:"acked_by"`
}

// streamAlerts subscribes to the daemon's event stream and returns its alert events.
func streamAlerts(t *testing.T, base string) <-chan sseAlert {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/events: got %d", resp.StatusCode)
	}
	out := make(chan sseAlert, 64)
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "alert":
				var a sseAlert
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &a); err != nil {
					t.Errorf("alert event %q: %v", line, err)
					continue
				}
				select {
				case out <- a:
				case <-ctx.Done():
					return
				}
			case line == "":
				event = ""
			}
		}
	}()
	return out
}

// nextAlert waits for an alert event that ok accepts, skipping others.
func nextAlert(t *testing.T, events <-chan sseAlert, what string, ok func(sseAlert) bool) sseAlert {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case a := <-events:
			if ok(a) {
				return a
			}
		case <-timeout:
			t.Fatalf("the event stream never told %s", what)
		}
	}
}

// TestServeAlertChangesReachTheEventStream: every change of an incident reaches a
// client of /api/v1/events as the alert engine makes it — a new summary and a deadline
// too, which comparing alert lists by state never told — and so do the changes a
// reloaded engine makes.
func TestServeAlertChangesReachTheEventStream(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pp.yaml")
	rcv := testsvc.NewWebhook(t)
	config := func(repeat string) string {
		return `host_watch: {disabled: true}
api: {anonymous_read: true}
alerting: {grouping: {group_wait: -1s, group_interval: -1s}, repeat_interval: ` + repeat + `}
notify:
  outbox: {backoff_min: 100ms, backoff_max: 200ms, poll_interval: 100ms}
  receivers: [{name: default, type: webhook, url: ` + rcv.URL + `}]
`
	}
	testsvc.WriteFile(t, path, config("1h"))
	d, base := startDaemon(t, path)
	events := streamAlerts(t, base)
	ctx := context.Background()

	f := patrol.Finding{Class: patrol.AlertConfig, Rule: "public_bind", Subject: "host:db1",
		Summary: "redis bound to 0.0.0.0:6379", Active: true}
	if err := d.observeFinding(ctx, f); err != nil {
		t.Fatal(err)
	}
	opened := nextAlert(t, events, "the new incident", func(a sseAlert) bool { return a.Summary == f.Summary })

	f.Summary = "redis and memcached bound to 0.0.0.0"
	if err := d.observeFinding(ctx, f); err != nil {
		t.Fatal(err)
	}
	nextAlert(t, events, "the new summary", func(a sseAlert) bool { return a.ID == opened.ID && a.Summary == f.Summary })

	eventually(t, "a deadline on the incident", func() bool {
		r, ok := d.engine().Get(opened.ID)
		return ok && !r.Alert.Deadline.IsZero()
	})
	r, _ := d.engine().Get(opened.ID)
	nextAlert(t, events, "the deadline", func(a sseAlert) bool { return a.ID == opened.ID && a.Deadline.Equal(r.Alert.Deadline) })

	if err := d.withEngine(func(e *alert.Engine) error { return e.Ack(ctx, opened.ID, "alice", "") }); err != nil {
		t.Fatal(err)
	}
	nextAlert(t, events, "the acknowledgement", func(a sseAlert) bool {
		return a.ID == opened.ID && a.State == patrol.AlertAcknowledged && a.AckedBy == "alice"
	})

	// A reload of the alerting settings replaces the engine; the new one tells the
	// stream too.
	old := d.engine()
	testsvc.WriteFile(t, path, config("2h"))
	if err := d.ReloadFile(); err != nil {
		t.Fatal(err)
	}
	if d.engine() == old {
		t.Fatal("the reload kept the alert engine; want a new one")
	}
	f.Active = false
	if err := d.observeFinding(ctx, f); err != nil {
		t.Fatal(err)
	}
	nextAlert(t, events, "the resolve", func(a sseAlert) bool { return a.ID == opened.ID && a.State == patrol.AlertResolved })
}
