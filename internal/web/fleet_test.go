package web_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/status"
)

// fleetService is one service of the 1,000-target fleet.
type fleetService struct {
	name, scheme, host string // host pattern with %02d for the instance
	port, n            int
	team, ns           string
}

// fleetServices add up to 1,000 targets: 40 services of VMs and Kubernetes.
var fleetServices = func() []fleetService {
	var out []fleetService
	vm := []string{"orders", "payments", "checkout", "cart", "catalog", "search", "auth", "users", "billing", "invoices",
		"mail", "notify", "cache", "sessions", "queue", "events", "reports", "export", "import", "media",
		"thumbs", "geo", "pricing", "stock", "shipping", "returns", "reviews", "ads", "recs", "audit"}
	schemes := []struct {
		scheme string
		port   int
	}{{"https", 443}, {"postgres", 5432}, {"redis", 6379}, {"tcp", 8080}, {"http", 9200}, {"grpc", 7443}}
	for i, s := range vm {
		sc := schemes[i%len(schemes)]
		out = append(out, fleetService{name: s, scheme: sc.scheme, host: s + "-%02d.prod.eu-west.internal", port: sc.port, n: 25,
			team: []string{"web", "data", "platform"}[i%3]})
	}
	for i, s := range []string{"api", "frontend", "worker", "kafka", "zookeeper", "prometheus", "grafana", "ingress", "coredns", "vault"} {
		out = append(out, fleetService{name: s, scheme: "tcp", host: "10.96.%d.%%d", port: 8000 + i, n: 25, ns: []string{"shop", "data", "infra"}[i%3],
			team: "platform"})
	}
	for i := range out[30:] {
		out[30+i].host = fmt.Sprintf(out[30+i].host, 10+i)
	}
	return out
}()

// fleetWorld is 1,000 targets across 40 services, with a payments outage, a slow
// search, a cache near its limit and a flapping queue; the open incidents carry host,
// service and alertname labels; an audit finds 950 ports of one process open.
func fleetWorld() *world {
	w := newWorld()
	now := time.Now()
	for _, s := range fleetServices {
		for i := 1; i <= s.n; i++ {
			host := fmt.Sprintf(s.host, i)
			id := fmt.Sprintf("%s://%s:%d", s.scheme, host, s.port)
			labels := map[string]string{"service": s.name, "team": s.team, "env": "prod", "host": host}
			if s.ns != "" {
				labels["namespace"] = s.ns
				labels["kube_layer"] = "endpoint"
				delete(labels, "host")
			}
			w.addTarget(patrol.TargetState{Target: id, Status: patrol.StatusUp, Since: now.Add(-time.Duration(i) * time.Hour), Labels: labels,
				Last: patrol.ResultSummary{Time: now, Class: patrol.ClassOK, Duration: time.Duration(800+37*i) * time.Microsecond}})
		}
	}
	fid := func(svc string, i int) string {
		for _, s := range fleetServices {
			if s.name == svc {
				return fmt.Sprintf("%s://%s:%d", s.scheme, fmt.Sprintf(s.host, i), s.port)
			}
		}
		panic(svc)
	}
	n := 0
	alert := func(id string, sev patrol.Severity, class patrol.AlertClass, rule, summary string, age time.Duration, state patrol.AlertState) {
		t := w.targets[w.index[id]]
		n++
		a := patrol.Alert{ID: fmt.Sprintf("f%03d", n), Fingerprint: rule + "@" + id, Rule: rule, Class: class, Severity: sev, State: state, Target: id,
			Labels:  map[string]string{"service": t.Labels["service"], "host": t.Labels["host"], "alertname": rule},
			Summary: summary, StartsAt: now.Add(-age), FiredAt: now.Add(-age + 30*time.Second), Deadline: now.Add(-age).Add(sev.Deadline()),
			Told: []string{"slack-noc"}}
		if state == patrol.AlertAcknowledged {
			a.AckedBy, a.AckedAt = "bob", now.Add(-age/2)
		}
		w.addAlert(a, "noc-then-sre")
	}
	for i := 3; i <= 7; i++ {
		id := fid("payments", i)
		w.setStatus(id, patrol.StatusDown, patrol.ClassRefused, "connect: connection refused")
		alert(id, patrol.P0, patrol.AlertUnreachable, "unreachable", id+" refuses connections (3 of 3 probes)", time.Duration(i)*time.Minute, patrol.AlertFiring)
	}
	for _, i := range []int{2, 9, 14} {
		id := fid("search", i)
		alert(id, patrol.P1, patrol.AlertSlow, "slow", id+" p95 840 ms over 500 ms", 20*time.Minute, patrol.AlertFiring)
	}
	id := fid("cache", 11)
	w.setStatus(id, patrol.StatusUp, patrol.ClassOverloaded, "")
	alert(id, patrol.P2, patrol.AlertCapacity, "capacity", id+" at 96% of maxclients (9600/10000)", 12*time.Minute, patrol.AlertAcknowledged)
	id = fid("queue", 4)
	w.targets[w.index[id]].Flapping = true
	alert(id, patrol.P3, patrol.AlertAnomaly, "anomaly", id+" connections 4.1σ over the Monday 14:00 baseline", 3*time.Minute, patrol.AlertFiring)
	w.setStatus(fid("kafka", 12), patrol.StatusUnknown, "", "")
	w.audits = []api.AuditReport{edgeAudit(now.Add(-4 * time.Minute)), rangeAudit(now.Add(-2 * time.Minute))}
	return w
}

