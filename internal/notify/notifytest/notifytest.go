// Package notifytest holds what the tests of internal/notify and its providers share:
// fixed notifications of every kind, golden files with an -update flag, and a
// loopback HTTP server that records what it is sent. It is imported only by tests.
package notifytest

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// T0 is when the fixtures' alerts start.
var T0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// Alert returns a P0 unreachable alert on a Redis port, firing for two minutes with
// three refused results as evidence.
func Alert() patrol.Alert {
	ev := make([]patrol.Result, 3)
	for i := range ev {
		ev[i] = patrol.Result{
			Target: "tcp://10.0.0.5:6379", Start: T0.Add(time.Duration(i*30) * time.Second),
			Duration: 2 * time.Millisecond, Class: patrol.ClassRefused,
			Error: "dial tcp 10.0.0.5:6379: connect: connection refused", RemoteAddr: "10.0.0.5:6379",
		}
	}
	return patrol.Alert{
		ID:          "01HQ7ZK3N2",
		Fingerprint: "9f2c1e7a5b3d4c6e",
		Rule:        "port_unreachable",
		Class:       patrol.AlertUnreachable,
		Severity:    patrol.P0,
		State:       patrol.AlertFiring,
		Target:      "tcp://10.0.0.5:6379",
		Labels:      map[string]string{"service": "cache", "env": "prod"},
		Summary:     "Redis on 10.0.0.5:6379 refuses connections",
		RunbookURL:  "https://runbooks.example.com/redis-down",
		StartsAt:    T0,
		FiredAt:     T0.Add(time.Minute),
		Deadline:    T0.Add(6 * time.Minute),
		Evidence:    ev,
		Told:        []string{"noc-slack"},
	}
}

// SlowAlert returns a P1 slow alert on an HTTPS endpoint.
func SlowAlert() patrol.Alert {
	return patrol.Alert{
		ID:          "01HQ7ZM8QX",
		Fingerprint: "4d1a9b0c7e2f3a58",
		Rule:        "port_slow",
		Class:       patrol.AlertSlow,
		Severity:    patrol.P1,
		State:       patrol.AlertFiring,
		Target:      "https://api.example.com:443/healthz",
		Labels:      map[string]string{"service": "checkout", "env": "prod"},
		Summary:     "Checkout health check answers in 2.4s (threshold 1s)",
		StartsAt:    T0.Add(30 * time.Second),
		FiredAt:     T0.Add(90 * time.Second),
		Deadline:    T0.Add(16*time.Minute + 30*time.Second),
		Evidence: []patrol.Result{{
			Target: "https://api.example.com:443/healthz", Start: T0.Add(90 * time.Second),
			Duration: 2400 * time.Millisecond, Class: patrol.ClassSlow,
		}},
	}
}

// Notification returns a notification of the given kind for receiver "ops", made two
// minutes after T0, about Alert in the state that kind implies. NotifyImpact gets
// an outage of service "cache"; NotifyTest gets no alerts.
func Notification(kind patrol.NotificationKind) patrol.Notification {
	a := Alert()
	switch kind {
	case patrol.NotifyAck:
		a.State = patrol.AlertAcknowledged
		a.AckedAt = T0.Add(3 * time.Minute)
		a.AckedBy = "alice"
	case patrol.NotifyResolved:
		a.State = patrol.AlertResolved
		a.ResolvedAt = T0.Add(12 * time.Minute)
		a.ResolvedBy = "auto"
		a.Told = []string{"noc-slack", "sre-pager"}
	case patrol.NotifyEscalation:
		a.EscalationStep = 1
		a.Told = []string{"noc-slack", "sre-pager"}
	}
	created := T0.Add(2 * time.Minute)
	switch kind {
	case patrol.NotifyAck:
		created = a.AckedAt
	case patrol.NotifyResolved:
		created = a.ResolvedAt
	case patrol.NotifyEscalation:
		created = a.Deadline
	}
	n := patrol.Notification{
		Key:       fmt.Sprintf("%s/%s", a.ID, kind),
		Receiver:  "ops",
		Kind:      kind,
		Alerts:    []patrol.Alert{a},
		CreatedAt: created,
	}
	if kind == patrol.NotifyTest {
		n.Alerts = nil
	}
	return n
}

