package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/web"
)

// guard is the intrusion detection of the browser tests' world: bans kept in
// memory (10.20.0.0/16, the monitoring network, is allowlisted) and a state with
// the top sources. It implements api.Bans and api.Intrusion and is safe for
// concurrent use.
type guard struct {
	mu     sync.Mutex
	bans   map[string]api.Ban
	state  api.IntrusionState
	lifted []string // "addr by"
	added  []string // "addr by"
}

var monitoring = netip.MustParsePrefix("10.20.0.0/16")

// newGuard makes nBans bans, the first nBans/20 recurrences, and nSources tracked
// sources, the first ten of them banned.
func newGuard(nBans, nSources int) *guard {
	g := &guard{bans: map[string]api.Ban{}}
	now := time.Now()
	kinds := []string{"fast_scan", "slow_scan", "half_open", "bruteforce", "fast_scan", "manual"}
	for i := 0; i < nBans; i++ {
		addr := fmt.Sprintf("203.0.%d.%d", 113+i/250, 1+i%250)
		if i%7 == 3 {
			addr = fmt.Sprintf("2001:db8:%x::%x", 10+i, 7*i)
		}
		kind := kinds[i%len(kinds)]
		count, d := 1, 10*time.Minute
		if i < nBans/20 {
			count = 2 + i%4
			d = time.Duration(1<<(count-1)) * 10 * time.Minute
		}
		created := now.Add(-time.Duration(i) * 37 * time.Second)
		reason := map[string]string{
			"fast_scan":  "scan: 41 distinct ports on 1 hosts within 3s weigh 63 (threshold 21; a port below 1024 weighs 3)",
			"slow_scan":  "scan: about 27 distinct ports reset or unanswered within 1h0m0s (threshold 25)",
			"half_open":  "scan: 112 flows ended never assured (reset, refused or unanswered) within 10s (threshold 100)",
			"bruteforce": "bruteforce: 44 accepted connections to authentication port 22 shorter than 10s within 1m0s (threshold 40)",
			"manual":     "abuse report 4711",
		}[kind]
		actor := "portpatrol"
		if kind == "manual" {
			actor = "alice"
		}
		g.bans[addr] = api.Ban{Addr: addr, Active: true, Kind: kind, Reason: reason, Actor: actor, Created: created,
			Expires: created.Add(d + 30*time.Minute), Duration: d.String(), Count: count}
	}
	g.state = api.IntrusionState{Enabled: true, Conntrack: api.IntrusionPart{Available: true}, Nftables: api.IntrusionPart{Available: true},
		Events: 18_402_311, Lost: 2, Sources: 3_812, ActiveBans: nBans,
		Scans: []api.ScanCount{{Class: "scan", Kind: "fast_scan", Count: 131}, {Class: "scan", Kind: "slow_scan", Count: 23},
			{Class: "scan", Kind: "half_open", Count: 9}, {Class: "bruteforce", Kind: "bruteforce", Count: 41}}}
	for i := 0; i < nSources; i++ {
		s := api.TopSource{Source: fmt.Sprintf("198.51.100.%d", 10+i), DistinctHosts: 1 + i%3, FirstSeen: now.Add(-time.Duration(40+i) * time.Minute),
			LastSeen: now.Add(-time.Duration(i*11) * time.Second), Found: []string{}, Banned: i < 10}
		switch {
		case i%5 == 4:
			s.Attempts, s.DistinctPorts, s.NewFlows = 300-4*i, 1, 310-4*i
			s.Found = []string{"bruteforce"}
		default:
			s.DistinctPorts, s.Refused, s.HalfOpen, s.NewFlows = 900-15*i, 700-12*i, 40, 950-15*i
			if i < 12 {
				s.Found = []string{"fast_scan"}
			}
		}
		s.Score = s.DistinctPorts + s.Refused + s.HalfOpen + s.Attempts
		g.state.Top = append(g.state.Top, s)
	}
	slices.SortStableFunc(g.state.Top, func(a, b api.TopSource) int { return b.Score - a.Score })
	return g
}

func (g *guard) ListBans(context.Context) ([]api.Ban, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]api.Ban, 0, len(g.bans))
	for _, b := range g.bans {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b api.Ban) int { return strings.Compare(a.Addr, b.Addr) })
	return out, nil
}

