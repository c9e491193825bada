package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/intrusion"
	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/kube"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

// intrusionWiring runs scan and brute-force detection: conntrack events into the
// detector, findings into the alert engine as security alerts of rule scan or
// bruteforce, and bans through portpatrol's nftables table. Where conntrack or
// nftables cannot be used it says so once, in the log and in /metrics, and the rest
// of portpatrol runs on. Built at start; a reload applies the new thresholds, ban
// settings, dry run and allowlist to the running detector and banner (enabled and
// netns take effect at the next start), and Kubernetes discovery keeps the nodes'
// ranges in the allowlist.
type intrusionWiring struct {
	d      *Daemon
	netns  string
	guard  *intrusion.Guard
	banner *intrusion.Banner
	source *intrusion.Source
	table  *intrusion.Table // nil when nftables is unavailable

	conntrackUp               atomic.Bool
	nftablesUp                atomic.Bool
	activeBans                atomic.Int64
	applyMu                   sync.Mutex
	mu                        sync.Mutex
	cfg                       config.Intrusion
	host                      []netip.Addr          // this host's addresses, allowlisted
	confAllow, kubeAllow      []intrusion.AllowRule // intrusion.allowlist; the Kubernetes nodes' ranges
	conntrackErr, nftablesErr string
	synRecv                   map[uint16]int // the fallback's half-open connections per listener port
	// raised are the sources with an active finding, by source and rule.
	raised map[string]map[string]bool
}

// Banner returns the banner the API and CLI ban through; nil when intrusion is off.
func (d *Daemon) Banner() *intrusion.Banner {
	if d.intrusion == nil {
		return nil
	}
	return d.intrusion.banner
}

func (d *Daemon) newIntrusion(cfg *config.Config) *intrusionWiring {
	in := cfg.Intrusion
	if !in.Enabled {
		return nil
	}
	w := &intrusionWiring{d: d, netns: in.NetNS, cfg: in, confAllow: cfg.IntrusionAllow(), raised: map[string]map[string]bool{}}
	host, err := intrusion.HostAddrsIn(in.NetNS)
	if err != nil {
		d.logger.Warn("intrusion: this host's addresses are unknown; only loopback and intrusion.allowlist are allowlisted", "err", err)
	}
	w.host = host
	allow := w.allowlist(w.confAllow, nil)
	dcfg := in.Detector()
	dcfg.Allowlist = allow
	if err := dcfg.Validate(); err != nil {
		d.logger.Error("intrusion: detector settings", "err", err)
	}
	if t, err := intrusion.OpenTable(in.NetNS); err != nil {
		w.nftablesErr = err.Error()
		d.logger.Error("intrusion: nftables unavailable: no bans will be enforced (needs nf_tables and CAP_NET_ADMIN); detection goes on",
			"table", "inet "+intrusion.TableName, "err", err)
	} else {
		w.table = t
		w.nftablesUp.Store(true)
	}
	var bans store.BanStore
	if bs, ok := d.db.(store.BanStore); ok {
		bans = bs
	}
	// Every ban and unban is an entry in the store's audit chain, as automation's
	// decisions are.
	var rec auditlog.Recorder
	if d.auditLog != nil {
		rec = d.auditLog
	}
	bc := w.bannerConfig(in, allow)
	bc.Store, bc.Recorder, bc.Now, bc.Logger = bans, rec, d.clock.Now, d.logger.With("component", "bans")
	w.banner = intrusion.NewBanner(bc)
	w.guard = intrusion.NewGuard(intrusion.GuardConfig{Detector: intrusion.NewDetector(dcfg), Banner: w.banner,
		OnFinding: w.onFinding, OnBan: func(intrusion.Finding, error) { w.countActive(d.ctx) },
		Logger: d.logger.With("component", "intrusion")})
	w.source = intrusion.NewSource(intrusion.SourceConfig{NetNS: in.NetNS, Now: d.clock.Now})
	d.metrics.Registry.MustRegister(w)
	if w.banner.DryRun() {
		d.logger.Info("intrusion detection on, bans in dry run (intrusion.dry_run: false enforces them)")
	} else {
		d.logger.Info("intrusion detection on, bans enforced", "table", "inet "+intrusion.TableName)
	}
	return w
}

// allowlist is loopback, this host's addresses, intrusion.allowlist (conf) and the
// Kubernetes nodes' ranges (kube).
func (w *intrusionWiring) allowlist(conf, kube []intrusion.AllowRule) *intrusion.Allowlist {
	return intrusion.NewAllowlist(w.host, append(slices.Clone(conf), kube...))
}