// Group returns a firing notification about two alerts of group "env=prod".
func Group() patrol.Notification {
	return patrol.Notification{
		Key:       "group/env=prod/1",
		Receiver:  "ops",
		Kind:      patrol.NotifyFiring,
		Group:     "env=prod",
		Alerts:    []patrol.Alert{Alert(), SlowAlert()},
		CreatedAt: T0.Add(2 * time.Minute),
	}
}

// Kinds lists every notification kind, for table tests.
var Kinds = []patrol.NotificationKind{patrol.NotifyFiring, patrol.NotifyEscalation, patrol.NotifyReminder,
	patrol.NotifyAck, patrol.NotifyResolved, patrol.NotifyImpact, patrol.NotifyTest}

// Golden compares got with testdata/name, or rewrites the file when -update is set.
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// Request is one request a Server received.
type Request struct {
	Method string
	// URI is the path and query as sent.
	URI    string
	Header http.Header
	Body   []byte
}

// Dump renders the request for a golden file: the request line, the headers named,
// a blank line and the body, re-indented when it is JSON (json.Indent changes only
// white space, so key order and values are exactly as sent).
func (r Request) Dump(headers ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.URI)
	slices.Sort(headers)
	for _, h := range headers {
		if v := r.Header.Values(h); len(v) > 0 {
			fmt.Fprintf(&b, "%s: %s\n", http.CanonicalHeaderKey(h), strings.Join(v, ", "))
		}
	}
	b.WriteByte('\n')
	if json.Valid(r.Body) {
		if err := json.Indent(&b, r.Body, "", "  "); err == nil {
			b.WriteByte('\n')
			return b.Bytes()
		}
	}
	b.Write(r.Body)
	return b.Bytes()
}

// Reply is what a Server answers.
type Reply struct {
	Status int // 0 means 200
	Header http.Header
	Body   string
}

// Server is a loopback HTTP server that records every request and answers with its
// Respond function (200 with an empty body when nil). It is safe for concurrent use.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	requests []Request
	respond  func(i int, r Request) Reply
}

// NewServer starts a Server; it is closed when the test ends. respond gets the
// zero-based number of the request and the request.
func NewServer(t testing.TB, respond func(i int, r Request) Reply) *Server {
	s := &Server{respond: respond}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *Server) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r := Request{Method: req.Method, URI: req.URL.RequestURI(), Header: req.Header.Clone(), Body: body}
	s.mu.Lock()
	i := len(s.requests)
	s.requests = append(s.requests, r)
	respond := s.respond
	s.mu.Unlock()
	rep := Reply{}
	if respond != nil {
		rep = respond(i, r)
	}
	for k, v := range rep.Header {
		w.Header()[k] = v
	}
	if rep.Status == 0 {
		rep.Status = http.StatusOK
	}
	w.WriteHeader(rep.Status)
	io.WriteString(w, rep.Body)
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Clock is a fake clock for the dispatcher: time moves only on Advance, and its
// tickers fire when Advance passes their next tick. Build it with NewClock; it is safe
// for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*ticker
}

type ticker struct {
	every time.Duration
	next  time.Time
	c     chan time.Time
	done  bool
}

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTicker returns a ticker on the fake time; a tick not yet received is dropped
// when the next one is due, as with time.Ticker.
func (c *Clock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &ticker{every: d, next: c.now.Add(d), c: make(chan time.Time, 1)}
	c.tickers = append(c.tickers, t)
	return t.c, func() {
		c.mu.Lock()
		t.done = true
		c.mu.Unlock()
	}
}

// Advance moves the time forward by d and fires the tickers that are due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.tickers {
		if t.done || t.next.After(c.now) {
			continue
		}
		for !t.next.After(c.now) {
			t.next = t.next.Add(t.every)
		}
		select {
		case t.c <- c.now:
		default:
		}
	}
}
