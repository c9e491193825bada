// Package api is portpatrol's HTTP JSON API, versioned under /api/v1 and described by
// the OpenAPI document it serves at /api/v1/openapi.json. It reads and writes through
// small interfaces (Targets, History, Alerts, AlertActions, Silences, Windows,
// Deliveries, Audits, Tokens, TokenAdmin) that cmd/portpatrol adapts the store and the engines
// to, and streams state changes from a Broker as server-sent events.
//
// Every request but the OpenAPI document needs a bearer token whose role allows the
// route: viewer < operator (ack, resolve, silence) < admin (tokens). Anonymous reads
// may be allowed from loopback peers only.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Config is what a Server works with. The zero value serves a valid API in which every
// route that needs a missing dependency answers 501.
type Config struct {
	Targets      Targets
	History      History
	Alerts       Alerts
	AlertActions AlertActions
	Silences     Silences
	Windows      Windows
	Deliveries   Deliveries
	Audits       Audits
	Tokens       Tokens
	TokenAdmin   TokenAdmin
	StatusNotes  StatusNotes
	// Learned serves /api/v1/learned; nil answers 501.
	Learned Learned
	// Capacity serves /api/v1/capacity; nil answers 501.
	Capacity Capacity
	// Cluster serves /api/v1/cluster; nil answers 501.
	Cluster Cluster
	// Bands adds the learned latency band to target histories; nil adds none.
	Bands Bands
	// Automation serves /api/v1/automation; nil answers 501.
	Automation Automation
	// Bans serves /api/v1/bans; nil answers 501.
	Bans Bans
	// Intrusion serves /api/v1/intrusion; nil answers 501.
	Intrusion Intrusion
	// Broker feeds GET /api/v1/events; nil means a stream that only sends heartbeats.
	Broker *Broker

	// AnonymousRead lets requests without a token read (viewer role, GET only) when
	// they come from a loopback address.
	AnonymousRead bool
	// TokenStore describes where tokens are looked up ("sqlite:/var/lib/…/portpatrol.db"),
	// so that an unknown token's answer says which store was read; never a password.
	TokenStore string
	// MaxBodyBytes limits request bodies; default 64 KiB.
	MaxBodyBytes int64
	// RecentResults is how many results the target view includes; default 20.
	RecentResults int
	// Heartbeat is the interval of SSE heartbeat comments; default 15s.
	Heartbeat time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives internal errors; nil discards them.
	Logger *slog.Logger
}

// Server serves the API. Build it with New; it is safe for concurrent use.
type Server struct {
	cfg    Config
	mux    *http.ServeMux
	routes []route
}

var _ http.Handler = (*Server)(nil)

// route is one registered endpoint and the role it needs; an empty role means public.
type route struct {
	method, path string
	role         Role
	h            func(w http.ResponseWriter, r *http.Request, who Identity)
}

// Prefix is where the API lives: mount the Server at it, e.g. mux.Handle(api.Prefix, srv).
const Prefix = "/api/v1/"

