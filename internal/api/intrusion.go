package api

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// Intrusion tells the state of intrusion detection.
type Intrusion interface {
	// IntrusionState returns the state with the top tracked sources, at most top of them.
	IntrusionState(ctx context.Context, top int) (IntrusionState, error)
}

// IntrusionState is what GET /api/v1/intrusion answers: whether detection runs and
// can read and enforce, what it has seen and the sources it follows now.
type IntrusionState struct {
	Enabled bool `json:"enabled"`
	// DryRun is true while bans are decided and recorded, never enforced.
	DryRun    bool          `json:"dry_run"`
	Conntrack IntrusionPart `json:"conntrack"`
	Nftables  IntrusionPart `json:"nftables"`
	// Events are the conntrack events read; Lost the times the kernel dropped some.
	Events     uint64      `json:"events"`
	Lost       uint64      `json:"lost"`
	Sources    int         `json:"sources"`
	ActiveBans int         `json:"active_bans"`
	Scans      []ScanCount `json:"scans"`
	Top        []TopSource `json:"top"`
	// Allowlist are the ranges never tracked and never banned, with the rule that
	// protects each.
	Allowlist []AllowEntry `json:"allowlist"`
}

// AllowEntry is one allowlisted range and the rule that puts it there
// ("loopback", "intrusion.allowlist[0] 10.0.0.0/8 at pp.yaml:9", "kubernetes node n1").
type AllowEntry struct {
	Prefix string `json:"prefix"`
	Source string `json:"source"`
}

// IntrusionPart is one part intrusion detection needs; Reason says why it cannot be used.
type IntrusionPart struct {
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
}

// ScanCount is how many findings one detector made since the start.
type ScanCount struct {
	Class string `json:"class"`
	Kind  string `json:"kind"`
	Count uint64 `json:"count"`
}

// TopSource is one tracked source with its score (distinct ports plus failed flows
// plus short connections to authentication ports).
type TopSource struct {
	Source        string    `json:"source"`
	Score         int       `json:"score"`
	DistinctPorts int       `json:"distinct_ports"`
	DistinctHosts int       `json:"distinct_hosts"`
	NewFlows      int       `json:"new_flows"`
	Refused       int       `json:"refused"`
	HalfOpen      int       `json:"half_open"`
	Attempts      int       `json:"attempts"`
	FirstSeen     time.Time `json:"first_seen"`
	LastSeen      time.Time `json:"last_seen"`
	Found         []string  `json:"found"`
	Banned        bool      `json:"banned"`
}

// MaxTopSources is the most sources GET /api/v1/intrusion returns.
const MaxTopSources = 500

func (s *Server) intrusionRoutes() []route {
	return []route{{"GET", "/api/v1/intrusion", RoleViewer, s.intrusionState}}
}

func (s *Server) intrusionState(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.Intrusion == nil {
		unavailable(w, "intrusion detection (intrusion.enabled is false)")
		return
	}
	top := 50
	if v := r.URL.Query().Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxTopSources {
			writeBad(w, badField("top", "%q is not a number of sources between 0 and %d", v, MaxTopSources))
			return
		}
		top = n
	}
	st, err := s.cfg.Intrusion.IntrusionState(r.Context(), top)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if st.Scans == nil {
		st.Scans = []ScanCount{}
	}
	if st.Top == nil {
		st.Top = []TopSource{}
	}
	if st.Allowlist == nil {
		st.Allowlist = []AllowEntry{}
	}
	for i := range st.Top {
		if st.Top[i].Found == nil {
			st.Top[i].Found = []string{}
		}
	}
	writeJSON(w, http.StatusOK, st)
}
