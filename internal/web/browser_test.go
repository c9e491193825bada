package web_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/web"
)

var screenshots = flag.Bool("screenshots", os.Getenv("PORTPATROL_SCREENSHOTS") != "",
	"write screenshots of the main pages to docs/screenshots (or set PORTPATROL_SCREENSHOTS=1)")

// The tokens of the browser tests.
var tokens = api.StaticTokens{
	{ID: "t1", Name: "wallboard", Role: api.RoleViewer, Secret: "ppt_viewer_secret"},
	{ID: "t2", Name: "alice", Role: api.RoleOperator, Secret: "ppt_operator_secret"},
}

// findChromium returns the browser to drive, skipping the test when there is none
// (failing instead under CI=true, where it must be installed).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found; CI must install it (apt-get install -y chromium)")
	}
	t.Skip("chromium not found; install it to run the browser tests (apt-get install -y chromium)")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and returns a context for
// one tab; everything is stopped at cleanup.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := findChromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelB(); cancelA() })
	// The first call starts the browser; it must not carry a timeout (see chromedp.Run).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// serve runs the real API and dashboard over w on 127.0.0.1.
func serve(t *testing.T, w *world, b *api.Broker) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(api.Prefix, api.New(api.Config{
		Targets: w, History: w, Alerts: w, AlertActions: w, Silences: w, Windows: w, Deliveries: w, Audits: w,
		StatusNotes: w, Learned: w, Bands: w, Tokens: tokens, Broker: b, AnonymousRead: true, Heartbeat: 5 * time.Second,
	}))
	mux.Handle("/", web.New(web.Config{}))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { b.Close(); srv.Close() })
	return srv.URL
}