// New builds a Server.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.RecentResults <= 0 {
		cfg.RecentResults = 20
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.routes = []route{
		{"GET", "/api/v1/openapi.json", "", s.openapi},
		{"GET", "/api/v1/whoami", RoleViewer, s.whoami},
		{"GET", "/api/v1/targets", RoleViewer, s.listTargets},
		{"GET", "/api/v1/targets/history", RoleViewer, s.history},
		{"GET", "/api/v1/targets/{id}", RoleViewer, s.getTarget},
		{"GET", "/api/v1/alerts", RoleViewer, s.listAlerts},
		{"GET", "/api/v1/alerts/{id}", RoleViewer, s.getAlert},
		{"POST", "/api/v1/alerts/{id}/ack", RoleOperator, s.ackAlert},
		{"POST", "/api/v1/alerts/{id}/resolve", RoleOperator, s.resolveAlert},
		{"GET", "/api/v1/silences", RoleViewer, s.listSilences},
		{"POST", "/api/v1/silences", RoleOperator, s.createSilence},
		{"POST", "/api/v1/silences/{id}/expire", RoleOperator, s.expireSilence},
		{"DELETE", "/api/v1/silences/{id}", RoleOperator, s.expireSilence},
		{"GET", "/api/v1/maintenance", RoleViewer, s.listWindows},
		{"GET", "/api/v1/deliveries", RoleViewer, s.listDeliveries},
		{"GET", "/api/v1/audits", RoleViewer, s.listAudits},
		{"GET", "/api/v1/status/notes", RoleViewer, s.listNotes},
		{"POST", "/api/v1/status/notes", RoleOperator, s.addNote},
		{"DELETE", "/api/v1/status/notes/{id}", RoleOperator, s.deleteNote},
		{"GET", "/api/v1/events", RoleViewer, s.events},
		{"GET", "/api/v1/tokens", RoleAdmin, s.listTokens},
		{"POST", "/api/v1/tokens", RoleAdmin, s.createToken},
		{"DELETE", "/api/v1/tokens/{id}", RoleAdmin, s.revokeToken},
	}
	s.routes = append(s.routes, s.learnedRoutes()...)
	s.routes = append(s.routes, s.capacityRoutes()...)
	s.routes = append(s.routes, s.clusterRoutes()...)
	s.routes = append(s.routes, s.automationRoutes()...)
	s.routes = append(s.routes, s.banRoutes()...)
	s.routes = append(s.routes, s.intrusionRoutes()...)
	for _, rt := range s.routes {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	s.mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		// The mux's own 404 and 405 answers are plain text; keep the API's JSON.
		if allow := methodsFor(s.routes, r); allow != "" {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; use %s", r.Method, r.URL.Path, allow))
			return
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s; see /api/v1/openapi.json", r.Method, r.URL.Path))
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// methodsFor returns the methods registered for r's path, comma-separated.
func methodsFor(routes []route, r *http.Request) string {
	var out string
	for _, m := range []string{"GET", "POST", "DELETE"} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		var mux http.ServeMux
		for _, rt := range routes {
			if rt.method == m {
				mux.Handle(rt.method+" "+rt.path, http.NotFoundHandler())
			}
		}
		if _, p := mux.Handler(probe); p != "" {
			if out != "" {
				out += ", "
			}
			out += m
		}
	}
	return out
}

// wrap authenticates and authorises before calling the route's handler.
func (s *Server) wrap(rt route) http.Handler {
	return s.guard(rt.role, true, rt.h)
}

// RequireToken returns a handler that calls h only for a request whose bearer token
// has the role need or above, answering 401 or 403 as the API's own routes do. Unlike
// those routes it never admits the anonymous loopback reader: it guards endpoints
// outside the API, such as /-/reload and /metrics, that the configuration says need a
// token.
func (s *Server) RequireToken(need Role, h func(w http.ResponseWriter, r *http.Request, who Identity)) http.Handler {
	return s.guard(need, false, h)
}

// guard authenticates and authorises r for need (nothing when need is empty) before
// calling h; allowAnonymous says whether the anonymous loopback reader may pass.
func (s *Server) guard(need Role, allowAnonymous bool, h func(w http.ResponseWriter, r *http.Request, who Identity)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		var who Identity
		if need != "" {
			var err error
			who, err = s.authenticate(r, need, allowAnonymous)
			if err != nil {
				var ae *authError
				if !errors.As(err, &ae) {
					s.internal(w, r, err)
					return
				}
				if ae.status == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer realm="portpatrol"`)
				}
				writeJSON(w, ae.status, errorBody{Error: ae.msg, RequiredRole: ae.need, Role: ae.have})
				return
			}
		}
		h(w, r, who)
	})
}

// errorBody is every error the API returns.
type errorBody struct {
	Error        string `json:"error"`
	RequiredRole Role   `json:"required_role,omitempty"`
	Role         Role   `json:"role,omitempty"`
	Field        string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError answers an error. The message may quote a request's input, so any URL
// password in it is hidden: a target ID given with one is echoed without it.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: patrol.RedactPasswords(msg)})
}

// fail answers with the status an error from a dependency calls for.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		s.internal(w, r, err)
	}
}

// internal logs err and answers 500 without its text, which may name internals.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.cfg.Logger.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", patrol.RedactPasswords(err.Error()))
	writeError(w, http.StatusInternalServerError, "internal error; the server log has the details")
}

// unavailable answers 501 for a route whose dependency is not configured.
func unavailable(w http.ResponseWriter, what string) {
	writeError(w, http.StatusNotImplemented, what+" is not available on this server")
}

func (s *Server) whoami(w http.ResponseWriter, _ *http.Request, who Identity) {
	writeJSON(w, http.StatusOK, who)
}
