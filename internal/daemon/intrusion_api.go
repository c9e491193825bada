package daemon

import (
	"context"
	"slices"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/intrusion"
)

// intrusionAPI serves /api/v1/intrusion; nil when intrusion is off.
func (d *Daemon) intrusionAPI() api.Intrusion {
	if d.intrusion == nil {
		return nil
	}
	return intrusionAdapter{d.intrusion}
}

// intrusionAdapter tells the API the state of detection and its top sources.
type intrusionAdapter struct{ w *intrusionWiring }

var _ api.Intrusion = intrusionAdapter{}

func (a intrusionAdapter) IntrusionState(ctx context.Context, top int) (api.IntrusionState, error) {
	w := a.w
	st := api.IntrusionState{Enabled: true, DryRun: w.banner.DryRun(), Events: w.source.Events(), Lost: w.source.Lost(),
		Sources: w.guard.Sources(), ActiveBans: int(w.activeBans.Load())}
	w.mu.Lock()
	ctErr, nftErr := w.conntrackErr, w.nftablesErr
	w.mu.Unlock()
	st.Conntrack = api.IntrusionPart{Available: w.conntrackUp.Load()}
	if !st.Conntrack.Available {
		st.Conntrack.Reason = ctErr
		if ctErr == "" {
			st.Conntrack.Reason = "not connected yet"
		}
	}
	st.Nftables = api.IntrusionPart{Available: w.nftablesUp.Load(), Reason: nftErr}
	found := w.guard.Found()
	for _, k := range []string{intrusion.KindFastScan, intrusion.KindSlowScan, intrusion.KindHalfOpen, intrusion.KindBruteForce} {
		class := intrusion.ClassScan
		if k == intrusion.KindBruteForce {
			class = intrusion.ClassBruteForce
		}
		st.Scans = append(st.Scans, api.ScanCount{Class: class, Kind: k, Count: found[k]})
	}
	bans, err := w.banner.List(ctx)
	if err != nil {
		return api.IntrusionState{}, err
	}
	now := w.d.clock.Now()
	var banned []string
	for _, b := range bans {
		if b.Active(now) {
			banned = append(banned, b.Addr)
		}
	}
	st.Allowlist = []api.AllowEntry{}
	for _, r := range w.banner.Allowlist().Rules() {
		st.Allowlist = append(st.Allowlist, api.AllowEntry{Prefix: r.Prefix.String(), Source: r.Rule})
	}
	for _, s := range w.guard.Top(top) {
		st.Top = append(st.Top, api.TopSource{Source: s.Source.String(), Score: s.Score, DistinctPorts: s.DistinctPorts,
			DistinctHosts: s.DistinctHosts, NewFlows: s.NewFlows, Refused: s.Refused, HalfOpen: s.HalfOpen, Attempts: s.Attempts,
			FirstSeen: s.FirstSeen, LastSeen: s.LastSeen, Found: s.Found, Banned: slices.Contains(banned, s.Source.String())})
	}
	return st, nil
}