// bannerConfig is the part of the banner's configuration the intrusion section sets.
func (w *intrusionWiring) bannerConfig(in config.Intrusion, allow *intrusion.Allowlist) intrusion.BannerConfig {
	return intrusion.BannerConfig{Enforce: !in.IsDryRun() && w.table != nil, Enforcer: w.enforcer(), BanTime: in.BanTime,
		MaxBanTime: in.MaxBanTime, RecidiveWindow: in.RecidiveWindow, MaxPerMinute: in.MaxBansPerMin, Allowlist: allow}
}

func (w *intrusionWiring) enforcer() intrusion.Enforcer {
	if w.table == nil {
		return nil
	}
	return w.table
}

// prepareReload checks the intrusion section of cfg and returns what applies it to
// the running detector and banner; it changes nothing itself, so that a reload that
// fails later leaves intrusion detection as it was. Nil-safe: with intrusion off at
// start there is nothing to apply (enabling it takes a restart).
func (w *intrusionWiring) prepareReload(cfg *config.Config) (apply func(), err error) {
	if w == nil || !cfg.Intrusion.Enabled {
		return func() {}, nil
	}
	in, conf := cfg.Intrusion, cfg.IntrusionAllow()
	in.NetNS = w.netns // a new namespace takes a restart
	w.mu.Lock()
	kube := w.kubeAllow
	w.mu.Unlock()
	dcfg := in.Detector()
	dcfg.Allowlist = w.allowlist(conf, kube)
	if err := dcfg.Validate(); err != nil {
		return nil, fmt.Errorf("intrusion: %w", err)
	}
	if !in.IsDryRun() && w.table == nil {
		w.d.logger.Warn("intrusion: dry_run is false but nftables is unavailable here: bans stay in dry run")
	}
	return func() {
		w.mu.Lock()
		w.cfg, w.confAllow = in, conf
		w.mu.Unlock()
		w.apply()
		w.d.logger.Info("intrusion settings reloaded", "dry_run", w.banner.DryRun(), "allowlist", len(w.banner.Allowlist().Rules()))
	}, nil
}

// apply puts the settings and allowlist in w into the running detector and banner.
// Bans already in the kernel stay there until they expire or are lifted by hand.
func (w *intrusionWiring) apply() {
	w.applyMu.Lock() // one apply at a time, so that the last settings read are the last applied
	defer w.applyMu.Unlock()
	w.mu.Lock()
	in := w.cfg
	allow := w.allowlist(w.confAllow, w.kubeAllow)
	w.mu.Unlock()
	dcfg := in.Detector()
	dcfg.Allowlist = allow
	w.banner.Reconfigure(w.bannerConfig(in, allow))
	ended := w.guard.Reconfigure(dcfg)
	if len(ended) > 0 {
		// The alerts of sources the allowlist now protects are resolved, as those of
		// sources gone idle are.
		go func() {
			for _, e := range ended {
				w.resolve(w.d.ctx, e.Source)
			}
		}()
	}
}

// setKubeRanges replaces the Kubernetes nodes' ranges in the allowlist, when they
// changed. Nil-safe.
func (w *intrusionWiring) setKubeRanges(rs []kube.NodeRange) {
	if w == nil {
		return
	}
	rules := make([]intrusion.AllowRule, 0, len(rs))
	for _, r := range rs {
		rules = append(rules, intrusion.AllowRule{Prefix: r.Prefix, Rule: r.Source})
	}
	w.mu.Lock()
	same := slices.Equal(rules, w.kubeAllow)
	w.kubeAllow = rules
	w.mu.Unlock()
	if same {
		return
	}
	w.apply()
	w.d.logger.Info("intrusion: allowlist follows the Kubernetes nodes", "ranges", len(rules))
}

// run starts reading events, banning, sweeping idle sources and reconciling bans.
func (w *intrusionWiring) run(ctx context.Context) {
	d := w.d
	if applied, removed, err := w.banner.Reconcile(ctx); err != nil {
		d.logger.Warn("intrusion: restoring bans from the store", "err", err)
	} else if applied+removed > 0 {
		d.logger.Info("intrusion: bans restored from the store", "applied", applied, "removed", removed)
	}
	w.countActive(ctx)
	d.spawn(func() { w.guard.Run(ctx) })
	d.spawn(func() { w.read(ctx) })
	d.every(ctx, time.Minute, "intrusion sweep", func(now time.Time) error {
		for _, e := range w.guard.Sweep(now) {
			w.resolve(ctx, e.Source)
		}
		_, _, err := w.banner.Reconcile(ctx)
		w.countActive(ctx)
		return err
	})
}