// rangeAudit is an audit of a build host where one JVM opened 950 ports and Redis
// listens on every address.
func rangeAudit(at time.Time) api.AuditReport {
	h := api.AuditHost{Host: "build-7", Addr: "127.0.0.1", Inventory: true, PortsScanned: 65535, Required: []uint16{22},
		Open: []api.AuditOpenPort{{Port: 22, Verdict: "allowed", Rule: "ports.yaml:9:9", Listeners: []api.AuditListener{{Bind: "0.0.0.0:22", Process: "sshd", PID: 640, User: "root"}}}}}
	a := api.AuditReport{Name: "build-farm", Policy: "/etc/portpatrol/build.yaml", Time: at}
	for p := 20000; p < 20950; p++ {
		h.Open = append(h.Open, api.AuditOpenPort{Port: uint16(p), Verdict: "unauthorised",
			Listeners: []api.AuditListener{{Bind: fmt.Sprintf("0.0.0.0:%d", p), Process: "java", PID: 4242, User: "ci"}}})
		a.Findings = append(a.Findings, api.AuditFinding{Kind: "unauthorised_open", Severity: "P2", Host: "build-7", Addr: "127.0.0.1", Port: uint16(p),
			Process: "java", User: "ci", Bind: fmt.Sprintf("0.0.0.0:%d", p), Message: fmt.Sprintf("port %d is open but no allow rule permits it", p)})
	}
	h.Open = append(h.Open, api.AuditOpenPort{Port: 6379, Verdict: "unauthorised", Listeners: []api.AuditListener{{Bind: "0.0.0.0:6379", Process: "redis-server", PID: 2211, User: "redis"}}})
	a.Findings = append(a.Findings, api.AuditFinding{Kind: "public_bind", Severity: "P0", Host: "build-7", Addr: "127.0.0.1", Port: 6379,
		Process: "redis-server", User: "redis", Bind: "0.0.0.0:6379", Message: "redis-server (an internal service) listens on 0.0.0.0:6379, every address"})
	slices.SortFunc(h.Open, func(x, y api.AuditOpenPort) int { return int(x.Port) - int(y.Port) })
	a.Hosts = []api.AuditHost{h}
	return a
}