// run runs actions with a deadline.
func run(t *testing.T, ctx context.Context, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// get runs one action that returns a value.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// css names a CSS selector for chromedp's queries.
type css = chromedp.CSS

const (
	dbID  = "postgres://db-1.orders.internal:5432"
	webID = "https://shop.example.internal:443/health"
)

// smallWorld is a fleet of a few services, one database refusing connections.
func smallWorld() *world {
	w := newWorld()
	now := time.Now()
	services := []struct {
		svc, scheme string
		port, n     int
	}{
		{"orders", "postgres", 5432, 3}, {"shop", "https", 443, 6}, {"cache", "redis", 6379, 4},
		{"search", "http", 9200, 5}, {"mail", "smtp", 25, 2}, {"auth", "grpc", 7443, 4}, {"queue", "amqp", 5672, 3},
	}
	for _, s := range services {
		for i := 1; i <= s.n; i++ {
			id := fmt.Sprintf("%s://%s-%d.internal:%d", s.scheme, s.svc, i, s.port)
			switch {
			case s.svc == "orders":
				id = fmt.Sprintf("postgres://db-%d.orders.internal:%d", i, s.port)
			case s.svc == "shop" && i == 1:
				id = webID
			}
			w.addTarget(patrol.TargetState{Target: id, Status: patrol.StatusUp, Since: now.Add(-26 * time.Hour),
				Labels: map[string]string{"service": s.svc, "env": "prod", "team": map[bool]string{true: "data", false: "web"}[s.svc == "orders" || s.svc == "search"]},
				Last:   patrol.ResultSummary{Time: now, Class: patrol.ClassOK, Duration: 2 * time.Millisecond}})
		}
	}
	w.setStatus(dbID, patrol.StatusDown, patrol.ClassRefused, "connect 10.0.3.7:5432: connection refused")
	w.setStatus("redis://cache-3.internal:6379", patrol.StatusUp, patrol.ClassOverloaded, "")
	w.addAlert(patrol.Alert{ID: "a-db1", Fingerprint: "unreachable@" + dbID, Rule: "unreachable", Class: patrol.AlertUnreachable,
		Severity: patrol.P0, State: patrol.AlertFiring, Target: dbID, Summary: dbID + " refuses connections (3 of 3 probes)",
		StartsAt: now.Add(-7 * time.Minute), FiredAt: now.Add(-6 * time.Minute), Deadline: now.Add(-time.Minute), EscalationStep: 1,
		Told: []string{"slack-noc", "pagerduty-sre"}}, "noc-then-sre")
	w.addAlert(patrol.Alert{ID: "a-cache3", Fingerprint: "capacity@redis://cache-3.internal:6379", Rule: "capacity", Class: patrol.AlertCapacity,
		Severity: patrol.P2, State: patrol.AlertFiring, Target: "redis://cache-3.internal:6379", Summary: "redis://cache-3.internal:6379 at 96% of maxclients (9600/10000)",
		StartsAt: now.Add(-12 * time.Minute), FiredAt: now.Add(-12 * time.Minute), Deadline: now.Add(18 * time.Minute),
		Told: []string{"slack-noc"}}, "noc")
	w.addAlert(patrol.Alert{ID: "a-search2", Fingerprint: "slow@http://search-2.internal:9200", Rule: "slow", Class: patrol.AlertSlow,
		Severity: patrol.P1, State: patrol.AlertSilenced, Target: "http://search-2.internal:9200", Summary: "http://search-2.internal:9200 p95 840 ms over 500 ms",
		StartsAt: now.Add(-40 * time.Minute), FiredAt: now.Add(-39 * time.Minute), Deadline: now.Add(-25 * time.Minute), MutedBy: "silence s1"}, "noc")
	w.addAlert(patrol.Alert{ID: "a-db1-old", Fingerprint: "unreachable@" + dbID, Rule: "unreachable", Class: patrol.AlertUnreachable,
		Severity: patrol.P0, State: patrol.AlertResolved, Target: dbID, Summary: dbID + " timed out",
		StartsAt: now.Add(-50 * time.Minute), FiredAt: now.Add(-49 * time.Minute), ResolvedAt: now.Add(-38 * time.Minute), ResolvedBy: "auto",
		Told: []string{"slack-noc"}}, "noc")
	w.silences = []patrol.Silence{{ID: "s1", Matchers: patrol.Matchers{{Name: "service", Op: patrol.MatchEqual, Value: "search"}}, Author: "alice",
		Comment: "reindexing, OPS-812", StartsAt: now.Add(-45 * time.Minute), EndsAt: now.Add(75 * time.Minute), CreatedAt: now.Add(-45 * time.Minute)}}
	w.windows = []api.Window{{Name: "sunday-patching", Schedule: "Sun 02:00-04:00 Europe/Berlin", Matchers: []string{"env=prod"},
		From: now.Add(50 * time.Hour), Until: now.Add(52 * time.Hour)}}
	w.audits = []api.AuditReport{edgeAudit(now.Add(-4 * time.Minute))}
	return w
}

// edgeAudit is one audit of two hosts: this one, with an allowed SSH, an unauthorised
// Redis on every address and a Postgres owned by the wrong user; and a gateway whose
// required HTTPS port is closed and whose exception ran out.
func edgeAudit(at time.Time) api.AuditReport {
	return api.AuditReport{Name: "edge", Policy: "/etc/portpatrol/ports.yaml", Time: at,
		Hosts: []api.AuditHost{
			{Host: "local", Addr: "127.0.0.1", Inventory: true, PortsScanned: 1024, Required: []uint16{22},
				Open: []api.AuditOpenPort{
					{Port: 22, Verdict: "allowed", Rule: "ports.yaml:9:9", Listeners: []api.AuditListener{{Bind: "0.0.0.0:22", Process: "sshd", PID: 812, User: "root"}}},
					{Port: 5432, Verdict: "allowed", Rule: "ports.yaml:11:9", Listeners: []api.AuditListener{{Bind: "127.0.0.1:5432", Process: "postgres", PID: 1290, User: "alice"}}},
					{Port: 6379, Verdict: "unauthorised", Listeners: []api.AuditListener{{Bind: "0.0.0.0:6379", Process: "redis-server", PID: 2211, User: "redis"}}},
					{Port: 8080, Verdict: "exception", Rule: "ports.yaml:30:5"},
				}},
			{Host: "gw-1.edge.internal", Addr: "10.0.9.1", PortsScanned: 1024, Required: []uint16{443},
				Open:  []api.AuditOpenPort{{Port: 80, Verdict: "allowed", Rule: "ports.yaml:18:9"}},
				Notes: []string{"port 80: owner not checked (no local inventory for gw-1.edge.internal)"}},
		},
		Findings: []api.AuditFinding{
			{Kind: "wrong_owner", Severity: "P1", Host: "local", Addr: "127.0.0.1", Port: 5432, Process: "postgres", User: "alice", Bind: "127.0.0.1:5432",
				Rule: "ports.yaml:11:9", Message: "port 5432 is owned by postgres (user alice); the policy wants user postgres"},
			{Kind: "unauthorised_open", Severity: "P1", Host: "local", Addr: "127.0.0.1", Port: 6379, Process: "redis-server", User: "redis", Bind: "0.0.0.0:6379",
				Message: "port 6379 is open but no allow rule permits it"},
			{Kind: "required_closed", Severity: "P0", Host: "gw-1.edge.internal", Addr: "10.0.9.1", Port: 443, Rule: "ports.yaml:20:9",
				Message: "port 443 is required but closed"},
			{Kind: "exception_expired", Severity: "P3", Host: "gw-1.edge.internal", Addr: "10.0.9.1", Port: 8443, Rule: "ports.yaml:34:5",
				Message: `exception for port 8443 (owner netops, reason "migration") expired 2026-02-01`},
		}}
}

func TestBrowser(t *testing.T) {
	ctx := newBrowser(t)

	t.Run("overview shows the configured targets", func(t *testing.T) {
		w := smallWorld()
		url := serve(t, w, api.NewBroker(api.BrokerConfig{}))
		run(t, ctx, 20*time.Second,
			chromedp.Navigate(url+"/"),
			chromedp.WaitVisible(css(`#groups[data-rendered]`)),
		)
		if n := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('a.tile').length`)); n != 27 {
			t.Errorf("got %d tiles, want 27", n)
		}
		// The dense view labels a cell with what tells it apart in its group and folds
		// the groups where all is well.
		if got := get(t, ctx, chromedp.Text(css(tileSel(dbID)))); got != "db-1" {
			t.Errorf("dense label of %s: got %q, want db-1", dbID, got)
		}
		if got := get(t, ctx, chromedp.Text(css(tileSel("redis://cache-3.internal:6379")))); got != "cache-3" {
			t.Errorf("dense label of cache-3: got %q, want cache-3", got)
		}
		folded := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#groups .group.folded')].map((g) => g.dataset.key).sort()`))
		if want := []string{"auth", "mail", "queue", "shop"}; !slices.Equal(folded, want) {
			t.Errorf("folded groups %v, want %v (the all-green ones)", folded, want)
		}
		if cls := tileClass(t, ctx, dbID); !strings.Contains(cls, "sev-P0") {
			t.Errorf("db tile class %q, want sev-P0", cls)
		}
		// The tile view shows every name whole.
		run(t, ctx, 10*time.Second, chromedp.Click(css(`#views button[data-v="tiles"]`)), chromedp.WaitVisible(css(`#groups.tiled[data-rendered="27"]`)))
		text := get(t, ctx, chromedp.Text(css(`#groups`)))
		for _, want := range []string{"orders", "db-1.orders.internal:5432", "shop.example.internal:443/health", "cache-3.internal:6379"} {
			if !strings.Contains(text, want) {
				t.Errorf("overview does not show %q", want)
			}
		}
	})

	t.Run("kubernetes targets group by namespace and Service", func(t *testing.T) {
		w := newWorld()
		for i, id := range []string{"tcp://10.96.0.11:8000", "tcp://10.0.0.7:8000", "tcp://10.96.0.12:6379"} {
			svc := map[bool]string{true: "api", false: "cache"}[i < 2]
			w.addTarget(patrol.TargetState{Target: id, Status: patrol.StatusUp, Since: time.Now(),
				Labels: map[string]string{"namespace": "shop", "service": svc, "kube_layer": "endpoint"}})
		}
		url := serve(t, w, api.NewBroker(api.BrokerConfig{}))
		run(t, ctx, 20*time.Second,
			chromedp.Navigate(url+"/"),
			chromedp.WaitVisible(css(`#groups[data-rendered]`)),
		)
		text := get(t, ctx, chromedp.Text(css(`#groups`)))
		for _, want := range []string{"shop/api", "shop/cache"} {
			if !strings.Contains(text, want) {
				t.Errorf("overview has no group %q:\n%s", want, text)
			}
		}
	})

	t.Run("a target going down turns its tile red without a reload", func(t *testing.T) {
		w := smallWorld()
		b := api.NewBroker(api.BrokerConfig{})
		url := serve(t, w, b)
		run(t, ctx, 20*time.Second,
			chromedp.Navigate(url+"/"),
			chromedp.WaitVisible(css(`#groups[data-rendered]`)),
			chromedp.WaitVisible(css(`#live.on`)),
		)
		get(t, ctx, chromedp.Evaluate[int](`window.__noReload = 42`))
		if cls := tileClass(t, ctx, webID); !strings.Contains(cls, "s-up") {
			t.Fatalf("shop tile class %q, want s-up", cls)
		}
		st := w.setStatus(webID, patrol.StatusDown, patrol.ClassTimeout, "no answer within 5s")
		if err := b.PublishTarget(st); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		run(t, ctx, 10*time.Second, chromedp.WaitVisible(css(tileSel(webID)+`.s-down`)))
		t.Logf("tile turned red %s after the event was published", time.Since(start).Round(time.Millisecond))
		if marker := get(t, ctx, chromedp.Evaluate[int](`window.__noReload`)); marker != 42 {
			t.Error("the page reloaded")
		}
		// An alert for it colours it by severity.
		a := patrol.Alert{ID: "a-shop", Target: webID, Severity: patrol.P1, State: patrol.AlertFiring, Summary: "slow", StartsAt: time.Now()}
		w.addAlert(a, "noc")
		if err := b.PublishAlert(a); err != nil {
			t.Fatal(err)
		}
		run(t, ctx, 10*time.Second, chromedp.WaitVisible(css(tileSel(webID)+`.sev-P1`)))
	})

	t.Run("a viewer sees no write buttons; an operator acknowledges", func(t *testing.T) {
		w := smallWorld()
		url := serve(t, w, api.NewBroker(api.BrokerConfig{}))
		ack := css(`#open button[data-act="ack"][data-id="a-db1"]`)
		// Anonymous (a loopback viewer), then a viewer token: rows but no buttons.
		for _, secret := range []string{"", tokens[0].Secret} {
			steps := []chromedp.Action[chromedp.Void]{chromedp.Navigate(url + "/#/incidents"), chromedp.WaitVisible(css(`#view[data-role="viewer"] #open tr[data-id="a-db1"]`))}
			if secret != "" {
				steps = append(steps, chromedp.Evaluate[chromedp.Void](`document.querySelector('#view').dataset.role = 'redrawing'`),
					chromedp.SendKeys(css(`#token-input`), secret), chromedp.Click(css(`#token-form button[type=submit]`)),
					chromedp.WaitVisible(css(`#who[data-role="viewer"]`)), chromedp.WaitVisible(css(`#view[data-role="viewer"] #open tr[data-id="a-db1"]`)))
			}
			run(t, ctx, 20*time.Second, steps...)
			n := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#incidents button[data-act], #bulk-ack, #silence-form, #note-form, input[data-pick]').length`))
			if n != 0 {
				t.Errorf("viewer (token %q) sees %d write controls, want none", secret, n)
			}
			if got := get(t, ctx, chromedp.Text(css(`#read-only`))); !strings.Contains(got, "operator token") {
				t.Errorf("viewer hint %q", got)
			}
		}
		if got := w.ackedBy(); len(got) != 0 {
			t.Fatalf("a viewer's visit acknowledged %v", got)
		}
		run(t, ctx, 20*time.Second,
			chromedp.SendKeys(css(`#token-input`), tokens[1].Secret),
			chromedp.Click(css(`#token-form button[type=submit]`)),
			chromedp.WaitVisible(css(`#who[data-role="operator"]`)),
			chromedp.WaitVisible(ack),
			chromedp.Click(ack),
			chromedp.WaitVisible(css(`#banner.ok`)),
		)
		banner := get(t, ctx, chromedp.Text(css(`#banner`)))
		run(t, ctx, 10*time.Second, chromedp.WaitVisible(css(`#open tr[data-id="a-db1"] .badge.acknowledged`)))
		row := get(t, ctx, chromedp.Text(css(`#open tr[data-id="a-db1"]`)))
		if banner != "Acknowledged." {
			t.Errorf("operator ack: banner %q", banner)
		}
		if got := w.ackedBy(); len(got) != 1 || got[0] != "a-db1 alice" {
			t.Errorf("acks %v, want a-db1 by alice", got)
		}
		if !strings.Contains(row, "acknowledged by alice") {
			t.Errorf("row %q, want it to say who acknowledged", row)
		}
	})

	t.Run("10000 targets: first paint and a live update of 1,000 targets, measured", func(t *testing.T) {
		w := newWorld()
		now := time.Now()
		for i := 0; i < 10000; i++ {
			st := patrol.StatusUp
			if i%97 == 0 {
				st = patrol.StatusDown
			}
			w.addTarget(patrol.TargetState{Target: fmt.Sprintf("tcp://node-%04d.dc%d.internal:%d", i/8, i%3+1, 8000+i%8), Status: st, Since: now,
				Labels: map[string]string{"service": fmt.Sprintf("svc-%02d", i%60)},
				Last:   patrol.ResultSummary{Time: now, Class: patrol.ClassOK, Duration: time.Millisecond}})
		}
		// Room for a burst of 1,000 events without dropping the page's stream.
		b := api.NewBroker(api.BrokerConfig{Buffer: 4096, History: 4096})
		url := serve(t, w, b)
		for _, view := range []string{"dense", "tiles"} {
			run(t, ctx, 20*time.Second, chromedp.Navigate(url+"/"),
				chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`localStorage.setItem('portpatrol.overview.view', %q)`, view)))
			start := time.Now()
			run(t, ctx, 60*time.Second,
				chromedp.Navigate(url+"/"),
				chromedp.WaitVisible(css(`#live.on`)),
				func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
					_, err := chromedp.Poll[chromedp.Void](`document.querySelector('#groups')?.dataset.rendered === '10000'`,
						chromedp.WithPollingTimeout(50*time.Second))(ctx, tg)
					return chromedp.Void{}, err
				},
			)
			wall := time.Since(start)
			fcp := get(t, ctx, chromedp.Evaluate[float64](`performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1`))
			first := get(t, ctx, chromedp.Evaluate[float64](`window.__pp.overviewFirstTiles`))
			all := get(t, ctx, chromedp.Evaluate[float64](`window.__pp.overviewAllTiles`))
			longest := get(t, ctx, chromedp.Evaluate[float64](`window.__pp.longestTask`))
			cells := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('a.tile').length`))
			if cells != 10000 {
				t.Errorf("%s: got %d cells, want 10000", view, cells)
			}
			// A live update of 1,000 targets: from the first event's arrival to the
			// frame in which the last of the 1,000 cells shows its new state.
			ids := make([]string, 0, 1000)
			for i := 1; i < 10000 && len(ids) < 1000; i += 9 {
				if w.targets[i].Status == patrol.StatusUp {
					ids = append(ids, w.targets[i].Target)
				}
			}
			run(t, ctx, 10*time.Second, chromedp.Evaluate[chromedp.Void](`(() => {
				window.__pp.firstTargetEvent = undefined; window.__pp.targetEvents = 0; window.__pp.liveDone = undefined; window.__pp.longestTask = 0;
				const want = document.querySelectorAll('a.tile.s-down').length + `+strconv.Itoa(len(ids))+`;
				const check = () => { if (document.querySelectorAll('a.tile.s-down').length >= want) window.__pp.liveDone = performance.now(); else requestAnimationFrame(check); };
				requestAnimationFrame(check); })()`))
			for _, id := range ids {
				if err := b.PublishTarget(w.setStatus(id, patrol.StatusDown, patrol.ClassReset, "connection reset by peer")); err != nil {
					t.Fatal(err)
				}
			}
			run(t, ctx, 30*time.Second, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
				_, err := chromedp.Poll[chromedp.Void](`window.__pp.liveDone !== undefined`, chromedp.WithPollingTimeout(25*time.Second))(ctx, tg)
				return chromedp.Void{}, err
			})
			live := get(t, ctx, chromedp.Evaluate[float64](`window.__pp.liveDone - window.__pp.firstTargetEvent`))
			liveLongest := get(t, ctx, chromedp.Evaluate[float64](`window.__pp.longestTask`))
			t.Logf("10,000 targets, %s view: first contentful paint %.0f ms, first cells %.0f ms, all cells %.0f ms after navigation start; longest task %.0f ms; wall %s",
				view, fcp, first, all, longest, wall.Round(time.Millisecond))
			tasks := "no task over 50 ms meanwhile"
			if liveLongest > 0 {
				tasks = fmt.Sprintf("longest task meanwhile %.0f ms", liveLongest)
			}
			t.Logf("10,000 targets, %s view: live update of 1,000 targets shown %.0f ms after the first event arrived (%s)", view, live, tasks)
			// Put the world back for the next view.
			for _, id := range ids {
				w.setStatus(id, patrol.StatusUp, patrol.ClassOK, "")
			}
		}
	})

	t.Run("exposure shows each host's open ports against the policy", func(t *testing.T) {
		w := smallWorld()
		url := serve(t, w, api.NewBroker(api.BrokerConfig{}))
		run(t, ctx, 20*time.Second,
			chromedp.Navigate(url+"/"),
			chromedp.WaitVisible(css(`#groups[data-rendered]`)),
			chromedp.Click(css(`a[data-nav="exposure"]`)),
			chromedp.WaitVisible(css(`#exposure[data-rendered="1"]`)),
		)
		host := get(t, ctx, chromedp.Text(css(`.audit[data-audit="edge"] .audit-host[data-host="local"]`)))
		for _, want := range []string{"local", "sshd", "redis-server", "0.0.0.0:6379"} {
			if !strings.Contains(host, want) {
				t.Errorf("host section does not show %q:\n%s", want, host)
			}
		}
		rowState := func(port int) string {
			t.Helper()
			return get(t, ctx, chromedp.Text(css(fmt.Sprintf(`.audit-host[data-host="local"] tr[data-port="%d"] td:nth-child(3)`, port))))
		}
		if got := rowState(22); got != "allowed required" {
			t.Errorf("port 22: got state %q, want allowed (and required)", got)
		}
		if got := rowState(6379); got != "unauthorised" {
			t.Errorf("port 6379: got state %q, want unauthorised", got)
		}
		if cls := get(t, ctx, chromedp.AttributeValue(css(`tr[data-port="6379"] [data-kind="unauthorised_open"]`), "class")).Value; !strings.Contains(cls, "P1") {
			t.Errorf("unauthorised badge class %q, want the P1 colour", cls)
		}
		gw := get(t, ctx, chromedp.Text(css(`.audit-host[data-host="gw-1.edge.internal"]`)))
		for _, want := range []string{"required, closed", "exception expired", "owner not checked"} {
			if !strings.Contains(gw, want) {
				t.Errorf("gateway section does not show %q:\n%s", want, gw)
			}
		}

		// Without audits the page says how to add one.
		w.mu.Lock()
		w.audits = nil
		w.mu.Unlock()
		run(t, ctx, 20*time.Second,
			chromedp.Navigate(url+"/"),
			chromedp.WaitVisible(css(`#groups[data-rendered]`)),
			chromedp.Click(css(`a[data-nav="exposure"]`)),
			chromedp.WaitVisible(css(`#exposure[data-rendered="0"]`)),
		)
		if got := get(t, ctx, chromedp.Text(css(`#exposure`))); !strings.Contains(got, "No scheduled audits: add audits: to the configuration, see docs/security.md") {
			t.Errorf("empty state %q", got)
		}
	})

	t.Run("a target's chart draws its learned band when it has one", func(t *testing.T) {
		w := smallWorld()
		url := serve(t, w, api.NewBroker(api.BrokerConfig{}))
		page := func(id string) (band bool, key string) {
			run(t, ctx, 20*time.Second,
				chromedp.Navigate(url+"/#/target/"+strings.ReplaceAll(id, "/", "%2F")),
				chromedp.WaitVisible(css(`#chart svg`)),
			)
			n := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#chart svg path.band').length`))
			hidden := get(t, ctx, chromedp.Evaluate[bool](`document.querySelector('#band-key').hidden`))
			return n == 1, map[bool]string{true: "hidden", false: "shown"}[hidden]
		}
		if band, key := page(dbID); !band || key != "shown" {
			t.Errorf("%s: band drawn %v, legend %s; want the band and its legend", dbID, band, key)
		}
		if band, key := page(webID); band || key != "hidden" {
			t.Errorf("%s (still learning): band drawn %v, legend %s; want neither", webID, band, key)
		}
	})

	if *screenshots {
		t.Run("screenshots", func(t *testing.T) { takeScreenshots(t, ctx) })
	}
}

