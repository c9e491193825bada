package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// The fake's learned listeners: one being learned, one gone.
func (f *fake) LearnedListeners(context.Context) ([]LearnedListener, error) {
	learnAt, gone, forget := t0.Add(90*time.Second), t0.Add(-time.Hour), t0.Add(23*time.Hour)
	learned := t0.Add(-48 * time.Hour)
	return []LearnedListener{
		{Addr: "127.0.0.1:1883", Port: 1883, Process: "mosquitto", PID: 123, State: "learning", FirstSeen: t0.Add(-30 * time.Second),
			LearnAt: &learnAt, TargetID: "tcp://127.0.0.1:1883"},
		{Addr: "0.0.0.0:6379", Port: 6379, Process: "redis-server", State: "gone", FirstSeen: learned, LearnedAt: &learned,
			GoneSince: &gone, ForgetAt: &forget, TargetID: "tcp://127.0.0.1:6379", Fate: "exited"},
	}, nil
}

func (f *fake) ForgetLearned(_ context.Context, addr string) ([]string, error) {
	switch addr {
	case "127.0.0.1:1883", "0.0.0.0:6379":
		return []string{addr}, nil
	case "nonsense":
		return nil, fmt.Errorf("%w: listener %q: want ADDR:PORT", ErrInvalid, addr)
	}
	return nil, fmt.Errorf("forget %s: %w", addr, ErrNotFound)
}

func (f *fake) ForgetGoneLearned(context.Context) ([]string, error) {
	return []string{"0.0.0.0:6379"}, nil
}

func TestLearnedListeners(t *testing.T) {
	f, _ := newWorld()
	s := newServer(f, nil)
	rec := do(t, s, "GET", "/api/v1/learned", viewerSecret, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET learned: %d %s", rec.Code, rec.Body)
	}
	// The dashboard reads exactly these fields; nulls are spelled out.
	var got struct {
		Listeners []map[string]any `json:"listeners"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Listeners) != 2 {
		t.Fatalf("got %d listeners: %s", len(got.Listeners), rec.Body)
	}
	for _, k := range []string{"addr", "port", "process", "pid", "state", "first_seen", "learned_at", "gone_since", "learn_at", "forget_at", "target_id"} {
		if _, ok := got.Listeners[0][k]; !ok {
			t.Errorf("field %q missing: %v", k, got.Listeners[0])
		}
	}
	if l := got.Listeners[0]; l["learned_at"] != nil || l["learn_at"] != t0.Add(90*time.Second).Format(time.RFC3339) {
		t.Errorf("learning listener: got %v, want learned_at null and learn_at %s", l, t0.Add(90*time.Second).Format(time.RFC3339))
	}

	tests := []struct {
		method, path, token string
		code                int
		want                string
	}{
		{"DELETE", "/api/v1/learned/" + url.PathEscape("127.0.0.1:1883"), operatorSecret, 200, `{"forgotten":["127.0.0.1:1883"]}`},
		{"DELETE", "/api/v1/learned/127.0.0.1:9", operatorSecret, 404, `not found`},
		{"DELETE", "/api/v1/learned/nonsense", operatorSecret, 400, `want ADDR:PORT`},
		{"DELETE", "/api/v1/learned/127.0.0.1:1883", viewerSecret, 403, `"required_role":"operator"`},
		{"POST", "/api/v1/learned/forget?gone=true", operatorSecret, 200, `{"forgotten":["0.0.0.0:6379"]}`},
		{"POST", "/api/v1/learned/forget", operatorSecret, 400, `"field":"gone"`},
		{"POST", "/api/v1/learned/forget?gone=true", viewerSecret, 403, `"required_role":"operator"`},
	}
	for _, tc := range tests {
		rec := do(t, s, tc.method, tc.path, tc.token, "")
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s %s: got %d %s, want %d with %s", tc.method, tc.path, rec.Code, rec.Body, tc.code, tc.want)
		}
	}

	off := newServer(f, func(c *Config) { c.Learned = nil })
	if rec := do(t, off, "GET", "/api/v1/learned", viewerSecret, ""); rec.Code != http.StatusNotImplemented || !strings.Contains(rec.Body.String(), "host watch is disabled") {
		t.Errorf("without a host watch: %d %s", rec.Code, rec.Body)
	}
	if !slices.ContainsFunc(s.routes, func(r route) bool { return r.path == "/api/v1/learned/{addr}" && r.method == "DELETE" }) {
		t.Error("DELETE /api/v1/learned/{addr} not registered")
	}
}

func TestResolveAnswersWithHint(t *testing.T) {
	f, _ := newWorld()
	get := f.getAlert
	f.getAlert = func(ctx context.Context, id string) (Incident, error) {
		inc, err := get(ctx, id)
		inc.Hint = "forget it: portpatrol learned forget 127.0.0.1:1883"
		return inc, err
	}
	s := newServer(f, nil)
	rec := do(t, s, "POST", "/api/v1/alerts/a1/resolve", operatorSecret, "")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"hint":"forget it: portpatrol learned forget 127.0.0.1:1883"`) {
		t.Errorf("resolve: got %d %s, want the hint", rec.Code, rec.Body)
	}
	checkResponse(t, loadDoc(t), route{method: "POST", path: "/api/v1/alerts/{id}/resolve"}, httptestRequest("POST", "/api/v1/alerts/a1/resolve"), rec.Code, rec.Header(), rec.Body.Bytes())
}

func httptestRequest(method, path string) *http.Request {
	r, _ := http.NewRequest(method, path, nil)
	return r
}
