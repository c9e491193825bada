package api

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// memBans keeps bans in memory; 198.51.100.0/24 is allowlisted.
type memBans struct {
	mu   sync.Mutex
	bans map[string]Ban
}

func newMemBans() *memBans { return &memBans{bans: map[string]Ban{}} }

func (m *memBans) ListBans(context.Context) ([]Ban, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Ban
	for _, b := range m.bans {
		out = append(out, b)
	}
	return out, nil
}

func (m *memBans) AddBan(_ context.Context, a netip.Addr, d time.Duration, reason, by string) (Ban, error) {
	if netip.MustParsePrefix("198.51.100.0/24").Contains(a) {
		return Ban{}, fmt.Errorf("%s is allowlisted by intrusion.allowlist[0] 198.51.100.0/24 at pp.yaml:9: never banned: %w", a, ErrConflict)
	}
	if d == 0 {
		d = 10 * time.Minute
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b := Ban{Addr: a.String(), Active: true, Kind: "manual", Reason: reason, Actor: by, Created: t0, Expires: t0.Add(d), Duration: d.String(), Count: 1}
	m.bans[b.Addr] = b
	return b, nil
}

func (m *memBans) RemoveBan(_ context.Context, a netip.Addr, reason, by string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.bans[a.String()]
	if !ok {
		return fmt.Errorf("%s is not banned: %w", a, ErrNotFound)
	}
	now := t0
	b.Active, b.Lifted, b.LiftedBy = false, &now, by
	m.bans[b.Addr] = b
	return nil
}

func TestBansRoutes(t *testing.T) {
	f, _ := newWorld()
	s := newServer(f, nil)
	for _, tt := range []struct {
		method, path, token, body string
		status                    int
		want                      string
	}{
		{"POST", "/api/v1/bans", viewerSecret, `{"addr":"203.0.113.7","reason":"x"}`, http.StatusForbidden, ""},
		{"POST", "/api/v1/bans", operatorSecret, `{"addr":"203.0.113.300","reason":"x"}`, http.StatusBadRequest, `addr: \"203.0.113.300\" is not an IP address`},
		{"POST", "/api/v1/bans", operatorSecret, `{"addr":"203.0.113.7","duration":"soon","reason":"x"}`, http.StatusBadRequest, `duration: \"soon\" is not a positive duration`},
		{"POST", "/api/v1/bans", operatorSecret, `{"addr":"203.0.113.7"}`, http.StatusBadRequest, `reason: required`},
		{"POST", "/api/v1/bans", operatorSecret, `{"addr":"198.51.100.4","reason":"x"}`, http.StatusConflict, `allowlisted by intrusion.allowlist[0] 198.51.100.0/24 at pp.yaml:9`},
		{"POST", "/api/v1/bans", operatorSecret, `{"addr":"203.0.113.7","duration":"1h","reason":"scanning"}`, http.StatusOK, `"duration":"1h0m0s"`},
		{"GET", "/api/v1/bans", viewerSecret, "", http.StatusOK, `"addr":"203.0.113.7","active":true`},
		{"DELETE", "/api/v1/bans/203.0.113.7", operatorSecret, "", http.StatusOK, `"lifted":"203.0.113.7"`},
		{"DELETE", "/api/v1/bans/203.0.113.8", operatorSecret, "", http.StatusNotFound, "not banned"},
		{"GET", "/api/v1/bans", viewerSecret, "", http.StatusOK, `"active":false`},
	} {
		rec := do(t, s, tt.method, tt.path, tt.token, tt.body)
		if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("%s %s: got %d %s, want %d containing %s", tt.method, tt.path, rec.Code, rec.Body, tt.status, tt.want)
		}
	}
	off := newServer(f, func(c *Config) { c.Bans = nil })
	if rec := do(t, off, "GET", "/api/v1/bans", viewerSecret, ""); rec.Code != http.StatusNotImplemented || !strings.Contains(rec.Body.String(), "intrusion.enabled is false") {
		t.Errorf("without bans: got %d %s", rec.Code, rec.Body)
	}
}
