package api

import (
	"context"
	"net/http"
	"net/netip"
	"time"
)

// Bans lists, sets and lifts the bans of intrusion detection.
type Bans interface {
	// ListBans returns every ban kept, active or ended, ordered by address.
	ListBans(ctx context.Context) ([]Ban, error)
	// AddBan bans addr for d (0: the configured ban time, doubled on recurrence) by
	// hand. An allowlisted address is refused with ErrConflict naming the rule that
	// protects it.
	AddBan(ctx context.Context, addr netip.Addr, d time.Duration, reason, by string) (Ban, error)
	// RemoveBan lifts the ban of addr by hand.
	RemoveBan(ctx context.Context, addr netip.Addr, reason, by string) error
}

// Ban is one address's latest ban. Active is false once it expired or was lifted,
// and for a dry-run ban (decided, never enforced).
type Ban struct {
	Addr     string     `json:"addr"`
	Active   bool       `json:"active"`
	DryRun   bool       `json:"dry_run"`
	Kind     string     `json:"kind"`
	Reason   string     `json:"reason"`
	Actor    string     `json:"actor"`
	Created  time.Time  `json:"created"`
	Expires  time.Time  `json:"expires"`
	Duration string     `json:"duration"`
	Count    int        `json:"count"`
	Lifted   *time.Time `json:"lifted,omitempty"`
	LiftedBy string     `json:"lifted_by,omitempty"`
}

type banList struct {
	Bans []Ban `json:"bans"`
}

// BanRequest is the body of POST /api/v1/bans.
type BanRequest struct {
	Addr string `json:"addr"`
	// Duration is a Go duration ("30m", "24h"); empty means the configured ban time.
	Duration string `json:"duration,omitempty"`
	Reason   string `json:"reason"`
}

func (s *Server) banRoutes() []route {
	return []route{
		{"GET", "/api/v1/bans", RoleViewer, s.listBans},
		{"POST", "/api/v1/bans", RoleOperator, s.addBan},
		{"DELETE", "/api/v1/bans/{addr}", RoleOperator, s.removeBan},
	}
}

const bansOff = "bans (intrusion.enabled is false)"

func (s *Server) listBans(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.Bans == nil {
		unavailable(w, bansOff)
		return
	}
	bs, err := s.cfg.Bans.ListBans(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if bs == nil {
		bs = []Ban{}
	}
	writeJSON(w, http.StatusOK, banList{Bans: bs})
}

func (s *Server) addBan(w http.ResponseWriter, r *http.Request, who Identity) {
	if s.cfg.Bans == nil {
		unavailable(w, bansOff)
		return
	}
	var req BanRequest
	if bad := s.decodeBody(w, r, &req, false); bad != nil {
		writeBad(w, bad)
		return
	}
	addr, err := netip.ParseAddr(req.Addr)
	if err != nil {
		writeBad(w, badField("addr", "%q is not an IP address (want e.g. 203.0.113.7 or 2001:db8::7)", req.Addr))
		return
	}
	var d time.Duration
	if req.Duration != "" {
		if d, err = time.ParseDuration(req.Duration); err != nil || d <= 0 {
			writeBad(w, badField("duration", "%q is not a positive duration (want e.g. 30m or 24h)", req.Duration))
			return
		}
	}
	if req.Reason == "" {
		writeBad(w, badField("reason", "required: say why, it goes to the audit log"))
		return
	}
	b, err := s.cfg.Bans.AddBan(r.Context(), addr, d, req.Reason, who.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.Info("ban set by hand", "addr", addr, "by", who.Name, "token", who.TokenID)
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) removeBan(w http.ResponseWriter, r *http.Request, who Identity) {
	if s.cfg.Bans == nil {
		unavailable(w, bansOff)
		return
	}
	addr, err := netip.ParseAddr(r.PathValue("addr"))
	if err != nil {
		writeBad(w, badField("addr", "%q is not an IP address", r.PathValue("addr")))
		return
	}
	reason := r.URL.Query().Get("reason")
	if reason == "" {
		reason = "lifted by hand"
	}
	if err := s.cfg.Bans.RemoveBan(r.Context(), addr, reason, who.Name); err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.Info("ban lifted by hand", "addr", addr, "by", who.Name, "token", who.TokenID)
	writeJSON(w, http.StatusOK, map[string]string{"lifted": addr.String()})
}
