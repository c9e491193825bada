package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/google/go-cmp/cmp"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// loadDoc loads and validates the embedded OpenAPI document.
func loadDoc(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI())
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json does not validate: %v", err)
	}
	return doc
}

// checkResponse validates a response against the operation the route's template and
// method name in the document.
func checkResponse(t *testing.T, doc *openapi3.T, rt route, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	item := doc.Paths.Value(rt.path)
	if item == nil {
		t.Fatalf("openapi.json has no path %s", rt.path)
	}
	op := item.GetOperation(rt.method)
	if op == nil {
		t.Fatalf("openapi.json has no %s %s", rt.method, rt.path)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req,
			Route:   &routers.Route{Spec: doc, Path: rt.path, PathItem: item, Method: rt.method, Operation: op},
		},
		Status: status,
		Header: header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			// The event stream is text; its framing is tested on its own.
			ExcludeResponseBody: strings.HasPrefix(header.Get("Content-Type"), "text/event-stream"),
		},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s → %d does not match openapi.json: %v\nbody: %s", rt.method, rt.path, status, err, body)
	}
}

// concrete turns a route pattern into a path and a valid body for it.
func concrete(rt route) (path, body string) {
	path = rt.path
	switch {
	case strings.HasPrefix(rt.path, "/api/v1/targets/{id}"):
		path = "/api/v1/targets/" + url.PathEscape(dbID)
	case strings.HasPrefix(rt.path, "/api/v1/alerts/{id}"):
		path = strings.Replace(rt.path, "{id}", "a1", 1)
	case strings.HasPrefix(rt.path, "/api/v1/silences/{id}"):
		path = strings.Replace(rt.path, "{id}", "s1", 1)
	case strings.HasPrefix(rt.path, "/api/v1/status/notes/{id}"):
		path = strings.Replace(rt.path, "{id}", "n1", 1)
	case strings.HasPrefix(rt.path, "/api/v1/tokens/{id}"):
		path = strings.Replace(rt.path, "{id}", "t1", 1)
	case rt.path == "/api/v1/targets/history":
		path += "?id=" + url.QueryEscape(dbID)
	case rt.path == "/api/v1/learned/{addr}":
		path = "/api/v1/learned/" + url.PathEscape("127.0.0.1:1883")
	case rt.path == "/api/v1/learned/forget":
		path += "?gone=true"
	case strings.HasPrefix(rt.path, "/api/v1/automation/approvals/{id}"):
		path = strings.Replace(rt.path, "{id}", "r1", 1)
	case rt.path == "/api/v1/bans/{addr}":
		path = "/api/v1/bans/203.0.113.7"
	}
	switch {
	case rt.method == "POST" && strings.HasSuffix(rt.path, "/ack"), rt.method == "POST" && strings.HasSuffix(rt.path, "/resolve"):
		body = `{"comment":"on it"}`
	case rt.method == "POST" && rt.path == "/api/v1/silences":
		body = `{"matchers":[{"name":"service","op":"=","value":"orders"}],"comment":"db migration","duration":"2h"}`
	case rt.method == "POST" && rt.path == "/api/v1/tokens":
		body = `{"name":"ci","role":"viewer"}`
	case rt.method == "POST" && rt.path == "/api/v1/bans":
		body = `{"addr":"203.0.113.7","duration":"30m","reason":"scanning us"}`
	case rt.method == "POST" && rt.path == "/api/v1/status/notes":
		body = `{"service":"orders","text":"We are looking into slow orders."}`
	case rt.method == "POST" && rt.path == "/api/v1/automation/approvals":
		body = `{"alert_id":"a1","playbook":"failover","step":0}`
	case rt.method == "POST" && strings.HasPrefix(rt.path, "/api/v1/automation/"):
		body = `{"reason":"backup is warm"}`
	}
	return path, body
}

