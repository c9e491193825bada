package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/cluster"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/schedule"
)

// RulePartialUnreachable names the finding raised when a minority of a target's
// locations cannot reach it: the target is up for the quorum, so no P0 is raised, but
// the vantage points that fail are named.
const RulePartialUnreachable = "unreachable_partial"

// partialSeverity is the partial-unreachability finding's severity: below the P0 of an
// outage the quorum agrees on, since a probe's own network failing looks the same.
const partialSeverity = "P2"

// takeoverSoon is the part of its interval within which a target taken over from
// another member is first probed.
const takeoverSoon = 4

// partialGrace is how many of a target's intervals a minority of its locations must
// see it down before the partial finding is raised.
const partialGrace = 3

// clusterWiring is cluster mode: this member probes its share of the targets (by
// rendezvous hashing over the live members of its location), sends every result to
// the cluster's stream, and, while it holds the alerting lease, reads the stream,
// fences off results from members that do not own their target, merges the locations'
// verdicts by quorum and feeds the alert engine.
type clusterWiring struct {
	d    *Daemon
	node *cluster.Node
	// places are the placements of every target this member knows (configured and
	// discovered), by ID, as of the last plan.
	places atomic.Pointer[map[string]placement]
	// mu guards seen and partial, the leader's merge state.
	mu      sync.Mutex
	seen    map[string]map[string]seenResult // target → location → its latest verdict
	partial map[string]string                // targets with an active partial finding → its summary
	// minority maps the targets a minority of locations sees down to when that began:
	// the partial finding waits partialGrace intervals, since locations that all lose
	// a target see it go down a moment apart.
	minority map[string]time.Time
	fenced   atomic.Uint64 // results refused: their sender did not own the target
	// ownedMu guards ownedFor, the owned counts of status as of a plan and an epoch.
	ownedMu  sync.Mutex
	ownedFor struct {
		places *map[string]placement
		epoch  uint64
		counts map[string]int
	}
	// owned are the targets this member probed as of the last plan it committed (nil
	// before the first): a target new to it after that was taken over. Under d.mu.
	owned map[string]bool
	// judgeFrom is the stream's last sequence when this member began leading: results
	// up to it are not judged again.
	judgeFrom atomic.Uint64
}

// placement is where a target must be watched from and how many locations must agree
// that it is down.
type placement struct {
	locations  []string // nil: every location with a member that can probe it
	quorum     int      // 0: a majority
	interval   time.Duration
	host       string
	labels     map[string]string
	discovered bool // discovered by serve members (Kubernetes): agents do not probe it
}

// seenResult is one location's latest verdict on a target, as the leader received it.
type seenResult struct {
	status   patrol.Status
	flapping bool
	result   patrol.Result
	member   string
	at       time.Time // the leader's clock when it arrived: members' clocks never count
	seq      uint64    // its position in the stream
}

// overrideCluster applies the non-zero URL, Name and Location of o to cfg's cluster
// section, checking the names as the file's are checked.
func overrideCluster(cfg *config.Config, o config.Cluster) error {
	for _, f := range []struct{ flag, v string }{{"--name", o.Name}, {"--location", o.Location}} {
		if f.v == "" {
			continue
		}
		if msg := config.CheckClusterName(f.v); msg != "" {
			return fmt.Errorf("%s %s", f.flag, msg)
		}
	}
	if (o.Name != "" || o.Location != "") && o.URL == "" && cfg.Cluster.URL == "" {
		return fmt.Errorf("--name and --location need cluster mode: give --cluster nats://HOST:4222 or cluster.url in the file")
	}
	if o.URL != "" {
		cfg.Cluster.URL = o.URL
	}
	if o.Name != "" {
		cfg.Cluster.Name = o.Name
	}
	if o.Location != "" {
		cfg.Cluster.Location = o.Location
	}
	return nil
}

// ClusterConfig turns the configuration's cluster section into the member's settings.
func ClusterConfig(c config.Cluster, role, version string) cluster.Config {
	c = c.WithDefaults()
	return cluster.Config{URL: c.URL, Name: c.Name, Location: c.Location, Role: role, Heartbeat: c.Heartbeat,
		TTL: c.TTL, Prefix: c.Prefix, Replicas: c.Replicas, Buffer: c.Buffer, Version: version}
}

