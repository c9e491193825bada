package api

import (
	"net/http"
	"strings"
	"testing"
)

// RequireToken guards endpoints outside the API with the API's tokens, and never lets
// the anonymous loopback reader through.
func TestRequireToken(t *testing.T) {
	f, _ := newWorld()
	s := newServer(f, func(c *Config) { c.AnonymousRead = true })
	var got Identity
	h := func(w http.ResponseWriter, _ *http.Request, who Identity) {
		got = who
		w.Write([]byte("secret config error"))
	}
	tests := []struct {
		name, method string
		need         Role
		token        string
		want         int
		wantName     string
	}{
		{"anonymous loopback read of a viewer endpoint", "GET", RoleViewer, "", 401, ""},
		{"viewer reads", "GET", RoleViewer, viewerSecret, 200, "grafana"},
		{"anonymous loopback reload", "POST", RoleAdmin, "", 401, ""},
		{"revoked token", "POST", RoleAdmin, revokedSecret, 401, ""},
		{"viewer reloads", "POST", RoleAdmin, viewerSecret, 403, ""},
		{"operator reloads", "POST", RoleAdmin, operatorSecret, 403, ""},
		{"admin reloads", "POST", RoleAdmin, adminSecret, 200, "root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = Identity{}
			rec := do(t, s.RequireToken(tt.need, h), tt.method, "/-/reload", tt.token, "", "127.0.0.1:5000")
			if rec.Code != tt.want {
				t.Fatalf("got %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if leaked := strings.Contains(rec.Body.String(), "secret config error"); leaked != (tt.want == 200) {
				t.Errorf("handler ran: %v, want %v", leaked, tt.want == 200)
			}
			if got.Name != tt.wantName {
				t.Errorf("identity: got %q, want %q", got.Name, tt.wantName)
			}
			if tt.want == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}