// tileClass returns the class attribute of a target's tile.
func tileClass(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	return get(t, ctx, chromedp.AttributeValue(css(tileSel(id)), "class")).Value
}

// tileSel selects the tile of a target.
func tileSel(id string) string { return fmt.Sprintf(`a.tile[data-id=%q]`, id) }

// takeScreenshots writes the main pages to docs/screenshots.
func takeScreenshots(t *testing.T, ctx context.Context) {
	w := smallWorld()
	url := serve(t, w, api.NewBroker(api.BrokerConfig{}))
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := func(name string, width, height int64, page string, ready string) {
		run(t, ctx, 30*time.Second,
			chromedp.EmulateViewport(width, height),
			chromedp.Navigate(url+"/"+page),
			chromedp.WaitVisible(css(ready)),
			chromedp.Sleep(500*time.Millisecond), // let the chart and countdowns settle
		)
		png := get(t, ctx, chromedp.CaptureScreenshot())
		path := filepath.Join(dir, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d KB)", path, len(png)/1024)
	}
	// The tile view for the small world: the dense view is shown at 1,000 targets.
	run(t, ctx, 10*time.Second, chromedp.Navigate(url+"/"), chromedp.Evaluate[chromedp.Void](`localStorage.setItem('portpatrol.overview.view', 'tiles')`))
	shot("overview", 1280, 800, "", `#groups[data-rendered]`)
	shot("target", 1280, 900, "#/target/"+strings.ReplaceAll(dbID, "/", "%2F"), `#chart svg`)
	shot("incidents", 1280, 1000, "#/incidents", `#deliveries table`)
	run(t, ctx, 10*time.Second, chromedp.Evaluate[chromedp.Void](`localStorage.removeItem('portpatrol.overview.view')`))
	shot("overview-phone", 390, 844, "", `#groups[data-rendered]`)
	run(t, ctx, 5*time.Second, chromedp.EmulateViewport(1280, 900))
}

// takeShots says whether this run writes screenshots.
func takeShots() bool { return *screenshots }

// screenshot writes the page as it is to docs/screenshots/NAME.png.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	run(t, ctx, 10*time.Second, chromedp.Sleep(400*time.Millisecond)) // let countdowns and fonts settle
	png := get(t, ctx, chromedp.CaptureScreenshot())
	path := filepath.Join("..", "..", "docs", "screenshots", name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d KB)", path, len(png)/1024)
}
