package web_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/web"
)

func TestHandler(t *testing.T) {
	h := web.New(web.Config{APIBase: "/pp/api/v1/"})
	tests := []struct {
		method, path string
		code         int
		ctype, body  string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `<meta name="pp-api" content="/pp/api/v1">`},
		{"GET", "/index.html", 200, "text/html; charset=utf-8", `<script type="module" src="app.js">`},
		{"GET", "/app.js", 200, "text/javascript; charset=utf-8", "import"},
		{"GET", "/style.css", 200, "text/css; charset=utf-8", ".tile"},
		{"GET", "/cluster.js", 200, "text/javascript; charset=utf-8", "/cluster"},
		{"GET", "/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"GET", "/nope.js", 404, "", ""},
		{"GET", "/../web.go", 404, "", ""},
		{"POST", "/", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.code {
				t.Fatalf("got %d, want %d", rec.Code, tt.code)
			}
			if tt.code != 200 {
				return
			}
			if got := rec.Header().Get("Content-Type"); got != tt.ctype {
				t.Errorf("content type %q, want %q", got, tt.ctype)
			}
			if !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("body does not contain %q", tt.body)
			}
			if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("CSP %q", csp)
			}
		})
	}
}

// TestNoRemoteAssets keeps the dashboard offline: no asset refers to another origin.
func TestNoRemoteAssets(t *testing.T) {
	for _, name := range []string{"/", "/app.js", "/api.js", "/overview.js", "/target.js", "/incidents.js", "/exposure.js", "/chart.js", "/util.js", "/security.js", "/automation.js", "/cluster.js", "/style.css"} {
		rec := httptest.NewRecorder()
		web.New(web.Config{}).ServeHTTP(rec, httptest.NewRequest("GET", name, nil))
		body := rec.Body.String()
		for _, bad := range []string{"http://", "https://", "//cdn"} {
			for _, line := range strings.Split(body, "\n") {
				if strings.Contains(line, bad) && !strings.Contains(line, "http://www.w3.org/2000/svg") && !strings.Contains(line, "tcp://") {
					t.Errorf("%s refers to another origin: %s", name, strings.TrimSpace(line))
				}
			}
		}
	}
}