func TestFleet(t *testing.T) {
	ctx := newBrowser(t)
	viewport := func(w, h int64) chromedp.Action[chromedp.Void] { return chromedp.EmulateViewport(w, h) }
	t.Cleanup(func() { _, _ = chromedp.Run(ctx, chromedp.EmulateViewport(1280, 900)) })

	t.Run("the dense overview shows 1,000 targets on one 1400x900 screen", func(t *testing.T) {
		w := fleetWorld()
		url := serve(t, w, api.NewBroker(api.BrokerConfig{}))
		run(t, ctx, 30*time.Second, viewport(1400, 900), chromedp.Navigate(url+"/"), chromedp.WaitVisible(css(`#groups[data-rendered="1000"]`)))
		// Every cell lies inside the first screen, without scrolling.
		inside := get(t, ctx, chromedp.Evaluate[int](`[...document.querySelectorAll('#groups a.tile')].filter((e) => {
			const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && r.top >= 0 && r.bottom <= innerHeight && r.right <= innerWidth; }).length`))
		if inside != 1000 {
			t.Errorf("%d of 1000 cells are on the first 1400x900 screen, want all", inside)
		}
		// Problem groups come first and open; the all-green ones fold.
		groups := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#groups .group')].map((g) => (g.classList.contains('folded') ? '-' : '+') + g.dataset.key)`))
		if len(groups) != 40 || groups[0] != "+payments" {
			t.Errorf("groups %v, want 40 with payments first", groups)
		}
		open := slices.DeleteFunc(slices.Clone(groups), func(g string) bool { return g[0] == '-' })
		slices.Sort(open)
		if want := []string{"+cache", "+payments", "+queue", "+search", "+shop/kafka"}; !slices.Equal(open, want) {
			t.Errorf("unfolded groups %v, want %v", open, want)
		}
		// A label keeps what tells a target apart within its group.
		if got := get(t, ctx, chromedp.Text(css(tileSel("postgres://payments-05.prod.eu-west.internal:5432")))); got != "payments-05" {
			t.Errorf("label %q, want payments-05", got)
		}
		if got := get(t, ctx, chromedp.Text(css(tileSel("tcp://10.96.13.12:8003")))); got != "12" {
			t.Errorf("label %q, want 12 (the part of 10.96.13.12 that differs)", got)
		}
		// Hover shows the whole story.
		run(t, ctx, 10*time.Second,
			chromedp.Evaluate[chromedp.Void](`document.querySelector('a.tile[data-id="postgres://payments-05.prod.eu-west.internal:5432"]').dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))`),
			chromedp.WaitVisible(css(`#tip`)))
		tip := get(t, ctx, chromedp.Text(css(`#tip`)))
		for _, want := range []string{"postgres://payments-05.prod.eu-west.internal:5432", "down since", "connection refused", "P0 firing"} {
			if !strings.Contains(tip, want) {
				t.Errorf("hover detail %q lacks %q", tip, want)
			}
		}
		// Unfold a green group: its cells get labels.
		run(t, ctx, 10*time.Second, chromedp.Click(css(`#groups .group[data-key="orders"] button.fold`)),
			chromedp.WaitVisible(css(`#groups .group[data-key="orders"]:not(.folded)`)))
		if got := get(t, ctx, chromedp.Text(css(tileSel("https://orders-01.prod.eu-west.internal:443")))); got != "orders-01" {
			t.Errorf("unfolded label %q, want orders-01", got)
		}
		// Group by a label, and by host: never a mix of names and addresses.
		run(t, ctx, 10*time.Second, choose(`#group`, "label:team"),
			chromedp.WaitVisible(css(`#groups .group[data-key="data"]`)))
		keys := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#groups .group')].map((g) => g.dataset.key).sort()`))
		if !slices.Equal(keys, []string{"data", "platform", "web"}) {
			t.Errorf("groups by team %v", keys)
		}
		// By host: the names first, then the Kubernetes endpoints' bare addresses under a
		// heading of their own.
		run(t, ctx, 10*time.Second, choose(`#group`, "host"), chromedp.WaitVisible(css(`#groups h3.kind`)))
		order := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#groups section.group, #groups h3.kind')].map((e) => e.tagName === 'H3' ? '|' : (/^[0-9.]+$/.test(e.dataset.key) ? 'a' : 'n'))`))
		if got := strings.Join(order, ""); got != strings.Repeat("n", 750)+"|"+strings.Repeat("a", 250) {
			t.Errorf("host groups in order (n name, a address, | heading): %s", got)
		}
		if takeShots() {
			run(t, ctx, 10*time.Second, choose(`#group`, "service"),
				chromedp.Click(css(`#groups .group[data-key="orders"] button.fold`)),
				chromedp.WaitVisible(css(`#groups .group[data-key="orders"].folded`)),
				chromedp.WaitVisible(css(`#groups[data-rendered="1000"]`)),
				chromedp.Evaluate[chromedp.Void](`document.querySelector('a.tile[data-id="postgres://payments-05.prod.eu-west.internal:5432"]').dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))`))
			screenshot(t, ctx, "overview-dense")
		}
	})

	t.Run("incidents group by service, host or alert name, filter and acknowledge in bulk", func(t *testing.T) {
		w := fleetWorld()
		url := serve(t, w, api.NewBroker(api.BrokerConfig{}))
		run(t, ctx, 30*time.Second, viewport(1400, 900), chromedp.Navigate(url+"/#/incidents"),
			chromedp.SendKeys(css(`#token-input`), tokens[1].Secret), chromedp.Click(css(`#token-form button[type=submit]`)),
			chromedp.WaitVisible(css(`#who[data-role="operator"]`)), chromedp.WaitVisible(css(`#bulk-ack`)), chromedp.WaitVisible(css(`#open[data-rendered="10"]`)),
			choose(`#open-group`, "service"),
			chromedp.WaitVisible(css(`#open tbody.igroup[data-group="payments"]`)))
		groups := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#open tbody.igroup')].map((g) => g.dataset.group + ' ' + g.querySelectorAll('tr[data-id]').length)`))
		if want := []string{"payments 5", "search 3", "cache 1", "queue 1"}; !slices.Equal(groups, want) {
			t.Errorf("groups %v, want %v", groups, want)
		}
		for _, g := range []struct {
			by   string
			want int
		}{{"host", 10}, {"alertname", 4}} {
			run(t, ctx, 10*time.Second, choose(`#open-group`, g.by))
			if n := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#open tbody.igroup').length`)); n != g.want {
				t.Errorf("by %s: %d groups, want %d", g.by, n, g.want)
			}
		}
		run(t, ctx, 10*time.Second, choose(`#open-group`, "service"))
		// The filter narrows the list.
		run(t, ctx, 10*time.Second, chromedp.SendKeys(css(`#open-q`), "search-09"), chromedp.WaitVisible(css(`#open[data-rendered="1"]`)),
			choose(`#open-q`, ""),
			chromedp.WaitVisible(css(`#open[data-rendered="10"]`)))
		if takeShots() {
			screenshot(t, ctx, "incidents-grouped")
		}
		// Tick the payments group and acknowledge its five alerts at once.
		run(t, ctx, 20*time.Second, chromedp.Click(css(`#open input[data-pick-group="payments"]`)),
			chromedp.WaitVisible(css(`#bulk-ack:not([disabled])`)))
		if got := get(t, ctx, chromedp.Text(css(`#bulk-ack`))); got != "Ack selected (5)" {
			t.Errorf("bulk button %q", got)
		}
		run(t, ctx, 20*time.Second, chromedp.Click(css(`#bulk-ack`)), chromedp.WaitVisible(css(`#banner.ok`)))
		if got := get(t, ctx, chromedp.Text(css(`#banner`))); got != "Acknowledged 5." {
			t.Errorf("banner %q", got)
		}
		acks := w.ackedBy()
		slices.Sort(acks)
		if want := []string{"f001 alice", "f002 alice", "f003 alice", "f004 alice", "f005 alice"}; !slices.Equal(acks, want) {
			t.Errorf("acks %v, want %v", acks, want)
		}
	})

	t.Run("exposure puts the worst first and folds port ranges", func(t *testing.T) {
		w := fleetWorld()
		url := serve(t, w, api.NewBroker(api.BrokerConfig{}))
		run(t, ctx, 30*time.Second, viewport(1400, 900), chromedp.Navigate(url+"/#/exposure"), chromedp.WaitVisible(css(`#exposure[data-rendered="2"]`)))
		rows := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('.audit[data-audit="build-farm"] tbody tr')].map((r) => r.dataset.port + ' ' + r.dataset.state)`))
		if want := []string{"6379 public_bind", "20000-20949 unauthorised_open", "22 allowed"}; !slices.Equal(rows, want) {
			t.Errorf("rows %v, want %v", rows, want)
		}
		text := get(t, ctx, chromedp.Text(css(`.audit[data-audit="build-farm"] tr.range`)))
		if !strings.Contains(text, "950 ports of pid 4242, 20000–20949") {
			t.Errorf("range row %q", text)
		}
		// The edge audit: the host with a P0 comes before the one with P1s.
		hosts := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('.audit[data-audit="edge"] .audit-host')].map((h) => h.dataset.host)`))
		if !slices.Equal(hosts, []string{"gw-1.edge.internal", "local"}) {
			t.Errorf("hosts %v, want the gateway (P0) first", hosts)
		}
		if takeShots() {
			screenshot(t, ctx, "exposure")
		}
	})

	t.Run("listeners being learned replace the empty state", func(t *testing.T) {
		w := newWorld()
		now := time.Now()
		at := func(d time.Duration) *time.Time { v := now.Add(d).UTC().Truncate(time.Second); return &v }
		w.learned = []api.LearnedListener{
			{Addr: "127.0.0.1:1883", Port: 1883, Process: "mosquitto", PID: 123, State: "learning", FirstSeen: now.Add(-40 * time.Second), LearnAt: at(80 * time.Second)},
			{Addr: "0.0.0.0:5432", Port: 5432, Process: "postgres", PID: 611, State: "learning", FirstSeen: now.Add(-70 * time.Second), LearnAt: at(50 * time.Second)},
			{Addr: "127.0.0.1:9222", Port: 9222, Process: "chromium", PID: 9001, State: "gone", FirstSeen: now.Add(-3 * time.Hour),
				LearnedAt: at(-170 * time.Minute), GoneSince: at(-10 * time.Minute), ForgetAt: at(23*time.Hour + 50*time.Minute)},
			{Addr: "127.0.0.1:6379", Port: 6379, Process: "redis-server", PID: 700, State: "learned", FirstSeen: now.Add(-time.Hour), LearnedAt: at(-58 * time.Minute), TargetID: "tcp://127.0.0.1:6379"},
		}
		url := serve(t, w, api.NewBroker(api.BrokerConfig{}))
		run(t, ctx, 20*time.Second, viewport(1280, 800), chromedp.Navigate(url+"/"), chromedp.WaitVisible(css(`#learning tr[data-addr="127.0.0.1:1883"]`)))
		text := get(t, ctx, chromedp.Text(css(`#view`)))
		if strings.Contains(text, "No targets configured yet") {
			t.Errorf("the page still says no targets are configured:\n%s", text)
		}
		if takeShots() {
			screenshot(t, ctx, "overview-learning")
		}
		row := get(t, ctx, chromedp.Text(css(`#learning tr[data-addr="127.0.0.1:1883"]`)))
		if !strings.Contains(row, "mosquitto :1883") || !strings.Contains(row, "learned in 1m") {
			t.Errorf("learning row %q, want mosquitto :1883 learned in 1m…", row)
		}
		if n := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#learning tr').length`)); n != 3 {
			t.Errorf("%d rows, want 3: those learning and the one gone (learned ones are targets)", n)
		}
		gone := get(t, ctx, chromedp.Text(css(`#learning tr[data-addr="127.0.0.1:9222"]`)))
		if !strings.Contains(gone, "forgotten in 23h") {
			t.Errorf("gone row %q", gone)
		}
		// The learned listener's target is named by its process, in the label and the hover.
		w.addTarget(patrol.TargetState{Target: "tcp://127.0.0.1:6379", Status: patrol.StatusDown, Since: now}) // down: its group is open
		run(t, ctx, 20*time.Second, chromedp.Navigate(url+"/"), chromedp.WaitVisible(css(`#groups[data-rendered="1"]`)),
			chromedp.WaitVisible(css(`#learning tr[data-addr="127.0.0.1:1883"]`)))
		if got := settledText(t, ctx, tileSel("tcp://127.0.0.1:6379"), "redis-server :6379"); got != "redis-server :6379" {
			t.Errorf("learned target named %q, want redis-server :6379", got)
		}
		run(t, ctx, 10*time.Second, chromedp.Click(css(`#views button[data-v="tiles"]`)), chromedp.WaitVisible(css(`#groups.tiled[data-rendered="1"]`)))
		if got := settledText(t, ctx, tileSel("tcp://127.0.0.1:6379"), "redis-server :6379"); got != "redis-server :6379" {
			t.Errorf("learned target named %q in the tile view, want redis-server :6379", got)
		}
		run(t, ctx, 10*time.Second, chromedp.Click(css(`#views button[data-v="dense"]`)))
		// Without listeners being learned the empty state says how to add targets.
		w.mu.Lock()
		w.learned, w.targets, w.index = nil, nil, map[string]int{}
		w.mu.Unlock()
		run(t, ctx, 20*time.Second, chromedp.Navigate(url+"/"), chromedp.WaitVisible(css(`#groups .empty`)))
		if got := get(t, ctx, chromedp.Text(css(`#groups .empty`))); !strings.Contains(got, "No targets configured yet") {
			t.Errorf("empty state %q", got)
		}
	})

	t.Run("an operator forgets gone learned listeners; a viewer cannot", func(t *testing.T) {
		w := newWorld()
		now := time.Now()
		at := func(d time.Duration) *time.Time { v := now.Add(d).UTC().Truncate(time.Second); return &v }
		w.learned = []api.LearnedListener{
			{Addr: "127.0.0.1:1883", Port: 1883, Process: "mosquitto", PID: 123, State: "learning", FirstSeen: now.Add(-40 * time.Second), LearnAt: at(80 * time.Second)},
			{Addr: "127.0.0.1:9222", Port: 9222, Process: "chromium", PID: 9001, State: "gone", FirstSeen: now.Add(-3 * time.Hour),
				LearnedAt: at(-170 * time.Minute), GoneSince: at(-10 * time.Minute), ForgetAt: at(23*time.Hour + 50*time.Minute), Fate: "exited"},
			{Addr: "127.0.0.1:5000", Port: 5000, Process: "flask", PID: 4100, State: "gone", FirstSeen: now.Add(-5 * time.Hour),
				LearnedAt: at(-298 * time.Minute), GoneSince: at(-20 * time.Minute), ForgetAt: at(23*time.Hour + 40*time.Minute), Fate: "exited", TargetID: "tcp://127.0.0.1:5000"},
			{Addr: "127.0.0.1:8081", Port: 8081, Process: "node", PID: 777, State: "gone", FirstSeen: now.Add(-2 * time.Hour),
				LearnedAt: at(-118 * time.Minute), GoneSince: at(-time.Minute), Fate: "restarting"},
			{Addr: "127.0.0.1:3000", Port: 3000, Process: "grafana", PID: 300, State: "retired", FirstSeen: now.Add(-72 * time.Hour),
				LearnedAt: at(-71 * time.Hour), GoneSince: at(-30 * time.Hour), Fate: "exited"},
			{Addr: "127.0.0.1:6379", Port: 6379, Process: "redis-server", PID: 700, State: "learned", FirstSeen: now.Add(-time.Hour), LearnedAt: at(-58 * time.Minute), TargetID: "tcp://127.0.0.1:6379"},
		}
		w.addTarget(patrol.TargetState{Target: "tcp://127.0.0.1:6379", Status: patrol.StatusUp, Since: now})
		w.addTarget(patrol.TargetState{Target: "tcp://127.0.0.1:5000", Status: patrol.StatusDown, Since: now.Add(-20 * time.Minute)})
		w.addAlert(patrol.Alert{ID: "a-flask", Target: "tcp://127.0.0.1:5000", Class: patrol.AlertUnreachable, Severity: patrol.P0, State: patrol.AlertFiring,
			StartsAt: now.Add(-20 * time.Minute), Summary: "Listener tcp 127.0.0.1:5000 (flask) is gone", Labels: map[string]string{"source": "hostwatch"}}, "")
		w.alerts["a-flask"].Hint = "127.0.0.1:5000 is a learned listener (flask) that is gone and its process exited; it will be retired at " +
			at(23*time.Hour+40*time.Minute).Format(time.RFC3339) + ". If it is gone for good, forget it: portpatrol learned forget 127.0.0.1:5000"
		url := serve(t, w, api.NewBroker(api.BrokerConfig{}))
		row := func(addr string) string { return fmt.Sprintf(`#learning tr[data-addr=%q]`, addr) }

		// A viewer sees the gone listeners but no button to forget them.
		run(t, ctx, 20*time.Second, viewport(1280, 800), chromedp.Navigate(url+"/"), chromedp.WaitVisible(css(`#view[data-role="viewer"] `+row("127.0.0.1:9222"))))
		if n := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#learning button').length`)); n != 0 {
			t.Errorf("a viewer sees %d buttons in the learned panel, want none", n)
		}

		// An operator forgets one.
		run(t, ctx, 20*time.Second,
			chromedp.SendKeys(css(`#token-input`), tokens[1].Secret), chromedp.Click(css(`#token-form button[type=submit]`)),
			chromedp.WaitVisible(css(`#who[data-role="operator"]`)), chromedp.WaitVisible(css(row("127.0.0.1:9222")+` button[data-forget]`)))
		if n := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#learning tr[data-addr="127.0.0.1:1883"] button').length`)); n != 0 {
			t.Errorf("a listener being learned offers %d buttons, want none: only gone ones are forgotten", n)
		}
		if takeShots() {
			screenshot(t, ctx, "learned-forget")
		}
		run(t, ctx, 10*time.Second, chromedp.Click(css(row("127.0.0.1:9222")+` button[data-forget]`)), chromedp.WaitNotPresent(css(row("127.0.0.1:9222"))),
			chromedp.WaitVisible(css(`#banner.ok`)))
		if got, all := w.forgets(); !slices.Equal(got, []string{"127.0.0.1:9222"}) || all != 0 {
			t.Fatalf("forgotten %v (all gone %d times), want 127.0.0.1:9222 alone", got, all)
		}

		// Resolving the incident of a gone learned listener asks whether to forget it.
		run(t, ctx, 20*time.Second, chromedp.Navigate(url+"/#/incidents"),
			chromedp.WaitVisible(css(`#open button[data-act="resolve"][data-id="a-flask"]`)),
			chromedp.Click(css(`#open button[data-act="resolve"][data-id="a-flask"]`)),
			chromedp.WaitVisible(css(`#forget-offer button[data-act="forget-learned"]`)))
		offer := get(t, ctx, chromedp.Text(css(`#forget-offer`)))
		if !strings.Contains(offer, "portpatrol learned forget 127.0.0.1:5000") || !strings.Contains(offer, "Forget 127.0.0.1:5000") {
			t.Errorf("forget offer %q, want the hint and a Forget 127.0.0.1:5000 button", offer)
		}
		if takeShots() {
			screenshot(t, ctx, "incidents-forget")
		}
		run(t, ctx, 10*time.Second, chromedp.Click(css(`#forget-offer button[data-act="forget-learned"]`)),
			chromedp.WaitNotVisible(css(`#forget-offer`)), chromedp.WaitVisible(css(`#banner.ok`)))
		if got, _ := w.forgets(); !slices.Equal(got, []string{"127.0.0.1:9222", "127.0.0.1:5000"}) {
			t.Fatalf("forgotten %v, want 127.0.0.1:5000 after 127.0.0.1:9222", got)
		}

		// "Forget all gone" takes the rest, retired ones too; learning ones stay.
		run(t, ctx, 20*time.Second, chromedp.Navigate(url+"/"), chromedp.WaitVisible(css(`#forget-gone`)))
		if got := get(t, ctx, chromedp.Text(css(`#forget-gone`))); got != "Forget all gone (2)" {
			t.Errorf("button %q, want Forget all gone (2)", got)
		}
		run(t, ctx, 10*time.Second, chromedp.Click(css(`#forget-gone`)), chromedp.WaitNotPresent(css(row("127.0.0.1:3000"))),
			chromedp.WaitNotPresent(css(`#forget-gone`)))
		if got, all := w.forgets(); all != 1 || !slices.Contains(got, "127.0.0.1:3000") || !slices.Contains(got, "127.0.0.1:8081") {
			t.Errorf("forgotten %v (all gone %d times), want 3000 and 8081 by one forget-all", got, all)
		}
		if rows := get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#learning tr')].map((r) => r.dataset.addr)`)); !slices.Equal(rows, []string{"127.0.0.1:1883"}) {
			t.Errorf("rows left %v, want the listener being learned", rows)
		}
	})

	t.Run("an operator posts and deletes a status page note", func(t *testing.T) {
		w := fleetWorld()
		url := serve(t, w, api.NewBroker(api.BrokerConfig{}))
		run(t, ctx, 30*time.Second, viewport(1280, 900), chromedp.Navigate(url+"/#/incidents"),
			chromedp.SendKeys(css(`#token-input`), tokens[1].Secret), chromedp.Click(css(`#token-form button[type=submit]`)),
			chromedp.WaitVisible(css(`#note-form`)),
			chromedp.SendKeys(css(`#note-form input[name=service]`), "payments"),
			chromedp.SetValue(css(`#note-form select[name=state]`), "identified"),
			chromedp.SendKeys(css(`#note-form input[name=text]`), "Card payments fail; the provider is restoring service."),
			chromedp.Click(css(`#note-form button[type=submit]`)),
			chromedp.WaitVisible(css(`#notes tr[data-note]`)))
		notes, _ := w.ListStatusNotes(context.Background())
		if len(notes) != 1 || notes[0].Service != "payments" || notes[0].State != "identified" || notes[0].Author != "alice" {
			t.Fatalf("stored notes %+v", notes)
		}
		run(t, ctx, 10*time.Second, chromedp.Click(css(`#notes button[data-act="delete-note"]`)), chromedp.WaitVisible(css(`#banner.ok`)),
			chromedp.WaitNotPresent(css(`#notes tr[data-note]`)))
		if notes, _ := w.ListStatusNotes(context.Background()); len(notes) != 0 {
			t.Errorf("notes after delete: %+v", notes)
		}
	})
}