func (g *guard) AddBan(_ context.Context, addr netip.Addr, d time.Duration, reason, by string) (api.Ban, error) {
	if monitoring.Contains(addr) {
		return api.Ban{}, fmt.Errorf("%s is allowlisted by intrusion.allowlist[0] %s at /etc/portpatrol/portpatrol.yaml:41: never banned: %w", addr, monitoring, api.ErrConflict)
	}
	if d == 0 {
		d = 10 * time.Minute
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	b := api.Ban{Addr: addr.String(), Active: true, Kind: "manual", Reason: reason, Actor: by, Created: now, Expires: now.Add(d), Duration: d.String(), Count: 1}
	g.bans[b.Addr] = b
	g.added = append(g.added, b.Addr+" "+by)
	return b, nil
}

func (g *guard) RemoveBan(_ context.Context, addr netip.Addr, reason, by string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := g.bans[addr.String()]
	if !ok {
		return fmt.Errorf("%s is not banned: %w", addr, api.ErrNotFound)
	}
	now := time.Now()
	b.Active, b.Lifted, b.LiftedBy = false, &now, by
	g.bans[b.Addr] = b
	g.lifted = append(g.lifted, b.Addr+" "+by)
	return nil
}

func (g *guard) IntrusionState(_ context.Context, top int) (api.IntrusionState, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.state
	st.Top = slices.Clone(st.Top[:min(top, len(st.Top))])
	return st, nil
}

func (g *guard) writes() (added, lifted []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.added), slices.Clone(g.lifted)
}

// addSecurityAlerts adds scan and brute-force alerts to w, one per source of g's top.
func addSecurityAlerts(w *world, g *guard, n int) {
	now := time.Now()
	for i, s := range g.state.Top[:n] {
		rule, what := "scan", fmt.Sprintf("fast scan from %s: %d distinct ports on %d hosts within 3s weigh %d (threshold 21)", s.Source, s.DistinctPorts, s.DistinctHosts, 3*s.DistinctPorts)
		if slices.Contains(s.Found, "bruteforce") {
			rule, what = "bruteforce", fmt.Sprintf("brute force from %s: %d accepted connections to authentication port 22 shorter than 10s within 1m0s (threshold 40)", s.Source, s.Attempts)
		}
		st := patrol.AlertFiring
		if i >= 4 {
			st = patrol.AlertResolved
		}
		w.addAlert(patrol.Alert{ID: "sec-" + s.Source, Rule: rule, Class: patrol.AlertSecurity, Severity: patrol.P1, State: st, Target: "source:" + s.Source,
			Labels: map[string]string{"source": s.Source, "finding": rule}, Summary: what, StartsAt: now.Add(-time.Duration(i*3) * time.Minute),
			ResolvedAt: now.Add(-time.Duration(i) * time.Minute)}, "noc")
	}
}

// serveSecurity runs the API with g's bans and state, and the dashboard, over w.
func serveSecurity(t *testing.T, w *world, g *guard) string {
	t.Helper()
	b := api.NewBroker(api.BrokerConfig{})
	mux := http.NewServeMux()
	cfg := api.Config{Targets: w, History: w, Alerts: w, AlertActions: w, Silences: w, Windows: w, Deliveries: w, Audits: w,
		StatusNotes: w, Learned: w, Tokens: tokens, Broker: b, AnonymousRead: true, Heartbeat: 5 * time.Second}
	if g != nil {
		cfg.Bans, cfg.Intrusion = g, g
	}
	mux.Handle(api.Prefix, api.New(cfg))
	mux.Handle("/", web.New(web.Config{}))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { b.Close(); srv.Close() })
	return srv.URL
}

