package intrusion

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// GuardConfig wires a Detector to a Banner. Detector is required.
type GuardConfig struct {
	Detector *Detector
	// Banner bans the sources of findings; nil only reports them.
	Banner *Banner
	// OnFinding is called for each finding, from the goroutine that feeds events.
	OnFinding func(Finding)
	// OnBan is called after each ban decision on a finding (err is the refusal or
	// failure), from the ban goroutine.
	OnBan  func(f Finding, err error)
	Logger *slog.Logger
}

// Guard feeds events to its Detector and hands findings to the Banner on a
// goroutine of its own, so that setting a ban never stalls reading events. Handle
// and Sweep must be called from one goroutine; Run runs the bans.
type Guard struct {
	cfg     GuardConfig
	mu      sync.Mutex
	buf     []Finding
	bans    chan Finding
	found   [4]atomic.Uint64
	dropped atomic.Uint64
}

// NewGuard returns a guard; call Run to start banning.
func NewGuard(cfg GuardConfig) *Guard {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Guard{cfg: cfg, bans: make(chan Finding, 256)}
}

var kindIndex = map[string]int{KindFastScan: 0, KindSlowScan: 1, KindHalfOpen: 2, KindBruteForce: 3}

// Found returns the findings so far by kind.
func (g *Guard) Found() map[string]uint64 {
	out := map[string]uint64{}
	for k, i := range kindIndex {
		out[k] = g.found[i].Load()
	}
	return out
}

// Handle feeds one event.
func (g *Guard) Handle(at time.Time, e *Event) {
	g.mu.Lock()
	g.buf = g.cfg.Detector.Observe(g.buf[:0], at, e)
	fs := g.buf
	g.mu.Unlock()
	for _, f := range fs {
		g.found[kindIndex[f.Kind]].Add(1)
		g.cfg.Logger.Warn("intrusion finding", "class", f.Class, "kind", f.Kind, "source", f.Source, "reason", f.Reason)
		if g.cfg.OnFinding != nil {
			g.cfg.OnFinding(f)
		}
		if g.cfg.Banner == nil {
			continue
		}
		select {
		case g.bans <- f:
		default:
			g.dropped.Add(1)
		}
	}
}

// Report hands over a finding made elsewhere (the sock_diag fallback) as if the
// detector had made it. Safe for concurrent use with Handle.
func (g *Guard) Report(f Finding) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.found[kindIndex[f.Kind]].Add(1)
	if g.cfg.OnFinding != nil {
		g.cfg.OnFinding(f)
	}
	if g.cfg.Banner != nil {
		select {
		case g.bans <- f:
		default:
			g.dropped.Add(1)
		}
	}
}

// Sweep forgets idle sources; see Detector.Sweep.
func (g *Guard) Sweep(at time.Time) []Ended {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cfg.Detector.Sweep(at)
}

// Reconfigure applies cfg to the detector between two events; see
// Detector.Reconfigure. Safe for concurrent use with Handle.
func (g *Guard) Reconfigure(cfg Config) []Ended {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cfg.Detector.Reconfigure(cfg)
}

// DetectorConfig returns the detector's configuration, defaults filled in.
func (g *Guard) DetectorConfig() Config {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cfg.Detector.Config()
}

// Sources returns the sources tracked.
func (g *Guard) Sources() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cfg.Detector.Sources()
}

// Run bans the sources of findings until ctx ends.
func (g *Guard) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-g.bans:
			ev := f
			_, err := g.cfg.Banner.Ban(ctx, BanRequest{Addr: f.Source, Actor: "portpatrol", Kind: f.Kind,
				Reason: fmt.Sprintf("%s: %s", f.Class, f.Reason), Finding: &ev})
			if err != nil {
				g.cfg.Logger.Warn("ban not set", "source", f.Source, "err", err)
			}
			if g.cfg.OnBan != nil {
				g.cfg.OnBan(f, err)
			}
		}
	}
}
