package api

import (
	"net/http"
	"slices"
	"strconv"
)

type windowList struct {
	Windows []Window `json:"windows"`
}

func (s *Server) listWindows(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.Windows == nil {
		unavailable(w, "maintenance windows")
		return
	}
	ws, err := s.cfg.Windows.MaintenanceWindows(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ws == nil {
		ws = []Window{}
	}
	writeJSON(w, http.StatusOK, windowList{Windows: ws})
}

type auditList struct {
	Audits []AuditReport `json:"audits"`
}

// listAudits answers GET /api/v1/audits: the latest report of each scheduled audit.
func (s *Server) listAudits(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.Audits == nil {
		unavailable(w, "scheduled audits")
		return
	}
	as, err := s.cfg.Audits.LatestAudits(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Lists are arrays, never null; copies, since the reports are the caller's.
	out := make([]AuditReport, len(as))
	for i, a := range as {
		a.Hosts = slices.Clone(a.Hosts)
		if a.Hosts == nil {
			a.Hosts = []AuditHost{}
		}
		if a.Findings == nil {
			a.Findings = []AuditFinding{}
		}
		for j := range a.Hosts {
			if a.Hosts[j].Open == nil {
				a.Hosts[j].Open = []AuditOpenPort{}
			}
		}
		out[i] = a
	}
	writeJSON(w, http.StatusOK, auditList{Audits: out})
}

var deliveryStates = []string{"pending", "delivered", "failed", "expired"}

type deliveryList struct {
	Deliveries []Delivery `json:"deliveries"`
	// NextAfter is the after= value of the next page; zero when this page is the last.
	NextAfter int64 `json:"next_after,omitempty"`
}

// listDeliveries answers GET /api/v1/deliveries[?receiver=&state=&since=&after=&limit=].
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.Deliveries == nil {
		unavailable(w, "notification deliveries")
		return
	}
	q := r.URL.Query()
	f := DeliveryFilter{Receiver: q.Get("receiver"), Limit: 100}
	for _, st := range q["state"] {
		if !slices.Contains(deliveryStates, st) {
			writeBad(w, badField("state", "%q: want pending, delivered, failed or expired", st))
			return
		}
		f.States = append(f.States, st)
	}
	if v := q.Get("since"); v != "" {
		t, bad := parseTime("since", v)
		if bad != nil {
			writeBad(w, bad)
			return
		}
		f.Since = t
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeBad(w, badField("after", "%q: want a delivery seq (an integer ≥ 0)", v))
			return
		}
		f.AfterSeq = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeBad(w, badField("limit", "%q: want an integer from 1 to 1000", v))
			return
		}
		f.Limit = n
	}
	ds, err := s.cfg.Deliveries.ListDeliveries(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := deliveryList{Deliveries: ds}
	if out.Deliveries == nil {
		out.Deliveries = []Delivery{}
	}
	if len(ds) == f.Limit {
		out.NextAfter = ds[len(ds)-1].Seq
	}
	writeJSON(w, http.StatusOK, out)
}

type tokenList struct {
	Tokens []TokenInfo `json:"tokens"`
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.TokenAdmin == nil {
		unavailable(w, "token management")
		return
	}
	ts, err := s.cfg.TokenAdmin.ListTokens(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ts == nil {
		ts = []TokenInfo{}
	}
	writeJSON(w, http.StatusOK, tokenList{Tokens: ts})
}

type tokenRequest struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

type createdToken struct {
	TokenInfo
	// Secret is shown once; only its hash is kept.
	Secret string `json:"secret"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, who Identity) {
	if s.cfg.TokenAdmin == nil {
		unavailable(w, "token management")
		return
	}
	var req tokenRequest
	if bad := s.decodeBody(w, r, &req, false); bad != nil {
		writeBad(w, bad)
		return
	}
	if req.Name == "" || len(req.Name) > 100 {
		writeBad(w, badField("name", "required, at most 100 characters"))
		return
	}
	if !req.Role.Valid() {
		writeBad(w, badField("role", "%q: want viewer, operator or admin", req.Role))
		return
	}
	info, secret, err := s.cfg.TokenAdmin.CreateToken(r.Context(), req.Name, req.Role, who.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.Info("token created", "token", info.ID, "name", info.Name, "role", info.Role, "by", who.Name)
	writeJSON(w, http.StatusCreated, createdToken{TokenInfo: info, Secret: secret})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, who Identity) {
	if s.cfg.TokenAdmin == nil {
		unavailable(w, "token management")
		return
	}
	id := r.PathValue("id")
	if err := s.cfg.TokenAdmin.RevokeToken(r.Context(), id, who.Name); err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.Info("token revoked", "token", id, "by", who.Name)
	writeJSON(w, http.StatusOK, map[string]string{"id": id, "revoked_by": who.Name})
}