func TestSecurityPage(t *testing.T) {
	ctx := newBrowser(t)
	count := func(sel string) int {
		t.Helper()
		return get(t, ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	}
	text := func(sel string) string {
		t.Helper()
		return get(t, ctx, chromedp.Text(css(sel)))
	}
	// writeControls are the controls only an operator may see.
	const writeControls = `#security button[data-act], #ban-form`

	t.Run("a viewer sees bans, sources and alerts, and no buttons", func(t *testing.T) {
		w, g := smallWorld(), newGuard(200, 50)
		addSecurityAlerts(w, g, 8)
		url := serveSecurity(t, w, g)
		run(t, ctx, 20*time.Second,
			chromedp.Navigate(url+"/#/security"),
			chromedp.WaitVisible(css(`#view[data-role="viewer"] #bans[data-rendered="200"]`)),
			chromedp.WaitVisible(css(`#sources[data-rendered="50"]`)),
			chromedp.WaitVisible(css(`#sec-alerts table`)),
		)
		if got := text(`#sec-state`); !strings.Contains(got, "bans enforced") || !strings.Contains(got, "131 fast scan") {
			t.Errorf("state %q, want enforcing with the findings by kind", got)
		}
		if got := text(`#ban-count`); got != "200 in force" {
			t.Errorf("ban count %q, want 200 in force", got)
		}
		row := text(`#bans tr[data-addr="203.0.113.1"]`)
		for _, want := range []string{"203.0.113.1", "fast scan", "left", "41 distinct ports", "×2"} {
			if !strings.Contains(row, want) {
				t.Errorf("ban row %q does not show %q", row, want)
			}
		}
		src := text(`#sources tbody tr:first-child`)
		if !strings.Contains(src, "198.51.100.10") || !strings.Contains(src, "banned") || !strings.Contains(src, "fast scan") {
			t.Errorf("top source row %q, want 198.51.100.10, banned, fast scan", src)
		}
		if n := count(`#sec-alerts tbody tr`); n != 8 {
			t.Errorf("got %d security alerts, want 8", n)
		}
		if n := count(writeControls); n != 0 {
			t.Errorf("a viewer sees %d write controls, want none", n)
		}
		if got := text(`#read-only`); !strings.Contains(got, "operator token") {
			t.Errorf("viewer hint %q", got)
		}
		// The filter narrows the 200 bans.
		run(t, ctx, 10*time.Second, chromedp.SendKeys(css(`#ban-q`), "abuse report"), chromedp.WaitVisible(css(`#bans[data-rendered="33"]`)))
	})

	t.Run("an operator unbans; a refused ban shows the rule", func(t *testing.T) {
		w, g := smallWorld(), newGuard(200, 50)
		url := serveSecurity(t, w, g)
		unban := css(`#bans button[data-act="unban"][data-addr="203.0.113.5"]`)
		run(t, ctx, 20*time.Second,
			chromedp.Navigate(url+"/#/security"),
			chromedp.WaitVisible(css(`#bans[data-rendered="200"]`)),
			chromedp.SendKeys(css(`#token-input`), tokens[1].Secret),
			chromedp.Click(css(`#token-form button[type=submit]`)),
			chromedp.WaitVisible(css(`#who[data-role="operator"]`)),
			chromedp.WaitVisible(unban),
			chromedp.Click(unban),
			chromedp.WaitVisible(css(`#banner.ok`)),
			chromedp.WaitVisible(css(`#bans[data-rendered="199"]`)),
		)
		if got := text(`#banner`); got != "Lifted the ban of 203.0.113.5." {
			t.Errorf("banner %q", got)
		}
		if _, lifted := g.writes(); !slices.Equal(lifted, []string{"203.0.113.5 alice"}) {
			t.Errorf("lifted %v, want 203.0.113.5 by alice", lifted)
		}
		if n := count(`#bans tr[data-addr="203.0.113.5"]`); n != 0 {
			t.Errorf("the lifted ban is still listed among those in force")
		}
		if got := text(`#ban-count`); got != "199 in force, 1 ended" {
			t.Errorf("ban count %q", got)
		}

		// A ban of the monitoring network is refused with the rule that protects it.
		run(t, ctx, 10*time.Second,
			chromedp.SendKeys(css(`#ban-form input[name=addr]`), "10.20.3.4"),
			chromedp.SendKeys(css(`#ban-form input[name=reason]`), "probing every port"),
			chromedp.Click(css(`#ban-form button[type=submit]`)),
			chromedp.WaitVisible(css(`#ban-refused`)),
		)
		if got := text(`#ban-refused`); !strings.Contains(got, "Refused: 10.20.3.4 is allowlisted by intrusion.allowlist[0] 10.20.0.0/16 at /etc/portpatrol/portpatrol.yaml:41") {
			t.Errorf("refusal %q, want the allowlist rule", got)
		}
		// A bad address names the field; a good ban goes through, for the chosen time.
		run(t, ctx, 10*time.Second,
			chromedp.SetValue(css(`#ban-form input[name=addr]`), "203.0.113.300"),
			chromedp.Click(css(`#ban-form button[type=submit]`)),
			chromedp.Poll[chromedp.Void](`document.querySelector('#ban-refused').textContent.includes('addr: "203.0.113.300" is not an IP address')`, chromedp.WithPollingTimeout(5*time.Second)),
			chromedp.SetValue(css(`#ban-form input[name=addr]`), "192.0.2.99"),
			chromedp.SetValue(css(`#ban-form select[name=duration]`), "24h"),
			chromedp.Click(css(`#ban-form button[type=submit]`)),
			chromedp.WaitVisible(css(`#bans tr[data-addr="192.0.2.99"]`)),
		)
		if added, _ := g.writes(); !slices.Equal(added, []string{"192.0.2.99 alice"}) {
			t.Errorf("added %v, want 192.0.2.99 by alice", added)
		}
		if row := text(`#bans tr[data-addr="192.0.2.99"]`); !strings.Contains(row, "24h0m0s") || !strings.Contains(row, "by hand") {
			t.Errorf("new ban row %q", row)
		}
		if !get(t, ctx, chromedp.Evaluate[bool](`document.querySelector('#ban-refused').hidden`)) {
			t.Error("the refusal is still shown after a ban went through")
		}
		if takeShots() {
			// The operator's page at scale, a refusal showing.
			addSecurityAlerts(w, g, 8)
			run(t, ctx, 20*time.Second, chromedp.EmulateViewport(1280, 1700), chromedp.Reload(),
				chromedp.WaitVisible(css(`#bans[data-rendered="200"]`)), chromedp.WaitVisible(css(`#sec-alerts table`)),
				chromedp.SendKeys(css(`#ban-form input[name=addr]`), "10.20.3.4"),
				chromedp.SendKeys(css(`#ban-form input[name=reason]`), "probing every port"),
				chromedp.Click(css(`#ban-form button[type=submit]`)),
				chromedp.WaitVisible(css(`#ban-refused`)))
			screenshot(t, ctx, "security")
			run(t, ctx, 5*time.Second, chromedp.EmulateViewport(1280, 900))
		}
	})

	t.Run("the state says what is missing and why", func(t *testing.T) {
		w, g := smallWorld(), newGuard(0, 0)
		g.state.DryRun = true
		g.state.Conntrack = api.IntrusionPart{Reason: "conntrack events unavailable: netlink dial: operation not permitted"}
		// A ban decided in dry run is listed as such, and counted apart.
		g.bans["203.0.113.66"] = api.Ban{Addr: "203.0.113.66", DryRun: true, Kind: "fast_scan", Reason: "scan: 30 distinct ports", Actor: "portpatrol",
			Created: time.Now().Add(-time.Minute), Expires: time.Now().Add(9 * time.Minute), Duration: "10m0s", Count: 1}
		g.bans["203.0.113.67"] = api.Ban{Addr: "203.0.113.67", DryRun: true, Kind: "fast_scan", Reason: "scan: 30 distinct ports", Actor: "portpatrol",
			Created: time.Now().Add(-time.Hour), Expires: time.Now().Add(-50 * time.Minute), Duration: "10m0s", Count: 1}
		url := serveSecurity(t, w, g)
		run(t, ctx, 20*time.Second, chromedp.Navigate(url+"/#/security"), chromedp.WaitVisible(css(`#sec-state[data-state="degraded"]`)))
		got := text(`#sec-state`)
		for _, want := range []string{"conntrack unavailable", "operation not permitted", "dry run"} {
			if !strings.Contains(got, want) {
				t.Errorf("state %q does not say %q", got, want)
			}
		}
		run(t, ctx, 10*time.Second, chromedp.WaitVisible(css(`#bans[data-rendered="1"]`)))
		if got := text(`#ban-count`); got != "1 in force (1 in dry run: not enforced), 1 ended" {
			t.Errorf("ban count %q", got)
		}
		if row := text(`#bans tr[data-addr="203.0.113.66"]`); !strings.Contains(row, "dry run") || !strings.Contains(row, "left") {
			t.Errorf("dry-run ban row %q, want it marked dry run with its time left", row)
		}
		// With intrusion detection off the page says how to turn it on.
		off := serveSecurity(t, w, nil)
		run(t, ctx, 20*time.Second, chromedp.Navigate(off+"/#/security"), chromedp.WaitVisible(css(`#sec-state[data-state="off"]`)))
		if got := text(`#sec-state`); !strings.Contains(got, "intrusion.enabled: true") {
			t.Errorf("off state %q", got)
		}
	})
}
