package api

import (
	"context"
	"net/http"
	"time"
)

// Cluster reports cluster mode's state as this member sees it.
type Cluster interface {
	ClusterStatus(ctx context.Context) ClusterStatus
}

// ClusterStatus is the state of the cluster this member belongs to: its members with
// the targets each owns, the alerting leader with its fencing token, and the results
// waiting in the stream.
type ClusterStatus struct {
	Self      string          `json:"self"`
	Location  string          `json:"location"`
	Connected bool            `json:"connected"`
	Leader    string          `json:"leader"`
	Leading   bool            `json:"leading"`
	Token     uint64          `json:"token"`
	Epoch     uint64          `json:"epoch"`
	Lag       uint64          `json:"lag"`
	Buffered  int             `json:"buffered"`
	Dropped   uint64          `json:"dropped"`
	Published uint64          `json:"published"`
	Fenced    uint64          `json:"fenced"`
	Targets   int             `json:"targets"`
	Members   []ClusterMember `json:"members"`
	Locations []string        `json:"locations"`
}

// ClusterMember is one live member: serve or agent, where it probes from, and how many
// of this member's known targets it owns.
type ClusterMember struct {
	ID       string    `json:"id"`
	Location string    `json:"location"`
	Role     string    `json:"role"`
	Version  string    `json:"version,omitempty"`
	Capacity int       `json:"capacity,omitempty"`
	Started  time.Time `json:"started"`
	Owned    int       `json:"owned"`
	Leader   bool      `json:"leader,omitempty"`
}

func (s *Server) clusterRoutes() []route {
	return []route{{"GET", "/api/v1/cluster", RoleViewer, s.clusterStatus}}
}

func (s *Server) clusterStatus(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.Cluster == nil {
		unavailable(w, "cluster mode (cluster.url is not set)")
		return
	}
	writeJSON(w, http.StatusOK, s.cfg.Cluster.ClusterStatus(r.Context()))
}
