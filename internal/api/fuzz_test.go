package api

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzWriteBodies sends arbitrary bodies to the routes that read one: the answer is
// a success or a 4xx with a JSON error, never a 500 or a panic.
func FuzzWriteBodies(f *testing.F) {
	for _, seed := range []string{
		`{"matchers":[{"name":"a","op":"=~","value":"b.*"}],"comment":"x","duration":"1h"}`,
		`{"comment":"x"}`, `{"name":"ci","role":"viewer"}`, `{"matchers":[{"name":1}]}`, `{`, `[]`, `null`,
		`{"ends_at":"2026-03-01T13:00:00Z","starts_at":"1772370000"}`, `{"a":{"b":[1,2,{"c":null}]}}`,
	} {
		f.Add(seed)
	}
	w, _ := newWorld()
	s := newServer(w, nil)
	paths := []struct{ path, token string }{
		{"/api/v1/silences", operatorSecret}, {"/api/v1/alerts/a1/ack", operatorSecret}, {"/api/v1/tokens", adminSecret},
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