// TestEveryRouteEveryRole sends every route a request with no token, a bad token, a
// revoked one and one of each role, and checks 401, 403 or success as the route's role
// says, each answer matching the OpenAPI document.
func TestEveryRouteEveryRole(t *testing.T) {
	doc := loadDoc(t)
	f, _ := newWorld()
	s := newServer(f, func(c *Config) { c.Heartbeat = time.Millisecond })
	tokens := []struct {
		name, secret string
		role         Role
	}{
		{"none", "", ""}, {"unknown", "ppt_nope", ""}, {"revoked", revokedSecret, ""},
		{"viewer", viewerSecret, RoleViewer}, {"operator", operatorSecret, RoleOperator}, {"admin", adminSecret, RoleAdmin},
	}
	for _, rt := range s.routes {
		for _, tok := range tokens {
			t.Run(rt.method+" "+rt.path+" as "+tok.name, func(t *testing.T) {
				path, body := concrete(rt)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var req *http.Request
				if body != "" {
					req, _ = http.NewRequestWithContext(ctx, rt.method, path, strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
				} else {
					req, _ = http.NewRequestWithContext(ctx, rt.method, path, nil)
				}
				req.RemoteAddr = "192.0.2.10:40000"
				if tok.secret != "" {
					req.Header.Set("Authorization", "Bearer "+tok.secret)
				}
				if rt.path == "/api/v1/events" {
					// The stream runs until the client goes; let it send its preamble.
					time.AfterFunc(20*time.Millisecond, cancel)
				}
				rec := newRecorder()
				s.ServeHTTP(rec, req)
				want := http.StatusOK
				switch {
				case rt.role == "":
				case tok.role == "":
					want = http.StatusUnauthorized
				case !tok.role.Allows(rt.role):
					want = http.StatusForbidden
				case rt.method == "POST" && (rt.path == "/api/v1/silences" || rt.path == "/api/v1/tokens" || rt.path == "/api/v1/status/notes" || rt.path == "/api/v1/automation/approvals"):
					want = http.StatusCreated
				case rt.method == "DELETE" && rt.path == "/api/v1/status/notes/{id}":
					want = http.StatusNoContent
					reseed(s)
				}
				got := rec.status()
				if got != want {
					t.Fatalf("got %d, want %d; body: %s", got, want, rec.body())
				}
				if want == http.StatusUnauthorized || want == http.StatusForbidden {
					var e errorBody
					if err := json.Unmarshal(rec.body(), &e); err != nil {
						t.Fatalf("error body: %v: %s", err, rec.body())
					}
					if e.RequiredRole != rt.role || e.Error == "" {
						t.Errorf("got error %+v, want required_role %q and a message", e, rt.role)
					}
					if want == http.StatusUnauthorized && rec.header().Get("WWW-Authenticate") == "" {
						t.Errorf("401 without WWW-Authenticate")
					}
				}
				checkResponse(t, doc, rt, req, got, rec.header(), rec.body())
			})
		}
	}
}

// TestOpenAPIMatchesRoutes checks that the document and the mux describe the same
// routes, with the same roles.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadDoc(t)
	s := New(Config{})
	registered := map[string]Role{}
	for _, rt := range s.routes {
		registered[rt.method+" "+rt.path] = rt.role
	}
	documented := map[string]Role{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			role, _ := op.Extensions["x-required-role"].(string)
			documented[method+" "+path] = Role(role)
			if role == "" && (op.Security == nil || len(*op.Security) != 0) {
				t.Errorf("%s %s: no x-required-role, yet not marked public with security: []", method, path)
			}
		}
	}
	if diff := cmp.Diff(documented, registered); diff != "" {
		t.Errorf("routes in openapi.json (-) and in the mux (+) differ:\n%s", diff)
	}
}

// recorder is an http.ResponseWriter that flushes and may be read while a handler
// still writes (the event stream).
type recorder struct {
	mu   chan struct{}
	hdr  http.Header
	code int
	buf  bytes.Buffer
}

func newRecorder() *recorder {
	r := &recorder{mu: make(chan struct{}, 1), hdr: http.Header{}}
	return r
}

func (r *recorder) lock()   { r.mu <- struct{}{} }
func (r *recorder) unlock() { <-r.mu }

func (r *recorder) Header() http.Header { return r.hdr }
func (r *recorder) WriteHeader(code int) {
	r.lock()
	defer r.unlock()
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.lock()
	defer r.unlock()
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.buf.Write(b)
}
func (r *recorder) Flush() {}
func (r *recorder) status() int {
	r.lock()
	defer r.unlock()
	return r.code
}
func (r *recorder) body() []byte {
	r.lock()
	defer r.unlock()
	return bytes.Clone(r.buf.Bytes())
}
func (r *recorder) header() http.Header { return r.hdr }