func newClusterWiring(d *Daemon, cfg *config.Config, version string) (*clusterWiring, error) {
	if d.kube != nil && d.kube.leaderElection() {
		return nil, fmt.Errorf("cluster: cluster mode and kubernetes.leader_election both elect the alerting leader; set kubernetes.leader_election: false")
	}
	cc := ClusterConfig(cfg.Cluster, "serve", version)
	cc.Logger = d.logger.With("component", "cluster")
	node, err := cluster.Join(d.ctx, cc)
	if err != nil {
		return nil, err
	}
	w := &clusterWiring{d: d, node: node, seen: map[string]map[string]seenResult{}, partial: map[string]string{},
		minority: map[string]time.Time{}}
	empty := map[string]placement{}
	w.places.Store(&empty)
	d.metrics.Registry.MustRegister(node.Collector())
	d.logger.Info("cluster mode: joining", "member", node.ID(), "location", node.Location(), "nats", cc.URL)
	return w, nil
}

// run follows membership (a change re-plans this member's share), and campaigns for
// the alerting lease.
func (w *clusterWiring) run(ctx context.Context) {
	w.d.follow(ctx, w.node.Changes())
	w.d.spawn(func() {
		w.node.Lead(ctx, w.lead)
	})
}

// lead is one term as the alerting leader: the engine is rebuilt from the shared store
// (it carries the previous leader's incidents), agents get the targets, and the stream
// is read from the position the previous leader acknowledged, until ctx ends with the
// lease.
func (w *clusterWiring) lead(ctx context.Context, token uint64) {
	w.mu.Lock()
	clear(w.seen)
	clear(w.partial)
	clear(w.minority)
	w.mu.Unlock()
	if !w.d.takeLead(ctx) {
		return
	}
	// The moment the lease is lost this member stops alerting: no tick, save or send
	// of its engine may land after a successor has loaded the store. What it observed
	// since its last tick is not saved on the way out (the successor judges the same
	// targets from fresh results), unlike a Kubernetes step-down, whose Lease outlives
	// the flush.
	stop := context.AfterFunc(ctx, func() { w.d.leading.Store(false) })
	defer stop()
	w.d.logger.Info("cluster: alerting leader", "member", w.node.ID(), "token", token)
	w.publishTargets(ctx)
	// Results already in the stream were the previous leader's to judge: read again
	// now (those it had not acknowledged), they would reopen incidents it resolved. Every
	// target is probed again within its interval, so the verdicts come back fresh.
	from, err := w.node.StreamLastSeq(ctx)
	if err != nil {
		w.d.logger.Warn("cluster: the stream's last position is unknown; judging every result not yet acknowledged", "err", err)
	}
	w.judgeFrom.Store(from)
	w.d.logger.Info("cluster: judging results from the stream", "member", w.node.ID(), "after", from)
	err = w.node.Consume(ctx, w.handle)
	if err != nil && ctx.Err() == nil {
		w.d.logger.Error("cluster: reading results stopped", "err", err)
	}
	w.d.leading.Store(false)
	w.d.logger.Info("cluster: following: another member judges the results", "member", w.node.ID())
}

// publishTargets gives the agents the targets: the configuration's defaults, scheduler,
// modules and targets sections as written, and nothing else (no receivers, tokens or
// storage).
func (w *clusterWiring) publishTargets(ctx context.Context) {
	doc, err := AgentDocument(w.d.cfg())
	if err != nil {
		w.d.logger.Warn("cluster: targets for agents", "err", err)
		return
	}
	if err := w.node.PutConfig(ctx, doc); err != nil && ctx.Err() == nil {
		w.d.logger.Warn("cluster: publish targets for agents", "err", err)
	}
}

// agentSections are the sections of a configuration file agents receive.
var agentSections = []string{"defaults", "scheduler", "modules", "targets"}