// choose sets the value of a form field as a user would, firing its change and input events.
func choose(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q;
		e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true})); })()`, sel, value))
}

// statusWorld feeds the status page from the fleet: its alerts, five public services
// and the notes the world keeps.
type statusWorld struct{ w *world }

func (s statusWorld) Alerts(context.Context) []patrol.Alert {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	var out []patrol.Alert
	for _, in := range s.w.alerts {
		out = append(out, in.Alert)
	}
	return out
}

func (s statusWorld) Services(context.Context) []status.Listed {
	return []status.Listed{{Key: "checkout", Name: "Checkout"}, {Key: "payments", Name: "Payments"}, {Key: "search", Name: "Search"},
		{Key: "auth", Name: "Sign-in"}, {Key: "mail", Name: "Email notifications"}}
}

// memHistory is a status.Store in memory.
type memHistory map[string][]byte

func (m memHistory) PutHistory(_ context.Context, svc string, doc []byte) error {
	m[svc] = doc
	return nil
}
func (m memHistory) ListHistory(context.Context) (map[string][]byte, error) { return m, nil }

func TestStatusPageScreenshot(t *testing.T) {
	ctx := newBrowser(t)
	w := fleetWorld()
	now := time.Now()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no zone database: %v", err)
	}
	// Monitoring began 12 days ago; payments had an outage 4 days ago.
	day := func(d int) string { return now.AddDate(0, 0, -d).UTC().Format(time.RFC3339) }
	hist := memHistory{}
	for _, svc := range []string{"checkout", "payments", "search", "auth", "mail"} {
		doc := fmt.Sprintf(`{"since":%q,"incidents":[]}`, day(12))
		if svc == "payments" {
			doc = fmt.Sprintf(`{"since":%q,"incidents":[{"id":"old","severity":"P0","start":%q,"end":%q}]}`, day(12), day(4),
				now.AddDate(0, 0, -4).Add(38*time.Minute).UTC().Format(time.RFC3339))
		}
		hist[svc] = []byte(doc)
	}
	w.notes = []patrol.StatusNote{
		{ID: "n1", Service: "payments", State: "identified", Text: "Card payments fail for some customers; our provider is restoring service.", Author: "alice", CreatedAt: now.Add(-4 * time.Minute)},
		{ID: "n2", State: "monitoring", Text: "Search results may be slow while an index rebuilds.", Author: "bob", CreatedAt: now.Add(-15 * time.Minute)},
	}
	page, err := status.New(status.Config{Source: statusWorld{w}, Store: hist, Notes: w, Title: "Acme status", LogoText: "ACME", Location: berlin})
	if err != nil {
		t.Fatal(err)
	}
	if err := page.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(page.Standalone())
	t.Cleanup(srv.Close)
	run(t, ctx, 20*time.Second, chromedp.EmulateViewport(900, 1250), chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(css(`.service`)))
	text := get(t, ctx, chromedp.Text(css(`main`)))
	for _, want := range []string{"Acme status", "ACME", "Some services are in a major outage", "Payments", "Major outage", "Card payments fail",
		"Search results may be slow", "Europe/Berlin"} {
		if !strings.Contains(text, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	for _, secret := range []string{"payments-05", "orders", "kafka", "alice", "refuses"} {
		if strings.Contains(text, secret) {
			t.Errorf("status page shows %q", secret)
		}
	}
	if n := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('.service').length`)); n != 5 {
		t.Errorf("%d services, want the 5 public ones", n)
	}
	if n := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('.bars span.no_data').length`)); n != 5*(status.Days-13) {
		t.Errorf("%d no-data days, want %d (17 per service)", n, 5*(status.Days-13))
	}
	if takeShots() {
		screenshot(t, ctx, "status")
	}
}

// settledText reads the text of the element sel in one step in the page, again for up
// to five seconds while it differs from want: the overview redraws its groups (a
// debounced render after new data) and a node read across a redraw reads empty. It
// returns the last text read, for the caller to judge.
func settledText(t *testing.T, ctx context.Context, sel, want string) string {
	t.Helper()
	js := fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ""`, sel)
	var got string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got = strings.TrimSpace(get(t, ctx, chromedp.Evaluate[string](js)))
		if got == want || time.Now().After(deadline) {
			return got
		}
	}
}