// read runs the conntrack source, reconnecting after errors; where conntrack is
// unavailable it says so once and falls back to nothing but the host watch's view.
func (w *intrusionWiring) read(ctx context.Context) {
	d := w.d
	for backoff := time.Second; ctx.Err() == nil; backoff = min(backoff*2, time.Minute) {
		if err := w.source.Probe(); err != nil {
			w.mu.Lock()
			first := w.conntrackErr == ""
			w.conntrackErr = err.Error()
			w.mu.Unlock()
			w.conntrackUp.Store(false)
			if first {
				d.logger.Error("intrusion: conntrack events unavailable: scans and brute force are not detected from flows "+
					"(needs nf_conntrack_netlink and CAP_NET_ADMIN); falling back to SYN_RECV pressure per listener from sock_diag; "+
					"the rest of portpatrol runs on", "err", err)
				if w.netns == "" {
					d.spawn(func() { w.synRecvFallback(ctx) })
				}
			}
		} else {
			w.conntrackUp.Store(true)
			err := w.source.Run(ctx, w.guard.Handle)
			w.conntrackUp.Store(false)
			if err == nil || ctx.Err() != nil {
				return
			}
			d.logger.Warn("intrusion: conntrack events stopped; reconnecting", "err", err, "in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// synRecvThreshold is how many half-open (SYN_RECV) sockets one remote address may
// hold on this host before the fallback raises a half-open finding about it.
const synRecvThreshold = 64

// synRecvFallback watches, where conntrack events cannot be read, what sock_diag
// shows: the half-open (SYN_RECV) connections per listener port, exported on
// /metrics, and per remote address, raised as a half-open finding (and banned as
// such) when one address holds synRecvThreshold or more.
func (w *intrusionWiring) synRecvFallback(ctx context.Context) {
	inv := inventory.New(inventory.Config{})
	reported := map[netip.Addr]time.Time{} // a source is reported again after 10 minutes
	tick, stop := w.d.clock.NewTicker(5 * time.Second)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick:
			if err := w.synRecvTick(ctx, inv, now, reported); err != nil {
				w.d.logger.Debug("intrusion: sock_diag SYN_RECV dump", "err", err)
			}
		}
	}
}

// synRecvTick reads the half-open connections once and reports the sources that
// hold too many, each once per 10 minutes (reported keeps when).
func (w *intrusionWiring) synRecvTick(ctx context.Context, inv *inventory.Inventory, now time.Time, reported map[netip.Addr]time.Time) error {
	socks, err := inv.Sockets(ctx, inventory.Filter{Proto: inventory.TCP, States: inventory.StatesOf(inventory.StateSynRecv)})
	if err != nil {
		return err
	}
	perPort := map[uint16]int{}
	perSrc := map[netip.Addr][]uint16{}
	for _, s := range socks {
		perPort[s.Local.Port()]++
		src := s.Remote.Addr().Unmap()
		perSrc[src] = append(perSrc[src], s.Local.Port())
	}
	w.mu.Lock()
	w.synRecv = perPort
	w.mu.Unlock()
	for src, ports := range perSrc {
		n := len(ports)
		if n < synRecvThreshold {
			continue
		}
		if _, allowed := w.banner.Allowlisted(src); allowed || now.Sub(reported[src]) < 10*time.Minute {
			continue
		}
		reported[src] = now
		slices.Sort(ports)
		ports = slices.Compact(ports)
		w.guard.Report(intrusion.Finding{Class: intrusion.ClassScan, Kind: intrusion.KindHalfOpen, Source: src, Ports: ports,
			DistinctPorts: len(ports), Score: n, Threshold: synRecvThreshold, FirstSeen: now, LastSeen: now,
			Reason: fmt.Sprintf("%d half-open (SYN_RECV) connections held on this host (threshold %d; from sock_diag, conntrack being unavailable)",
				n, synRecvThreshold)})
	}
	return nil
}

func (w *intrusionWiring) countActive(ctx context.Context) {
	if n, err := w.banner.Active(ctx); err == nil {
		w.activeBans.Store(int64(n))
	}
}

// onFinding raises a security alert; it runs on the goroutine reading events, so the
// alert engine is called from a goroutine of its own.
func (w *intrusionWiring) onFinding(f intrusion.Finding) {
	pf := w.finding(f, true)
	w.mu.Lock()
	if w.raised[f.Source.String()] == nil {
		w.raised[f.Source.String()] = map[string]bool{}
	}
	w.raised[f.Source.String()][f.Class] = true
	w.mu.Unlock()
	go func() {
		if err := w.d.observeFinding(w.d.ctx, pf); err != nil {
			w.d.logger.Warn("intrusion: raise alert", "source", f.Source, "err", err)
		}
	}()
}

// resolve clears the alerts of a source the detector forgot (idle for its window).
func (w *intrusionWiring) resolve(ctx context.Context, src netip.Addr) {
	w.mu.Lock()
	classes := w.raised[src.String()]
	delete(w.raised, src.String())
	w.mu.Unlock()
	for class := range classes {
		f := w.finding(intrusion.Finding{Class: class, Source: src}, false)
		if err := w.d.observeFinding(ctx, f); err != nil {
			w.d.logger.Warn("intrusion: resolve alert", "source", src, "err", err)
		}
	}
}

// finding is how a detection reaches the alert engine: class security, rule scan or
// bruteforce, one incident per source.
func (w *intrusionWiring) finding(f intrusion.Finding, active bool) patrol.Finding {
	host := w.d.hostLabel("local")
	pf := patrol.Finding{Class: patrol.AlertSecurity, Rule: f.Class, Subject: "source:" + f.Source.String(),
		Labels: map[string]string{"host": host, "source": f.Source.String(), "finding": f.Class}, Active: active}
	if !active {
		return pf
	}
	pf.At = f.LastSeen
	pf.Labels["kind"] = f.Kind
	pf.Summary = f.Summary()
	var b strings.Builder
	ports := make([]string, 0, len(f.Ports))
	for _, p := range f.Ports {
		ports = append(ports, strconv.Itoa(int(p)))
	}
	fmt.Fprintf(&b, "ports tried: %s (%d distinct on %d hosts)\n", strings.Join(ports, ", "), f.DistinctPorts, f.DistinctHosts)
	fmt.Fprintf(&b, "rate: %.1f new flows/s; refused or reset: %d; unanswered: %d; short authentication connections: %d\n",
		f.Rate, f.Refused, f.HalfOpen, f.Attempts)
	fmt.Fprintf(&b, "first seen %s, last seen %s\n", f.FirstSeen.UTC().Format(time.RFC3339), f.LastSeen.UTC().Format(time.RFC3339))
	for _, s := range f.Samples {
		fmt.Fprintf(&b, "flow %s %s %s at %s\n", s.Proto, s.Dst, s.State, s.At.UTC().Format(time.RFC3339Nano))
	}
	if w.banner.DryRun() {
		b.WriteString("bans are in dry run: the source was not banned (intrusion.dry_run)\n")
	}
	pf.Description = b.String()
	return pf
}

var (
	descScans = prometheus.NewDesc("portpatrol_scans_detected_total",
		"Scans and brute force detected from conntrack events, by class (scan, bruteforce) and kind.", []string{"class", "kind"}, nil)
	descBans = prometheus.NewDesc("portpatrol_bans_active",
		"Bans enforced now in portpatrol's nftables table (dry-run bans are not counted).", nil, nil)
	descLost = prometheus.NewDesc("portpatrol_conntrack_events_lost_total",
		"Times the kernel dropped conntrack events because portpatrol's socket buffer was full (each lost at least one event; the flows were then read again from a dump).", nil, nil)
	descEvents = prometheus.NewDesc("portpatrol_conntrack_events_total",
		"Conntrack events read.", nil, nil)
	descSources = prometheus.NewDesc("portpatrol_intrusion_sources_tracked",
		"Source addresses the intrusion detector follows now.", nil, nil)
	descState = prometheus.NewDesc("portpatrol_intrusion_available",
		"1 when the part works, 0 when it cannot be used here (conntrack: reading events; nftables: enforcing bans), with the reason.", []string{"part", "reason"}, nil)
	descSynRecv = prometheus.NewDesc("portpatrol_intrusion_syn_recv",
		"Half-open (SYN_RECV) connections per listening port, from sock_diag; exported only while conntrack events are unavailable.", []string{"port"}, nil)
	descDryRun = prometheus.NewDesc("portpatrol_bans_dry_run",
		"1 when bans are decided but not enforced.", nil, nil)
)

// Describe implements prometheus.Collector.
func (w *intrusionWiring) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descScans, descBans, descLost, descEvents, descSources, descState, descDryRun, descSynRecv} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (w *intrusionWiring) Collect(ch chan<- prometheus.Metric) {
	found := w.guard.Found()
	kinds := make([]string, 0, len(found))
	for k := range found {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		class := intrusion.ClassScan
		if k == intrusion.KindBruteForce {
			class = intrusion.ClassBruteForce
		}
		ch <- prometheus.MustNewConstMetric(descScans, prometheus.CounterValue, float64(found[k]), class, k)
	}
	ch <- prometheus.MustNewConstMetric(descBans, prometheus.GaugeValue, float64(w.activeBans.Load()))
	ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, float64(w.source.Lost()))
	ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(w.source.Events()))
	ch <- prometheus.MustNewConstMetric(descSources, prometheus.GaugeValue, float64(w.guard.Sources()))
	w.mu.Lock()
	ctErr, nftErr := w.conntrackErr, w.nftablesErr
	for port, n := range w.synRecv {
		ch <- prometheus.MustNewConstMetric(descSynRecv, prometheus.GaugeValue, float64(n), strconv.Itoa(int(port)))
	}
	w.mu.Unlock()
	up := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	if w.conntrackUp.Load() {
		ctErr = ""
	}
	ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, up(w.conntrackUp.Load()), "conntrack", ctErr)
	ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, up(w.nftablesUp.Load()), "nftables", nftErr)
	ch <- prometheus.MustNewConstMetric(descDryRun, prometheus.GaugeValue, up(w.banner.DryRun()))
}

