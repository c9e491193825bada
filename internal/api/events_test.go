package api

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

func TestBrokerResume(t *testing.T) {
	b := NewBroker(BrokerConfig{History: 4, Buffer: 8})
	var ids []string
	for i := 0; i < 6; i++ {
		ev, err := b.Publish(EventTarget, map[string]int{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	tests := []struct {
		name         string
		last         string
		wantReplay   int
		wantComplete bool
	}{
		{"fresh", "", 0, true},
		{"latest", ids[5], 0, true},
		{"two behind", ids[3], 2, true},
		{"oldest kept", ids[1], 4, true},
		{"fell out of the ring", ids[0], 0, false},
		{"other broker", "deadbeef-3", 0, false},
		{"from the future", strings.Split(ids[0], "-")[0] + "-99", 0, false},
		{"garbage", "x", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, replay, complete := b.Subscribe(tt.last)
			defer sub.Cancel()
			if len(replay) != tt.wantReplay || complete != tt.wantComplete {
				t.Errorf("got %d events, complete %v; want %d, %v", len(replay), complete, tt.wantReplay, tt.wantComplete)
			}
			if len(replay) > 0 && replay[len(replay)-1].ID != ids[5] {
				t.Errorf("last replayed %s, want %s", replay[len(replay)-1].ID, ids[5])
			}
		})
	}
	if n := b.Subscribers(); n != 0 {
		t.Errorf("got %d subscribers after cancel, want 0", n)
	}
}

func TestBrokerDropsSlowSubscriber(t *testing.T) {
	b := NewBroker(BrokerConfig{Buffer: 2})
	slow, _, _ := b.Subscribe("")
	fast, _, _ := b.Subscribe("")
	defer fast.Cancel()
	for i := 0; i < 3; i++ {
		if _, err := b.Publish(EventAlert, i); err != nil {
			t.Fatal(err)
		}
		<-fast.C()
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("slow subscriber not dropped")
	}
	if r := slow.Reason(); !strings.Contains(r, "behind") {
		t.Errorf("reason %q, want it to say it fell behind", r)
	}
	if b.Subscribers() != 1 {
		t.Errorf("got %d subscribers, want the fast one", b.Subscribers())
	}
	b.Close()
	<-fast.Done()
	if _, err := b.Publish(EventAlert, 1); err == nil {
		t.Error("publish after close: got nil error")
	}
}

// sseClient reads an event stream line by line.
type sseClient struct {
	t    *testing.T
	resp *http.Response
	sc   *bufio.Scanner
}

func openStream(t *testing.T, url, token, last string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("got %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sseClient{t: t, resp: resp, sc: bufio.NewScanner(resp.Body)}
}

// next returns the next message's lines (an event or a comment), without the blank
// line that ends it.
func (c *sseClient) next() []string {
	c.t.Helper()
	var lines []string
	for c.sc.Scan() {
		l := c.sc.Text()
		if l == "" {
			if len(lines) > 0 {
				return lines
			}
			continue
		}
		lines = append(lines, l)
	}
	c.t.Fatalf("stream ended: %v", c.sc.Err())
	return nil
}

// nextEvent skips comments and returns the next event's lines.
func (c *sseClient) nextEvent() []string {
	c.t.Helper()
	for {
		if m := c.next(); !strings.HasPrefix(m[0], ":") {
			return m
		}
	}
}

func TestEventStream(t *testing.T) {
	f, _ := newWorld()
	b := NewBroker(BrokerConfig{History: 16, Buffer: 4})
	s := newServer(f, func(c *Config) { c.Broker = b; c.Heartbeat = 20 * time.Millisecond })
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)

	c := openStream(t, srv.URL, viewerSecret, "")
	waitFor(t, func() bool { return b.Subscribers() == 1 })
	if err := b.PublishTarget(patrol.TargetState{Target: dbID, Status: patrol.StatusDown, Last: patrol.ResultSummary{Class: patrol.ClassRefused, Time: t0}}); err != nil {
		t.Fatal(err)
	}
	ev := c.nextEvent()
	if len(ev) != 3 || !strings.HasPrefix(ev[0], "id: ") || ev[1] != "event: target" ||
		!strings.Contains(ev[2], `"status":"down"`) || !strings.Contains(ev[2], `"id":"`+dbID+`"`) {
		t.Fatalf("got %q, want a target event", ev)
	}
	firstID := strings.TrimPrefix(ev[0], "id: ")

	// Heartbeats keep the connection alive while nothing happens.
	if m := c.next(); m[0] != ": heartbeat" {
		t.Errorf("got %q, want a heartbeat", m)
	}

	if err := b.PublishAlert(patrol.Alert{ID: "a2", Severity: patrol.P1, State: patrol.AlertFiring, Target: dbID}); err != nil {
		t.Fatal(err)
	}
	ev = c.nextEvent()
	if ev[1] != "event: alert" || !strings.Contains(ev[2], `"severity":"P1"`) {
		t.Fatalf("got %q, want an alert event", ev)
	}

	// A client reconnecting after the first event gets the second again.
	c2 := openStream(t, srv.URL, viewerSecret, firstID)
	ev = c2.nextEvent()
	if ev[1] != "event: alert" || !strings.Contains(ev[2], `"id":"a2"`) {
		t.Errorf("resume: got %q, want the alert event replayed", ev)
	}
	// One from a previous process is told to reload.
	c3 := openStream(t, srv.URL, viewerSecret, "0badc0de-1")
	if ev = c3.nextEvent(); ev[0] != "event: reset" {
		t.Errorf("stale Last-Event-ID: got %q, want a reset", ev)
	}
}

func TestEventStreamDropsSlowClient(t *testing.T) {
	f, _ := newWorld()
	b := NewBroker(BrokerConfig{Buffer: 1})
	s := newServer(f, func(c *Config) { c.Broker = b })
	// Drive the handler directly with a writer that blocks until released, so the
	// client is slow for certain.
	release := make(chan struct{})
	w := &blockingWriter{recorder: newRecorder(), release: release}
	req := httptest.NewRequest("GET", "/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+viewerSecret)
	done := make(chan struct{})
	go func() { s.ServeHTTP(w, req); close(done) }()
	waitFor(t, func() bool { return b.Subscribers() == 1 })
	waitFor(t, func() bool { return w.blocked() })
	for i := 0; i < 3; i++ {
		_, _ = b.Publish(EventTarget, i)
	}
	close(release)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not end after its subscriber was dropped")
	}
	if body := string(w.body()); !strings.Contains(body, "event: dropped") || !strings.Contains(body, "behind") {
		t.Errorf("got %q, want a dropped notice", body)
	}
}

// blockingWriter blocks its second flush (the first sends the preamble) until release
// is closed.
type blockingWriter struct {
	*recorder
	release chan struct{}
	flushes int
}

func (w *blockingWriter) Flush() {
	w.lock()
	w.flushes++
	n := w.flushes
	w.unlock()
	if n == 1 {
		<-w.release
	}
}

func (w *blockingWriter) blocked() bool {
	w.lock()
	defer w.unlock()
	return w.flushes >= 1
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
