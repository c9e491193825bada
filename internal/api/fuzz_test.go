package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzWriteBodies sends arbitrary bodies to the routes that read one: the answer is
// a success or a 4xx with a JSON error, never a 500 or a panic.
func FuzzWriteBodies(f *testing.F) {
	for _, seed := range []string{
		`{"matchers":[{"name":"a","op":"=~","value":"b.*"}],"comment":"x","duration":"1h"}`,
		`{"comment":"x"}`, `{"name":"ci","role":"viewer"}`, `{"matchers":[{"name":1}]}`, `{`, `[]`, `null`,
		`{"ends_at":"2026-03-01T13:00:00Z","starts_at":"1772370000"}`, `{"a":{"b":[1,2,{"c":null}]}}`,
		`{"matchers":[{"name":"a","op":"=","value":"b"}],"comment":"x","duration":"1e-10"}`,
		`{"matchers":[{"name":"a","op":"=","value":"b"}],"comment":"x","ends_at":"NaN"}`,
		`{"matchers":[{"name":"target","op":"=~","value":".*"}],"comment":"x","duration":"1h"}`,
		`{"matchers":[{"name":"a","op":"=~","value":"x)|(y"}],"comment":"x","duration":"1h"}`,
		`{"service":"shop","state":"identified","text":"Checkout fails"}`, `{"text":"a\u0000b"}`, `{"text":"\u00e9\u0085"}`,
	} {
		f.Add(seed)
	}
	w, _ := newWorld()
	s := newServer(w, nil)
	paths := []struct{ path, token string }{
		{"/api/v1/silences", operatorSecret}, {"/api/v1/alerts/a1/ack", operatorSecret},
		{"/api/v1/alerts/a1/resolve", operatorSecret}, {"/api/v1/tokens", adminSecret},
		{"/api/v1/status/notes", operatorSecret},
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range paths {
			rec := do(t, s, "POST", p.path, p.token, body)
			if rec.Code >= 500 {
				t.Fatalf("POST %s %q: got %d: %s", p.path, body, rec.Code, rec.Body)
			}
			if rec.Code >= 400 && (!strings.HasPrefix(rec.Body.String(), `{"error":`) || rec.Header().Get("Content-Type") != "application/json") {
				t.Fatalf("POST %s %q: got %d with a body that is not a JSON error: %s", p.path, body, rec.Code, rec.Body)
			}
			if rec.Code != http.StatusOK && rec.Code != http.StatusCreated && rec.Code < 400 {
				t.Fatalf("POST %s %q: got %d", p.path, body, rec.Code)
			}
		}
	})
}

// FuzzQueries sends arbitrary query strings to the routes that read one (history, the
// target, alert and delivery filters): the answer is a 200 or a 4xx with a JSON
// error, never a 500 or a panic.
func FuzzQueries(f *testing.F) {
	for _, seed := range []string{
		"id=tcp://db.internal:5432&from=2026-03-01T06:00:00Z&step=5m", "id=x&step=1e-10", "id=x&from=NaN&to=Inf",
		"id=x&to=1e300", "id=x&from=1700000000&to=1701000000&step=1s", "status=down&q=db&label=service=orders",
		"state=open&severity=P0&target=x&limit=1", "receiver=noc&state=failed&since=1772370000&after=3&limit=10",
		"label==", "limit=-1", "%zz", "step=9223372037", "since=-1",
	} {
		f.Add(seed)
	}
	w, _ := newWorld()
	s := newServer(w, nil)
	f.Fuzz(func(t *testing.T, query string) {
		for _, path := range []string{"/api/v1/targets/history", "/api/v1/targets", "/api/v1/alerts", "/api/v1/deliveries"} {
			req, err := http.NewRequest("GET", path+"?"+query, nil)
			if err != nil {
				return // no client could send it
			}
			req.RemoteAddr = "192.0.2.10:40000"
			req.Header.Set("Authorization", "Bearer "+viewerSecret)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK && (rec.Code < 400 || rec.Code >= 500) {
				t.Fatalf("GET %s?%s: got %d: %s", path, query, rec.Code, rec.Body)
			}
			if rec.Code >= 400 && !strings.HasPrefix(rec.Body.String(), `{"error":`) {
				t.Fatalf("GET %s?%s: got %d with a body that is not a JSON error: %s", path, query, rec.Code, rec.Body)
			}
		}
	})
}

// FuzzParseDuration: parseDuration either refuses with an error naming its field or
// returns a duration within its bounds that it reads back from its own String.
func FuzzParseDuration(f *testing.F) {
	for _, seed := range []string{"90s", "1h30m", "1.5", "1e-10", "NaN", "Inf", "1e300", "-1h", "0.0001220703125h", "2562047h", "µs", ".5ms"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, bad := parseDuration("step", v, time.Nanosecond, 1<<63-1)
		if bad != nil {
			if bad.field != "step" || bad.status != 0 {
				t.Fatalf("%q: got error %+v, want a 400 on step", v, bad)
			}
			return
		}
		if d < time.Nanosecond {
			t.Fatalf("%q: got %s, below the minimum", v, d)
		}
		again, bad := parseDuration("step", d.String(), time.Nanosecond, 1<<63-1)
		if bad != nil || again != d {
			t.Fatalf("%q = %s, whose String reads as %s, %v", v, d, again, bad)
		}
	})
}

// FuzzParseTime: parseTime either refuses with an error naming its field or returns a
// time from 1970 to 2200 that reads back from its RFC 3339 form.
func FuzzParseTime(f *testing.F) {
	for _, seed := range []string{"2026-03-01T12:00:00Z", "2026-03-01T13:00:00.5+01:00", "1772366400.5", "NaN", "-Inf", "1e300", "0", "9999-12-31T23:59:59Z"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tm, bad := parseTime("from", v)
		if bad != nil {
			if bad.field != "from" || bad.status != 0 {
				t.Fatalf("%q: got error %+v, want a 400 on from", v, bad)
			}
			return
		}
		if tm.Before(minTime) || !tm.Before(maxTime) {
			t.Fatalf("%q: got %s, out of range", v, tm)
		}
		again, bad := parseTime("from", tm.Format(time.RFC3339Nano))
		if bad != nil || !again.Equal(tm) {
			t.Fatalf("%q = %s, whose RFC 3339 form reads as %s, %v", v, tm, again, bad)
		}
	})
}