// bansAPI serves /api/v1/bans; nil when intrusion is off.
func (d *Daemon) bansAPI() api.Bans {
	if d.intrusion == nil {
		return nil
	}
	return bansAdapter{d.intrusion}
}

// bansAdapter gives the API the banner.
type bansAdapter struct{ w *intrusionWiring }

var _ api.Bans = bansAdapter{}

func (a bansAdapter) ListBans(ctx context.Context) ([]api.Ban, error) {
	bs, err := a.w.banner.List(ctx)
	if err != nil {
		return nil, err
	}
	now := a.w.d.clock.Now()
	out := make([]api.Ban, 0, len(bs))
	for _, b := range bs {
		out = append(out, apiBan(b, now))
	}
	return out, nil
}

func apiBan(b store.Ban, now time.Time) api.Ban {
	ab := api.Ban{Addr: b.Addr, Active: b.Active(now), DryRun: b.DryRun, Kind: b.Kind, Reason: b.Reason, Actor: b.Actor,
		Created: b.Created, Expires: b.Expires, Duration: b.Duration.String(), Count: b.Count, LiftedBy: b.LiftedBy}
	if !b.Lifted.IsZero() {
		l := b.Lifted
		ab.Lifted = &l
	}
	return ab
}

func (a bansAdapter) AddBan(ctx context.Context, addr netip.Addr, dur time.Duration, reason, by string) (api.Ban, error) {
	if by == "" || by == "portpatrol" {
		by = "api" // a ban by hand is never counted as automation's
	}
	b, err := a.w.banner.Ban(ctx, intrusion.BanRequest{Addr: addr, Actor: by, Reason: reason, Kind: "manual", Duration: dur})
	var ae *intrusion.AllowlistedError
	if errors.As(err, &ae) {
		return api.Ban{}, fmt.Errorf("%w: %w", err, api.ErrConflict) // the rule first: it is what the reader needs
	}
	if err != nil {
		return api.Ban{}, err
	}
	a.w.countActive(ctx)
	return apiBan(b, a.w.d.clock.Now()), nil
}

func (a bansAdapter) RemoveBan(ctx context.Context, addr netip.Addr, reason, by string) error {
	bs, err := a.w.banner.List(ctx)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(bs, func(b store.Ban) bool { return b.Addr == addr.Unmap().String() }) {
		return fmt.Errorf("%s is not banned: %w", addr, api.ErrNotFound)
	}
	if err := a.w.banner.Unban(ctx, addr, by, reason); err != nil {
		return err
	}
	a.w.countActive(ctx)
	return nil
}

func (w *intrusionWiring) close() {
	if w != nil && w.table != nil {
		w.table.Close()
	}
}
