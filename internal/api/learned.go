package api

import (
	"context"
	"net/http"
	"time"
)

// Learned reads and forgets the listeners the host watch learns.
type Learned interface {
	// LearnedListeners returns every listener the host watch knows but the ignored
	// ones, sorted by protocol and address.
	LearnedListeners(ctx context.Context) ([]LearnedListener, error)
	// ForgetLearned forgets the learned listener at addr ("127.0.0.1:1883",
	// "udp://127.0.0.1:53") and returns the addresses forgotten; ErrNotFound when it
	// is not learned, ErrInvalid when addr is not an address.
	ForgetLearned(ctx context.Context, addr string) ([]string, error)
	// ForgetGoneLearned forgets every learned listener that is gone or retired, and
	// returns their addresses.
	ForgetGoneLearned(ctx context.Context) ([]string, error)
}

// LearnedListener is one listener of the host watch. State is "learning" (probed, not
// yet paging; learned at LearnAt), "learned", "gone" (it pages; retired at ForgetAt
// once its process exited and was not restarted) or "retired" (no longer probed,
// never pages). TargetID is its probe target in /api/v1/targets.
type LearnedListener struct {
	Addr      string     `json:"addr"`
	Port      int        `json:"port"`
	Process   string     `json:"process"`
	PID       int        `json:"pid"`
	State     string     `json:"state"`
	FirstSeen time.Time  `json:"first_seen"`
	LearnedAt *time.Time `json:"learned_at"`
	GoneSince *time.Time `json:"gone_since"`
	LearnAt   *time.Time `json:"learn_at"`
	ForgetAt  *time.Time `json:"forget_at"`
	TargetID  string     `json:"target_id"`
	// Fate is what became of a gone listener's process: "running", "restarting" or
	// "exited"; Muted says its alert was resolved by hand while it was gone.
	Fate  string `json:"fate,omitempty"`
	Muted bool   `json:"muted,omitempty"`
}

type learnedList struct {
	Listeners []LearnedListener `json:"listeners"`
}

type forgottenList struct {
	Forgotten []string `json:"forgotten"`
}

// learnedRoutes are the routes of the learned listeners.
func (s *Server) learnedRoutes() []route {
	return []route{
		{"GET", "/api/v1/learned", RoleViewer, s.listLearned},
		{"DELETE", "/api/v1/learned/{addr}", RoleOperator, s.forgetLearned},
		{"POST", "/api/v1/learned/forget", RoleOperator, s.forgetGoneLearned},
	}
}

func (s *Server) listLearned(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.Learned == nil {
		unavailable(w, "learned listeners (the host watch is disabled)")
		return
	}
	ls, err := s.cfg.Learned.LearnedListeners(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ls == nil {
		ls = []LearnedListener{}
	}
	writeJSON(w, http.StatusOK, learnedList{Listeners: ls})
}

func (s *Server) forgetLearned(w http.ResponseWriter, r *http.Request, who Identity) {
	if s.cfg.Learned == nil {
		unavailable(w, "learned listeners (the host watch is disabled)")
		return
	}
	addr := r.PathValue("addr")
	out, err := s.cfg.Learned.ForgetLearned(r.Context(), addr)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.Info("learned listener forgotten", "addr", addr, "by", who.Name, "token", who.TokenID)
	writeJSON(w, http.StatusOK, forgottenList{Forgotten: nonNil(out)})
}

func (s *Server) forgetGoneLearned(w http.ResponseWriter, r *http.Request, who Identity) {
	if s.cfg.Learned == nil {
		unavailable(w, "learned listeners (the host watch is disabled)")
		return
	}
	if g := r.URL.Query().Get("gone"); g != "true" {
		writeBad(w, badField("gone", "%q: want gone=true, to forget every learned listener that is gone or retired; forget one with DELETE /api/v1/learned/{addr}", g))
		return
	}
	out, err := s.cfg.Learned.ForgetGoneLearned(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.Info("gone learned listeners forgotten", "count", len(out), "by", who.Name, "token", who.TokenID)
	writeJSON(w, http.StatusOK, forgottenList{Forgotten: nonNil(out)})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