func TestWritesRecordWho(t *testing.T) {
	f, c := newWorld()
	s := newServer(f, nil)
	sub, _, _ := s.cfg.Broker.Subscribe("")
	defer sub.Cancel()
	for _, p := range []string{"/api/v1/alerts/a1/ack", "/api/v1/alerts/a1/resolve"} {
		if rec := do(t, s, "POST", p, operatorSecret, `{"comment":"looking"}`); rec.Code != 200 {
			t.Fatalf("%s: got %d: %s", p, rec.Code, rec.Body)
		}
	}
	if rec := do(t, s, "POST", "/api/v1/silences/s1/expire", operatorSecret, ""); rec.Code != 200 {
		t.Fatalf("expire: got %d: %s", rec.Code, rec.Body)
	}
	rec := do(t, s, "POST", "/api/v1/silences", operatorSecret,
		`{"matchers":[{"name":"target","op":"=~","value":"tcp://db.*"}],"comment":"migration","ends_at":"2026-03-01T14:00:00Z"}`)
	if rec.Code != 201 {
		t.Fatalf("create silence: got %d: %s", rec.Code, rec.Body)
	}
	do(t, s, "POST", "/api/v1/tokens", adminSecret, `{"name":"ci","role":"operator"}`)
	want := calls{
		acks: []string{"a1 alice looking"}, resolves: []string{"a1 alice looking"}, expires: []string{"s1 alice"},
		silences: []patrol.Silence{{Matchers: patrol.Matchers{mustMatcher(t, "target=~tcp://db.*")}, Author: "alice", Comment: "migration",
			StartsAt: t0, EndsAt: t0.Add(2 * time.Hour)}},
		tokens: []string{"ci operator root"},
	}
	if diff := cmp.Diff(want, *c, cmp.AllowUnexported(calls{}), matcherText); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	// Each alert action told the event stream.
	for i := 0; i < 2; i++ {
		select {
		case ev := <-sub.C():
			if ev.Type != EventAlert {
				t.Errorf("got event %s, want alert", ev.Type)
			}
		default:
			t.Fatalf("got %d alert events, want 2", i)
		}
	}
}