// AgentDocument is the part of cfg's file that agents probe by: its defaults,
// scheduler, modules and targets sections, re-encoded as YAML. A configuration without
// a file gives an empty document.
func AgentDocument(cfg *config.Config) ([]byte, error) {
	if cfg.File == "" {
		return []byte("{}\n"), nil
	}
	data, err := os.ReadFile(cfg.File)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	out := &yaml.Node{Kind: yaml.MappingNode}
	if len(doc.Content) > 0 && doc.Content[0].Kind == yaml.MappingNode {
		m := doc.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			if slices.Contains(agentSections, m.Content[i].Value) {
				out.Content = append(out.Content, m.Content[i], m.Content[i+1])
			}
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

// share keeps the jobs this member owns, and returns every spec's placement for the
// leader's quorum (commitPlan records them). Host watch targets are this host's own listeners, which another
// member cannot probe or judge: cluster mode leaves them out (plan does not add them).
func (w *clusterWiring) share(specs []jobSpec, configured int, cfg *config.Config) (kept []jobSpec, keptConfigured int, places map[string]placement) {
	places = make(map[string]placement, len(specs))
	members := w.node.Members()
	serve := serveMembers(members)
	self, loc := w.node.ID(), w.node.Location()
	kept = specs[:0:0]
	for i, sp := range specs {
		pl := placement{interval: sp.target.Interval, host: sp.target.Host, labels: sp.target.Labels, discovered: i >= configured}
		if i < configured {
			pl.locations, pl.quorum = cfg.Checks[i].Locations, cfg.Checks[i].Quorum
		}
		if _, dup := places[sp.target.ID]; !dup {
			places[sp.target.ID] = pl
		}
		if pl.locations != nil && !slices.Contains(pl.locations, loc) {
			continue
		}
		ms := members
		if pl.discovered {
			ms = serve
		}
		if cluster.OwnerOf(ms, loc, sp.target.ID) == self {
			if w.owned != nil && !w.owned[sp.target.ID] {
				// Taken over from a member that left or died: probed again soon, not
				// up to an interval later.
				sp.soon = true
			}
			kept = append(kept, sp)
			if i < configured {
				keptConfigured++
			}
		}
	}
	return kept, keptConfigured, places
}

func serveMembers(ms []cluster.Member) []cluster.Member {
	out := make([]cluster.Member, 0, len(ms))
	for _, m := range ms {
		if m.Role != "agent" {
			out = append(out, m)
		}
	}
	return out
}

// publish sends one result of this member's probes to the stream.
func (w *clusterWiring) publish(ev schedule.Event) {
	raw, err := json.Marshal(ev.Result)
	if err != nil {
		w.d.logger.Warn("cluster: encode result", "target", ev.Result.Target, "err", err)
		return
	}
	err = w.node.Publish(cluster.Result{Target: ev.Result.Target, Status: string(ev.Status), Flapping: ev.Flapping,
		Changed: ev.Changed || ev.FlapChanged, Stored: true, Result: raw})
	if err != nil && w.d.ctx.Err() == nil {
		w.d.logger.Warn("cluster: publish result", "target", ev.Result.Target, "err", err)
	}
}

// handle is the leader's reading of one result from the stream. A result whose sender
// does not own its target under the leader's view of the members (a member with a
// stale view, a skewed clock or a share it lost) is refused; a result from an agent,
// which keeps no store, is written to history here.
func (w *clusterWiring) handle(res cluster.Result) error {
	d := w.d
	pl, known := (*w.places.Load())[res.Target]
	if !known || !w.owns(res, pl) {
		w.fenced.Add(1)
		return nil
	}
	var r patrol.Result
	err := json.Unmarshal(res.Result, &r)
	if err != nil {
		w.fenced.Add(1)
		d.logger.Warn("cluster: undecodable result refused", "member", res.Member, "target", res.Target, "err", err)
		return nil
	}
	r.Target = res.Target
	status := patrol.Status(res.Status)
	if !status.Valid() {
		w.fenced.Add(1)
		return nil
	}
	if !res.Stored {
		if err := d.batch.Write(d.ctx, r); err != nil && d.ctx.Err() == nil {
			d.logger.Warn("history write", "target", r.Target, "err", err)
		}
		if res.Changed {
			st := patrol.TargetState{Target: r.Target, Status: status, Flapping: res.Flapping, Since: r.Start, Last: r.Summary(), Labels: pl.labels}
			if err := d.db.PutStates(d.ctx, []patrol.TargetState{st}); err != nil && d.ctx.Err() == nil {
				d.logger.Warn("state write", "target", r.Target, "err", err)
			}
		}
	}
	if res.Seq != 0 && res.Seq <= w.judgeFrom.Load() {
		return nil
	}
	sig, finding := w.merge(res, pl, status, r)
	if finding != nil {
		if err := d.observeFinding(d.ctx, *finding); err != nil && d.ctx.Err() == nil {
			d.logger.Warn("alert engine", "target", r.Target, "err", err)
		}
	}
	if sig == nil || !d.leading.Load() || d.learningTarget(r.Target) {
		d.logger.Debug("cluster: result judged, nothing to observe", "target", r.Target, "member", res.Member, "location", res.Location, "status", status, "seq", res.Seq)
		return nil
	}
	d.logger.Debug("cluster: result judged", "target", r.Target, "member", res.Member, "location", res.Location, "status", status, "verdict", sig.Status, "seq", res.Seq)
	if err := d.withEngine(func(e *alert.Engine) error { return e.Observe(d.ctx, *sig) }); err != nil && d.ctx.Err() == nil {
		return err
	}
	return nil
}

// owns reports whether res's sender owns its target under this member's view.
func (w *clusterWiring) owns(res cluster.Result, pl placement) bool {
	if pl.locations != nil && !slices.Contains(pl.locations, res.Location) {
		return false
	}
	ms := w.node.Members()
	if pl.discovered {
		ms = serveMembers(ms)
	}
	return cluster.OwnerOf(ms, res.Location, res.Target) == res.Member
}

// required returns the locations that must watch a target, and its quorum.
func (w *clusterWiring) required(pl placement) ([]string, int) {
	locs := pl.locations
	if locs == nil {
		ms := w.node.Members()
		if pl.discovered {
			ms = serveMembers(ms)
		}
		for _, m := range ms {
			if !slices.Contains(locs, m.Location) {
				locs = append(locs, m.Location)
			}
		}
		sort.Strings(locs)
	}
	q := pl.quorum
	if q <= 0 {
		q = len(locs)/2 + 1
	}
	return locs, q
}

// merge records res as its location's verdict and judges the target across its
// locations: down when a quorum of them sees it down (the signal carries a down
// result naming them), otherwise as the latest result says, with a partial finding
// while a minority sees it down. It returns the signal for the alert engine (nil when
// there is nothing to observe) and a finding to raise or clear (nil when it did not
// change).
func (w *clusterWiring) merge(res cluster.Result, pl placement, status patrol.Status, r patrol.Result) (*alert.Signal, *patrol.Finding) {
	now := w.d.clock.Now()
	stale := 3*pl.interval + w.ttl()
	locs, q := w.required(pl)
	w.mu.Lock()
	defer w.mu.Unlock()
	byLoc := w.seen[res.Target]
	if byLoc == nil {
		byLoc = map[string]seenResult{}
		w.seen[res.Target] = byLoc
	}
	if prev, ok := byLoc[res.Location]; ok && res.Seq != 0 && res.Seq < prev.seq {
		// Delivered again after a newer verdict of the same location (a previous
		// leader read it and died before acknowledging it): it is stale.
		return nil, nil
	}
	byLoc[res.Location] = seenResult{status: status, flapping: res.Flapping, result: r, member: res.Member, at: now, seq: res.Seq}
	var down []string
	var lastDown seenResult
	for _, l := range locs {
		s, ok := byLoc[l]
		if !ok || now.Sub(s.at) > stale {
			continue
		}
		if s.status == patrol.StatusDown {
			down = append(down, l)
			if s.at.After(lastDown.at) || lastDown.at.IsZero() {
				lastDown = s
			}
		}
	}
	sig := &alert.Signal{Target: res.Target, Host: w.d.hostLabel(pl.host), Labels: pl.labels, Result: r, Status: status,
		Flapping: res.Flapping, At: r.Start}
	var summary string
	switch {
	case len(down) >= q:
		// The quorum agrees: a down verdict, whichever location this result came from.
		dr := lastDown.result
		if len(locs) > 1 {
			dr.Error = fmt.Sprintf("%s (down from %s: %d of %d locations, quorum %d)", dr.Error, strings.Join(down, ", "), len(down), len(locs), q)
		}
		sig.Result, sig.Status, sig.Flapping, sig.At = dr, patrol.StatusDown, lastDown.flapping, dr.Start
	case len(down) > 0:
		since, ok := w.minority[res.Target]
		if !ok {
			since = now
			w.minority[res.Target] = now
		}
		if now.Sub(since) >= partialGrace*pl.interval {
			summary = fmt.Sprintf("%s unreachable from %s only (%d of %d locations; quorum %d)", res.Target, strings.Join(down, ", "), len(down), len(locs), q)
		} else {
			summary = w.partial[res.Target] // not yet; an active one stays
		}
		if status == patrol.StatusDown {
			// This location's down verdict is outvoted: the target is up for the
			// quorum, which the latest up verdict of another location says.
			sig = nil
			for _, l := range locs {
				if s, ok := byLoc[l]; ok && s.status == patrol.StatusUp && now.Sub(s.at) <= stale {
					sig = &alert.Signal{Target: res.Target, Host: w.d.hostLabel(pl.host), Labels: pl.labels, Result: s.result,
						Status: patrol.StatusUp, Flapping: s.flapping, At: s.result.Start}
					break
				}
			}
		}
	}
	if len(down) == 0 || len(down) >= q {
		delete(w.minority, res.Target)
	}
	prev, had := w.partial[res.Target]
	if summary == prev {
		return sig, nil
	}
	f := &patrol.Finding{Class: patrol.AlertUnreachable, Rule: RulePartialUnreachable, Subject: res.Target,
		Severity: partialSeverity, Labels: pl.labels, At: now}
	if summary != "" {
		w.partial[res.Target] = summary
		f.Active, f.Summary = true, summary
		f.Description = "A minority of the locations watching this target cannot reach it: the probes' own network there, or a regional problem. The target is up for the quorum, so no outage is raised."
	} else {
		if !had {
			return sig, nil
		}
		delete(w.partial, res.Target)
		f.Summary = prev
	}
	return sig, f
}

func (w *clusterWiring) ttl() time.Duration {
	return w.d.cfg().Cluster.WithDefaults().TTL
}

// status is /api/v1/cluster: the node's view, with the targets each member owns of
// those this member knows.
func (w *clusterWiring) status(ctx context.Context) api.ClusterStatus {
	st := w.node.Status(ctx)
	pp := w.places.Load()
	places := *pp
	locs := w.node.Locations()
	owned := w.ownedCounts(pp, st.Epoch, st.Members, locs)
	out := api.ClusterStatus{Self: st.Self.ID, Location: st.Self.Location, Connected: st.Connected, Leader: st.Leader, Leading: w.node.IsLeader(),
		Token: st.Token, Epoch: st.Epoch, Lag: st.Lag, Buffered: st.Buffered, Dropped: st.Dropped, Published: st.Published,
		Fenced: w.fenced.Load(), Targets: len(places), Locations: locs, Members: []api.ClusterMember{}}
	for _, m := range st.Members {
		out.Members = append(out.Members, api.ClusterMember{ID: m.ID, Location: m.Location, Role: m.Role, Version: m.Version,
			Capacity: m.Capacity, Started: m.Started, Owned: owned[m.ID], Leader: m.ID == st.Leader})
	}
	return out
}

// ownedCounts counts the targets each member owns. It hashes every target in every
// location (0.1–0.3 s at 100,000 targets), so the counts are kept until the members
// (the epoch) or the plan change: the dashboard asks every few seconds.
func (w *clusterWiring) ownedCounts(pp *map[string]placement, epoch uint64, members []cluster.Member, locs []string) map[string]int {
	w.ownedMu.Lock()
	defer w.ownedMu.Unlock()
	if w.ownedFor.places == pp && w.ownedFor.epoch == epoch && w.ownedFor.counts != nil {
		return w.ownedFor.counts
	}
	owned := map[string]int{}
	serve := serveMembers(members)
	for id, pl := range *pp {
		ms := members
		if pl.discovered {
			ms = serve
		}
		for _, l := range locs {
			if pl.locations != nil && !slices.Contains(pl.locations, l) {
				continue
			}
			if o := cluster.OwnerOf(ms, l, id); o != "" {
				owned[o]++
			}
		}
	}
	w.ownedFor.places, w.ownedFor.epoch, w.ownedFor.counts = pp, epoch, owned
	return owned
}

type clusterAPI struct{ w *clusterWiring }

func (c clusterAPI) ClusterStatus(ctx context.Context) api.ClusterStatus { return c.w.status(ctx) }

// clusterAPIFor is the API's view of cluster mode; nil when it is off.
func (d *Daemon) clusterAPIFor() api.Cluster {
	if d.cluster == nil {
		return nil
	}
	return clusterAPI{d.cluster}
}

// Cluster returns the member, nil unless cluster mode is on.
func (d *Daemon) Cluster() *cluster.Node {
	if d.cluster == nil {
		return nil
	}
	return d.cluster.node
}

// soonOf is the Soon of a spec's job: a quarter of its interval for a target taken over
// from another member, zero otherwise.
func soonOf(sp jobSpec, interval time.Duration) time.Duration {
	if !sp.soon {
		return 0
	}
	return interval / takeoverSoon
}
