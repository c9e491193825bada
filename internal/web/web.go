// Package web serves portpatrol's dashboard: static HTML, CSS and JavaScript modules
// embedded in the binary, with no build step and nothing fetched from elsewhere. The
// pages read the JSON API (internal/api) and follow its event stream.
package web

import (
	"bytes"
	"embed"
	"html"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// Config says where the dashboard finds the API. The zero value means the defaults.
type Config struct {
	// APIBase is the URL path of the API as the browser sees it; default "/api/v1".
	APIBase string
}

// Handler serves the dashboard. Mount it at the root or under a prefix with
// http.StripPrefix: its pages refer to their assets by relative URLs. Build it with
// New; it is safe for concurrent use.
type Handler struct {
	files fs.FS
	index []byte
	mod   time.Time
}

var _ http.Handler = (*Handler)(nil)

// New builds a Handler.
func New(cfg Config) *Handler {
	if cfg.APIBase == "" {
		cfg.APIBase = "/api/v1"
	}
	files, err := fs.Sub(assets, "assets")
	if err != nil {
		panic("web: embedded assets missing: " + err.Error()) // the embed directive guarantees the directory
	}
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		panic("web: embedded index.html missing: " + err.Error())
	}
	index = bytes.ReplaceAll(index, []byte("{{API_BASE}}"), []byte(html.EscapeString(strings.TrimSuffix(cfg.APIBase, "/"))))
	return &Handler{files: files, index: index, mod: time.Now()}
}

// csp allows only what the dashboard itself serves: no inline scripts, no other origin.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" || name == "index.html" {
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "index.html", h.mod, bytes.NewReader(h.index))
		return
	}
	b, err := fs.ReadFile(h.files, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	switch path.Ext(name) {
	case ".js":
		hd.Set("Content-Type", "text/javascript; charset=utf-8")
	case ".css":
		hd.Set("Content-Type", "text/css; charset=utf-8")
	case ".svg":
		hd.Set("Content-Type", "image/svg+xml")
	}
	hd.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, h.mod, bytes.NewReader(b))
}