func TestMalformedInput(t *testing.T) {
	f, _ := newWorld()
	s := newServer(f, func(c *Config) { c.MaxBodyBytes = 512 })
	tests := []struct {
		name, method, path, body string
		ctype                    string
		want                     int
		field                    string
		msg                      string
	}{
		{"bad json", "POST", "/api/v1/silences", `{"matchers":[}`, "", 400, "", "invalid JSON at byte"},
		{"truncated json", "POST", "/api/v1/silences", `{"matchers":[`, "", 400, "", "unexpected end"},
		{"unknown field", "POST", "/api/v1/silences", `{"matchers":[],"coment":"x"}`, "", 400, "coment", `unknown field "coment"`},
		{"unknown nested field", "POST", "/api/v1/silences", `{"matchers":[{"name":"a","op":"=","value":"b","regex":true}]}`, "", 400, "regex", `unknown field "regex"`},
		{"wrong type", "POST", "/api/v1/silences", `{"comment":42}`, "", 400, "comment", "want a string, got number"},
		{"wrong nested type", "POST", "/api/v1/silences", `{"matchers":[{"name":1}]}`, "", 400, "matchers.name", "want a string, got number"},
		{"not an object", "POST", "/api/v1/silences", `[1]`, "", 400, "", "want an object"},
		{"trailing data", "POST", "/api/v1/alerts/a1/ack", `{} {}`, "", 400, "", "data after the object"},
		{"empty silence", "POST", "/api/v1/silences", ``, "", 400, "", "empty body"},
		{"no matchers", "POST", "/api/v1/silences", `{"comment":"x","duration":"1h"}`, "", 400, "matchers", "at least one matcher"},
		{"bad op", "POST", "/api/v1/silences", `{"matchers":[{"name":"a","op":"==","value":"b"}],"comment":"x","duration":"1h"}`, "", 400, "matchers[0].op", `"==": want`},
		{"bad regexp", "POST", "/api/v1/silences", `{"matchers":[{"name":"a","op":"=~","value":"("}],"comment":"x","duration":"1h"}`, "", 400, "matchers[0].value", "invalid regular expression"},
		{"regexp escaping its anchors", "POST", "/api/v1/silences", `{"matchers":[{"name":"a","op":"=~","value":"x)|(y"}],"comment":"x","duration":"1h"}`, "", 400, "matchers[0].value", "invalid regular expression"},
		{"bad label", "POST", "/api/v1/silences", `{"matchers":[{"name":"9a","op":"=","value":"b"}],"comment":"x","duration":"1h"}`, "", 400, "matchers[0].name", "not a label name"},
		{"no comment", "POST", "/api/v1/silences", `{"matchers":[{"name":"a","op":"=","value":"b"}],"duration":"1h"}`, "", 400, "comment", "required"},
		{"bad time", "POST", "/api/v1/silences", `{"matchers":[{"name":"a","op":"=","value":"b"}],"comment":"x","ends_at":"tomorrow"}`, "", 400, "ends_at", "not an RFC 3339 time"},
		{"past end", "POST", "/api/v1/silences", `{"matchers":[{"name":"a","op":"=","value":"b"}],"comment":"x","ends_at":"2020-01-01T00:00:00Z"}`, "", 400, "ends_at", "not after starts_at"},
		{"no end", "POST", "/api/v1/silences", `{"matchers":[{"name":"a","op":"=","value":"b"}],"comment":"x"}`, "", 400, "ends_at", "required"},
		{"both ends", "POST", "/api/v1/silences", `{"matchers":[{"name":"a","op":"=","value":"b"}],"comment":"x","ends_at":"2026-03-01T14:00:00Z","duration":"1h"}`, "", 400, "duration", "not both"},
		{"bad duration", "POST", "/api/v1/silences", `{"matchers":[{"name":"a","op":"=","value":"b"}],"comment":"x","duration":"-1h"}`, "", 400, "duration", `"-1h" is negative`},
		{"too large", "POST", "/api/v1/alerts/a1/ack", `{"comment":"` + strings.Repeat("x", 600) + `"}`, "", 413, "", "larger than 512 bytes"},
		{"long comment", "POST", "/api/v1/alerts/a1/ack", `{"comment":"` + strings.Repeat("x", 450) + `"}`, "", 200, "", ""},
		{"wrong content type", "POST", "/api/v1/alerts/a1/ack", `comment=x`, "application/x-www-form-urlencoded", 415, "", "want application/json"},
		{"bad role", "POST", "/api/v1/tokens", `{"name":"x","role":"root"}`, "", 400, "role", `"root": want viewer`},
		{"role type", "POST", "/api/v1/tokens", `{"name":"x","role":1}`, "", 400, "role", "want a string"},
		{"bad status", "GET", "/api/v1/targets?status=sideways", "", "", 400, "status", "want up, down or unknown"},
		{"bad label filter", "GET", "/api/v1/targets?label=service", "", "", 400, "label", "want name=value"},
		{"history without id", "GET", "/api/v1/targets/history", "", "", 400, "id", "required"},
		{"history bad from", "GET", "/api/v1/targets/history?id=x&from=yesterday", "", "", 400, "from", "not an RFC 3339 time"},
		{"history reversed", "GET", "/api/v1/targets/history?id=x&from=2026-03-02T00:00:00Z", "", "", 400, "from", "is not before to"},
		{"history bad step", "GET", "/api/v1/targets/history?id=x&step=fast", "", "", 400, "step", "is not a duration"},
		{"history tiny step", "GET", "/api/v1/targets/history?id=x&from=1700000000&to=1701000000&step=1s", "", "", 400, "step", "more than 10000 points"},
		{"bad severity", "GET", "/api/v1/alerts?severity=P9", "", "", 400, "severity", "want P0"},
		{"bad state", "GET", "/api/v1/alerts?state=angry", "", "", 400, "state", "want open, all"},
		{"bad limit", "GET", "/api/v1/alerts?limit=0", "", "", 400, "limit", "positive integer"},
		{"bad delivery state", "GET", "/api/v1/deliveries?state=lost", "", "", 400, "state", "want pending"},
		{"bad after", "GET", "/api/v1/deliveries?after=x", "", "", 400, "after", "delivery seq"},
		{"bad since", "GET", "/api/v1/deliveries?since=x", "", "", 400, "since", "not an RFC 3339"},
		{"unknown route", "GET", "/api/v1/nope", "", "", 404, "", "no route GET /api/v1/nope"},
		{"wrong method", "PUT", "/api/v1/silences", "", "", 405, "", "use GET, POST"},
		{"unknown alert", "POST", "/api/v1/alerts/zz/ack", "", "", 404, "", "not found"},
		{"unknown target", "GET", "/api/v1/targets/" + url.PathEscape("tcp://nope:1"), "", "", 404, "", "not found"},
		{"unknown silence", "DELETE", "/api/v1/silences/zz", "", "", 404, "", "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := operatorSecret
			if strings.HasPrefix(tt.path, "/api/v1/tokens") {
				tok = adminSecret
			}
			req, _ := http.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			req.RemoteAddr = "192.0.2.10:1"
			req.Header.Set("Authorization", "Bearer "+tok)
			ct := tt.ctype
			if ct == "" && tt.body != "" {
				ct = "application/json"
			}
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			rec := newRecorder()
			s.ServeHTTP(rec, req)
			if rec.status() != tt.want {
				t.Fatalf("got %d, want %d: %s", rec.status(), tt.want, rec.body())
			}
			if tt.want == 200 {
				return
			}
			var e errorBody
			if err := json.Unmarshal(rec.body(), &e); err != nil {
				t.Fatalf("error body is not JSON: %v: %s", err, rec.body())
			}
			if e.Field != tt.field {
				t.Errorf("got field %q, want %q (%s)", e.Field, tt.field, e.Error)
			}
			if !strings.Contains(e.Error, tt.msg) {
				t.Errorf("got error %q, want it to contain %q", e.Error, tt.msg)
			}
		})
	}
}

