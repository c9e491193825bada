package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/exporter"
	"github.com/portpatrol/portpatrol/internal/probe"
)

// loopbackNets are what /probe may always reach when probe.allow is not set.
var loopbackNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// probeNets is /probe's allowlist for one configuration, worked out on first use.
type probeNets struct {
	cfg  *config.Config
	nets func() []netip.Prefix
}

// newScrapeEnv returns the Env /probe runs in: base's dialer, resolver, clock and
// roots, with the daemon's allowlist asked before every packet. It is apart from the
// scheduler's Env, whose configured and discovered targets the list does not bound.
func (d *Daemon) newScrapeEnv(base *probe.Env) *probe.Env {
	return &probe.Env{Dial: base.Dial, Resolver: base.Resolver, Now: base.Now, RootCAs: base.RootCAs, Allow: d.probeAllowed}
}

// probeAllowed is /probe's Env.Allow: ap must lie in the running configuration's
// probe.allow, or by default on loopback or at a configured target's address.
func (d *Daemon) probeAllowed(ap netip.AddrPort) error {
	cfg := d.cfg()
	e := d.probeNets.Load()
	if e == nil || e.cfg != cfg {
		e = &probeNets{cfg: cfg, nets: sync.OnceValue(func() []netip.Prefix { return d.defaultProbeNets(cfg) })}
		d.probeNets.Store(e)
	}
	a := ap.Addr().WithZone("").Unmap()
	for _, p := range e.nets() {
		if p.Contains(a) {
			return nil
		}
	}
	if cfg.ProbeAllow == nil {
		return fmt.Errorf("%s is not in probe.allow (by default loopback and the configured targets' addresses)", a)
	}
	return fmt.Errorf("%s is not in probe.allow", a)
}

// defaultProbeNets is probe.allow, or else loopback and the addresses of cfg's
// targets: IP addresses as written, host names as they resolve now. A name that does
// not resolve within 5s adds nothing until the next reload.
func (d *Daemon) defaultProbeNets(cfg *config.Config) []netip.Prefix {
	if cfg.ProbeAllow != nil {
		return cfg.ProbeAllow
	}
	nets := append([]netip.Prefix(nil), loopbackNets...)
	names := map[string]bool{}
	for _, c := range cfg.Checks {
		if a, err := netip.ParseAddr(c.Target.Host); err == nil {
			a = a.WithZone("").Unmap()
			nets = append(nets, netip.PrefixFrom(a, a.BitLen()))
		} else {
			names[c.Target.Host] = true
		}
	}
	if len(names) == 0 {
		return nets
	}
	res := d.probeEnv.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
	defer cancel()
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for name := range names {
		wg.Go(func() {
			addrs, err := res.LookupNetIP(ctx, "ip", name)
			if err != nil {
				d.logger.Warn("probe.allow: a configured target's name does not resolve; /probe cannot reach it until a reload", "host", name, "err", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, a := range addrs {
				a = a.WithZone("").Unmap()
				nets = append(nets, netip.PrefixFrom(a, a.BitLen()))
			}
		})
	}
	wg.Wait()
	return nets
}

// newAPI returns the API server of the running configuration.
func (d *Daemon) newAPI() *api.Server {
	cfg := d.cfg()
	ad := &apiAdapter{d: d}
	return api.New(api.Config{
		Targets: ad, History: ad, Alerts: ad, AlertActions: ad, Silences: ad, Windows: ad, Deliveries: ad, Audits: ad,
		Tokens: ad, TokenAdmin: ad, StatusNotes: statusNotes{d.db}, Learned: d.learnedAPI(ad), Capacity: d.capacityAPI(ad), Cluster: d.clusterAPIFor(), Bands: d.bandsAPI(ad), Automation: d.automationAPIFor(), Bans: d.bansAPI(), Intrusion: d.intrusionAPI(), Broker: d.broker, AnonymousRead: cfg.API.AnonymousRead, TokenStore: d.dbName, Logger: d.logger.With("component", "api"),
	})
}

// probeHandler serves /probe; its debug output needs a viewer token of the API's.
func (d *Daemon) probeHandler(a *api.Server) http.Handler {
	return &exporter.ProbeHandler{
		Modules:   func() map[string]probe.Module { return d.cfg().Modules },
		Env:       d.scrapeEnv,
		Authorize: func(r *http.Request) error { return a.Authorize(r, api.RoleViewer) },
		Logger:    d.logger,
	}
}

// listenProbe opens probe.listen, when set, and returns the server that serves /probe
// alone on it (over TLS when tc is not nil); nil when /probe stays on the main listener.
func (d *Daemon) listenProbe(cfg *config.Config, tc *tls.Config) (*http.Server, net.Listener, error) {
	if cfg.Probe.Listen == "" {
		return nil, nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Probe.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("probe.listen: %w", err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /probe", d.probeHandler(d.newAPI()))
	// The same Host allowlist, timeouts and per-client limit as the main listener.
	srv := d.serverFor(cfg, ln, d.limit(cfg, mux))
	srv.ErrorLog = slog.NewLogLogger(d.logger.Handler(), slog.LevelWarn)
	return srv, ln, nil
}