func TestConflictAndInternalErrors(t *testing.T) {
	f, _ := newWorld()
	f.ackAlert = func(context.Context, string, string, string) error {
		return fmt.Errorf("ack a1: already resolved: %w", ErrConflict)
	}
	f.listSilences = func(context.Context) ([]patrol.Silence, error) {
		return nil, errors.New("database is locked: /var/lib/portpatrol/state.db")
	}
	s := newServer(f, nil)
	rec := do(t, s, "POST", "/api/v1/alerts/a1/ack", operatorSecret, "")
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "already resolved") {
		t.Errorf("ack of a resolved alert: got %d %s, want 409 naming why", rec.Code, rec.Body)
	}
	rec = do(t, s, "GET", "/api/v1/silences", viewerSecret, "")
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "/var/lib") {
		t.Errorf("store failure: got %d %s, want 500 without internals", rec.Code, rec.Body)
	}
}

func TestUnconfiguredRoutesAnswer501(t *testing.T) {
	s := New(Config{Tokens: StaticTokens{{ID: "x", Name: "root", Role: RoleAdmin, Secret: adminSecret}}})
	for _, rt := range s.routes {
		if rt.role == "" || rt.path == "/api/v1/whoami" || rt.path == "/api/v1/events" {
			continue
		}
		path, body := concrete(rt)
		if rec := do(t, s, rt.method, path, adminSecret, body); rec.Code != http.StatusNotImplemented {
			t.Errorf("%s %s: got %d, want 501: %s", rt.method, path, rec.Code, rec.Body)
		}
	}
}

func TestAnonymousRead(t *testing.T) {
	f, _ := newWorld()
	tests := []struct {
		name          string
		anon          bool
		method, path  string
		remote        string
		want          int
		wantAnonymous bool
	}{
		{"off, loopback", false, "GET", "/api/v1/targets", "127.0.0.1:5000", 401, false},
		{"on, loopback v4", true, "GET", "/api/v1/whoami", "127.0.0.1:5000", 200, true},
		{"on, loopback v6", true, "GET", "/api/v1/targets", "[::1]:5000", 200, false},
		{"on, v4-mapped loopback", true, "GET", "/api/v1/targets", "[::ffff:127.0.0.1]:5000", 200, false},
		{"on, remote", true, "GET", "/api/v1/targets", "192.0.2.1:5000", 401, false},
		{"on, loopback write", true, "POST", "/api/v1/alerts/a1/ack", "127.0.0.1:5000", 401, false},
		{"on, loopback admin read", true, "GET", "/api/v1/tokens", "127.0.0.1:5000", 401, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(f, func(c *Config) { c.AnonymousRead = tt.anon })
			rec := do(t, s, tt.method, tt.path, "", "", tt.remote)
			if rec.Code != tt.want {
				t.Fatalf("got %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if tt.wantAnonymous && !strings.Contains(rec.Body.String(), `"name":"anonymous"`) {
				t.Errorf("whoami: got %s, want anonymous", rec.Body)
			}
		})
	}
}

func TestMalformedAuthorization(t *testing.T) {
	f, _ := newWorld()
	s := newServer(f, nil)
	for _, h := range []string{"Basic dXNlcjpwYXNz", "Bearer", "Bearer ", viewerSecret} {
		req, _ := http.NewRequest("GET", "/api/v1/targets", nil)
		req.Header.Set("Authorization", h)
		rec := newRecorder()
		s.ServeHTTP(rec, req)
		if rec.status() != 401 {
			t.Errorf("Authorization %q: got %d, want 401", h, rec.status())
		}
	}
}

func TestStaticTokens(t *testing.T) {
	ts := StaticTokens{{ID: "1", Name: "ops", Role: RoleOperator, Secret: "s3cret"}, {ID: "2", Name: "ro", Role: RoleViewer, Secret: "other"}}
	id, err := ts.LookupToken(context.Background(), HashToken("s3cret"))
	if err != nil || id != (Identity{TokenID: "1", Name: "ops", Role: RoleOperator}) {
		t.Errorf("got %+v, %v; want ops operator", id, err)
	}
	if _, err := ts.LookupToken(context.Background(), HashToken("s3cre")); !errors.Is(err, ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
}

func TestTargetViews(t *testing.T) {
	f, _ := newWorld()
	s := newServer(f, nil)
	rec := do(t, s, "GET", "/api/v1/targets?q=ORDERS", viewerSecret, "")
	var list struct {
		Targets []targetView `json:"targets"`
		Count   int          `json:"count"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if list.Count != 1 || list.Targets[0].ID != dbID {
		t.Fatalf("search orders: got %+v, want the db only", list)
	}
	db := list.Targets[0]
	if db.Alert == nil || db.Alert.Severity != "P0" || db.Alert.Count != 1 || db.Last == nil || db.Last.Class != "refused" {
		t.Errorf("db: got %+v, want a P0 alert and a refused last result", db)
	}
	rec = do(t, s, "GET", "/api/v1/targets?status=up&label=service=web", viewerSecret, "")
	if !strings.Contains(rec.Body.String(), `"count":1`) || !strings.Contains(rec.Body.String(), "web.internal") {
		t.Errorf("status=up&label=service=web: got %s", rec.Body)
	}
	rec = do(t, s, "GET", "/api/v1/targets/"+url.PathEscape(dbID), viewerSecret, "")
	for _, want := range []string{`"recent":[{`, `"phases":{"connect":0.002}`, `"alerts":[{"id":"a1"`, `"severity":"P0"`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("target detail: missing %s in %s", want, rec.Body)
		}
	}
}

func TestHistory(t *testing.T) {
	f, _ := newWorld()
	var got patrol.HistoryQuery
	inner := f.history
	f.history = func(ctx context.Context, q patrol.HistoryQuery) (patrol.Series, error) { got = q; return inner(ctx, q) }
	s := newServer(f, nil)
	rec := do(t, s, "GET", "/api/v1/targets/history?id="+url.QueryEscape(dbID)+"&from=2026-03-01T06:00:00Z&step=5m", viewerSecret, "")
	if rec.Code != 200 {
		t.Fatalf("got %d: %s", rec.Code, rec.Body)
	}
	want := patrol.HistoryQuery{Target: dbID, From: t0.Add(-6 * time.Hour), To: t0, Step: 5 * time.Minute}
	if !got.From.Equal(want.From) || !got.To.Equal(want.To) || got.Step != want.Step || got.Target != want.Target {
		t.Errorf("query: got %+v, want %+v", got, want)
	}
	var h historyView
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Points) != 1 || h.Points[0].P95 != 0.008 || len(h.Incidents) != 1 || h.Incidents[0].Severity != "P0" {
		t.Errorf("got %+v, want one point with p95 8ms and the P0 incident", h)
	}
	// Default span: the last hour.
	do(t, s, "GET", "/api/v1/targets/history?id="+url.QueryEscape(dbID), viewerSecret, "")
	if got.To.Sub(got.From) != time.Hour || !got.To.Equal(t0) {
		t.Errorf("default span: got %s to %s", got.From, got.To)
	}
	rec = do(t, s, "GET", "/api/v1/targets/history?id=tcp://nope:1", viewerSecret, "")
	if rec.Code != 404 {
		t.Errorf("unknown target: got %d, want 404", rec.Code)
	}
}

func TestAlertFilters(t *testing.T) {
	f, _ := newWorld()
	var got AlertFilter
	f.listAlerts = func(_ context.Context, fl AlertFilter) ([]patrol.Alert, error) { got = fl; return nil, nil }
	s := newServer(f, nil)
	do(t, s, "GET", "/api/v1/alerts?state=firing&state=resolved&severity=P0&severity=p1&target=x", viewerSecret, "")
	want := AlertFilter{States: []patrol.AlertState{"firing", "resolved"}, Severities: []patrol.Severity{patrol.P0, patrol.P1}, Target: "x"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("filter (-want +got):\n%s", diff)
	}
	do(t, s, "GET", "/api/v1/alerts?state=all", viewerSecret, "")
	if !slices.Equal(got.States, allStates) {
		t.Errorf("state=all: got %v", got.States)
	}
	do(t, s, "GET", "/api/v1/alerts", viewerSecret, "")
	if len(got.States) != 0 {
		t.Errorf("default: got %v, want no states (open)", got.States)
	}
}

func TestDeliveriesPaging(t *testing.T) {
	f, _ := newWorld()
	var got DeliveryFilter
	f.deliveries = func(_ context.Context, fl DeliveryFilter) ([]Delivery, error) {
		got = fl
		out := make([]Delivery, fl.Limit)
		for i := range out {
			out[i] = Delivery{Seq: fl.AfterSeq + int64(i) + 1, State: "pending", EnqueuedAt: t0}
		}
		return out, nil
	}
	s := newServer(f, nil)
	rec := do(t, s, "GET", "/api/v1/deliveries?after=10&limit=2&state=failed&receiver=slack", viewerSecret, "")
	if got.AfterSeq != 10 || got.Limit != 2 || got.Receiver != "slack" || !slices.Equal(got.States, []string{"failed"}) {
		t.Errorf("filter: got %+v", got)
	}
	if !strings.Contains(rec.Body.String(), `"next_after":12`) {
		t.Errorf("got %s, want next_after 12", rec.Body)
	}
}

func TestAudits(t *testing.T) {
	f, _ := newWorld()
	s := newServer(f, nil)
	rec := do(t, s, "GET", "/api/v1/audits", viewerSecret, "")
	if rec.Code != 200 {
		t.Fatalf("got %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`{"port":6379,"verdict":"unauthorised","listeners":[{"bind":"0.0.0.0:6379","process":"redis-server","user":"redis"}]}`,
		`"required":[22,443]`,
		`"kind":"required_closed","severity":"P0"`,
		// An audit that has not run: no time, empty lists rather than null.
		`{"name":"dmz","policy":"dmz.yaml","hosts":[],"findings":[]}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s in %s", want, body)
		}
	}
	f.audits = func(context.Context) ([]AuditReport, error) { return nil, nil }
	if rec := do(t, s, "GET", "/api/v1/audits", viewerSecret, ""); strings.TrimSpace(rec.Body.String()) != `{"audits":[]}` {
		t.Errorf("no audits: got %s, want an empty list", rec.Body)
	}
}
