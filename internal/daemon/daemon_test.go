package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/schedule"
	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// startDaemon runs the daemon with the config at path on a free loopback port and
// returns it with its base URL. Each tweak changes the daemon before it runs.
func startDaemon(t *testing.T, path string, tweaks ...func(*Daemon)) (*Daemon, string) {
	t.Helper()
	d, err := New(Config{Path: path, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tw := range tweaks {
		tw(d)
	}
	return d, runDaemon(t, d)
}

// runDaemon runs d on a free loopback port until the test ends, then checks that it
// shut down cleanly and closes it. It returns the base URL.
func runDaemon(t *testing.T, d *Daemon) string {
	t.Helper()
	base, stop := serveDaemon(t, d)
	t.Cleanup(stop)
	return base
}

// serveDaemon runs d on a free loopback port and returns its base URL and a function
// that stops it, checks that it shut down cleanly and closes it.
func serveDaemon(t *testing.T, d *Daemon) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, ln) }()
	return "http://" + ln.Addr().String(), func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("the daemon did not shut down within 10s")
		}
		d.Close()
	}
}

// waitFor polls url until its body contains every want, or fails after 10s.
func waitFor(t *testing.T, url string, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		_, body = testsvc.Get(t, url)
		ok := true
		for _, w := range want {
			if !strings.Contains(body, w) {
				ok = false
				break
			}
		}
		if ok {
			return body
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never contained %q; last body:\n%s", url, want, body)
	return ""
}

func TestServeProbesTargetsAndExportsMetrics(t *testing.T) {
	open, closed := testsvc.Listen(t), testsvc.ClosedPort(t)
	path := filepath.Join(t.TempDir(), "pp.yaml")
	// The host watch would probe this test's own listeners too.
	testsvc.WriteFile(t, path, fmt.Sprintf(`host_watch: {disabled: true}
defaults:
  interval: 200ms
  timeout: 100ms
  failure_threshold: 2
targets:
  - url: %s
    labels: {service: web}
  - url: %s
    labels: {service: db}
`, open, closed))
	_, base := startDaemon(t, path)

	if code, _ := testsvc.Get(t, base+"/-/healthy"); code != 200 {
		t.Errorf("healthy: got %d, want 200", code)
	}
	waitFor(t, base+"/-/ready", "ready")
	body := waitFor(t, base+"/metrics",
		fmt.Sprintf(`portpatrol_probe_success{target="tcp://%s"} 1`, open),
		fmt.Sprintf(`portpatrol_probe_success{target="tcp://%s"} 0`, closed),
		fmt.Sprintf(`portpatrol_target_state_code{target="tcp://%s"} 2`, closed),
		fmt.Sprintf(`portpatrol_target_state_code{target="tcp://%s"} 0`, open),
		// Waited for too: a scrape gathers the process-wide families before it writes
		// the per-target rows, so a result that lands in between shows in the rows only.
		`portpatrol_probes_total{class="ok",scheme="tcp"}`,
		`portpatrol_probes_total{class="refused",scheme="tcp"}`,
	)
	for _, w := range []string{
		`portpatrol_probe_last_duration_seconds{target="tcp://` + open + `"} `,
		`portpatrol_probes_duration_seconds_bucket{module="",scheme="tcp",le="0.0005"}`,
		`portpatrol_scheduler_lag_seconds_bucket`,
		`portpatrol_config_last_reload_successful 1`,
		`portpatrol_targets 2`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}
	checkExposition(t, body)
	// The per-target detail is on /metrics/target, not on /metrics by default.
	for _, name := range []string{"portpatrol_target_info", "portpatrol_probe_failures_total", "portpatrol_probe_duration_seconds_bucket"} {
		if strings.Contains(body, name+"{") {
			t.Errorf("/metrics carries %s by default; it belongs to per_target: full", name)
		}
	}
	code, detail := testsvc.Get(t, base+"/metrics/target?target="+url.QueryEscape("tcp://"+closed))
	for _, w := range []string{
		fmt.Sprintf(`portpatrol_probe_failures_total{class="refused",target="tcp://%s"}`, closed),
		fmt.Sprintf(`portpatrol_target_info{module="",name="",scheme="tcp",service="db",target="tcp://%s"} 1`, closed),
		fmt.Sprintf(`portpatrol_target_state{state="down",target="tcp://%s"} 1`, closed),
	} {
		if code != 200 || !strings.Contains(detail, w) {
			t.Errorf("/metrics/target: got %d, lacks %q:\n%s", code, w, detail)
		}
	}
	if strings.Contains(detail, open) {
		t.Errorf("/metrics/target of %s carries series of %s:\n%s", closed, open, detail)
	}
	if code, page := testsvc.Get(t, base+"/"); code != 200 || !strings.Contains(page, "portpatrol") {
		t.Errorf("dashboard: got %d %q", code, page)
	}
}

// checkExposition fails the test when body does not parse as the Prometheus text format,
// such as when two collectors write a family of the same name.
func checkExposition(t *testing.T, body string) {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	if _, err := p.TextToMetricFamilies(strings.NewReader(body)); err != nil {
		t.Errorf("/metrics does not parse: %v", err)
	}
}

// metrics: {per_target: full} brings back every per-target series of earlier releases,
// and a reload switches it.
func TestServeMetricsPerTargetFull(t *testing.T) {
	open, closed := testsvc.Listen(t), testsvc.ClosedPort(t)
	path := filepath.Join(t.TempDir(), "pp.yaml")
	conf := func(mode string) string {
		return fmt.Sprintf(`metrics: {per_target: %s}
host_watch: {disabled: true}
defaults: {interval: 200ms, timeout: 100ms, failure_threshold: 2}
targets:
  - url: %s
    labels: {service: web}
  - url: %s
    labels: {service: db}
`, mode, open, closed)
	}
	testsvc.WriteFile(t, path, conf("full"))
	d, base := startDaemon(t, path)
	body := waitFor(t, base+"/metrics",
		fmt.Sprintf(`portpatrol_target_state{state="down",target="tcp://%s"} 1`, closed),
		fmt.Sprintf(`portpatrol_target_state{state="up",target="tcp://%s"} 1`, open),
		fmt.Sprintf(`portpatrol_probe_failures_total{class="refused",target="tcp://%s"}`, closed),
	)
	checkExposition(t, body)
	for _, w := range []string{
		`portpatrol_probe_duration_seconds_bucket{target="tcp://` + open,
		`portpatrol_target_info{module="",name="",scheme="tcp",service="web",target="tcp://` + open + `"} 1`,
		`portpatrol_target_flapping{target="tcp://` + open + `"} 0`,
		`portpatrol_probe_success{target="tcp://` + open + `"} 1`,
		`portpatrol_target_state_code{target="tcp://` + closed + `"} 2`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics with per_target: full lacks %q", w)
		}
	}

	testsvc.WriteFile(t, path, conf("minimal"))
	if code, body := send(t, http.MethodPost, base+"/-/reload", newToken(t, d, store.RoleAdmin), nil); code != 200 {
		t.Fatalf("reload: got %d, want 200: %s", code, body)
	}
	if _, body := testsvc.Get(t, base+"/metrics"); strings.Contains(body, "portpatrol_target_info{") || !strings.Contains(body, "portpatrol_target_state_code{") {
		t.Errorf("after a reload to per_target: minimal, /metrics still carries the full set or lost the minimal one:\n%s", body)
	}
}

func TestServeProbeEndpointIsBlackboxCompatible(t *testing.T) {
	open, closed := testsvc.Listen(t), testsvc.ClosedPort(t)
	d, base := startDaemon(t, "")
	viewer := newToken(t, d, store.RoleViewer)
	tests := []struct {
		query string
		token string
		code  int
		want  []string
	}{
		{"target=" + open + "&module=tcp_connect", "", 200, []string{"probe_success 1", "probe_duration_seconds ", "probe_ip_protocol 4", "probe_failed_due_to_regex 0"}},
		{"target=" + closed + "&module=tcp_connect", "", 200, []string{"probe_success 0", `portpatrol_probe_class{class="refused"} 1`}},
		{"target=http://" + open + "/&module=http_2xx", "", 200, []string{"probe_success 0", `probe_http_duration_seconds{phase="connect"}`}},
		{"target=" + open + "&module=nope", "", 400, []string{`unknown module "nope"`}},
		{"module=tcp_connect", "", 400, []string{"target parameter is missing"}},
		// The debug output shows what a target answered: it needs a viewer token.
		{"target=" + open + "&module=tcp_connect&debug=true", "", 401, []string{"debug output: missing bearer token"}},
		{"target=" + open + "&module=tcp_connect&debug=true", "pp_not-a-token", 401, []string{"debug output: unknown token"}},
		{"target=" + open + "&module=tcp_connect&debug=true", viewer, 200, []string{"Result of probe tcp://" + open, "probe_success"}},
		{"target=tcp://" + open + "?send=INFO&module=tcp_connect", "", 400, []string{"target option send would change what module \"tcp_connect\" sends"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			code, body := send(t, http.MethodGet, base+"/probe?"+tt.query, tt.token, nil)
			if code != tt.code {
				t.Errorf("got %d, want %d: %s", code, tt.code, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q:\n%s", w, body)
				}
			}
		})
	}
}

func TestServeReloadKeepsOldConfigWhenBad(t *testing.T) {
	a, b := testsvc.Listen(t), testsvc.Listen(t)
	path := filepath.Join(t.TempDir(), "pp.yaml")
	// The host watch would probe this test's own listeners too.
	testsvc.WriteFile(t, path, fmt.Sprintf("host_watch: {disabled: true}\ndefaults: {interval: 200ms, timeout: 100ms}\ntargets:\n  - url: %s\n", a))
	d, base := startDaemon(t, path)
	admin := newToken(t, d, store.RoleAdmin)
	waitFor(t, base+"/metrics", fmt.Sprintf(`portpatrol_probe_success{target="tcp://%s"} 1`, a))

	testsvc.WriteFile(t, path, "targets:\n  - url: 127.0.0.1:99999\n")
	code, msg := send(t, "POST", base+"/-/reload", admin, nil)
	if code != 400 || !strings.Contains(msg, "pp.yaml:2:10: targets[0].url: port \"99999\" out of range") {
		t.Errorf("bad reload: got %d %q", code, msg)
	}
	waitFor(t, base+"/metrics", "portpatrol_config_last_reload_successful 0", `portpatrol_config_reloads_total{outcome="failure"} 1`, "portpatrol_targets 1")

	testsvc.WriteFile(t, path, fmt.Sprintf("host_watch: {disabled: true}\ndefaults: {interval: 200ms, timeout: 100ms}\ntargets:\n  - url: %s\n", b))
	if code, msg := send(t, "POST", base+"/-/reload", admin, nil); code != 200 {
		t.Errorf("good reload: got %d %q", code, msg)
	}
	body := waitFor(t, base+"/metrics", fmt.Sprintf(`portpatrol_probe_success{target="tcp://%s"} 1`, b), "portpatrol_config_last_reload_successful 1")
	if strings.Contains(body, `target="tcp://`+a+`"`) {
		t.Errorf("series of the removed target %s are still exported", a)
	}
}

func TestServeScheduledAuditRaisesAndResolves(t *testing.T) {
	allowed := testsvc.Listen(t)
	rogue := testsvc.NewFlip(t)
	dir := t.TempDir()
	_, allowedPort, _ := net.SplitHostPort(allowed)
	_, roguePort, _ := net.SplitHostPort(rogue.Addr)
	testsvc.WriteFile(t, filepath.Join(dir, "ports.yaml"), fmt.Sprintf(`scan:
  ports: "%s,%s"
hosts:
  - match: 127.0.0.1
    allow:
      - port: %s
`, allowedPort, roguePort, allowedPort))
	path := filepath.Join(dir, "pp.yaml")
	testsvc.WriteFile(t, path, "api: {anonymous_read: true}\naudits:\n  - {name: local, policy: ports.yaml, interval: 1s, targets: [127.0.0.1]}\n")
	d, base := startDaemon(t, path)

	// rogueAlert returns the state of the alert on the rogue port, or "" when there
	// is none (a resolved alert nobody was told of is not kept). The alert is that of
	// the test's process, which holds other ports too: one alert for them all, whose
	// summary lists the rogue port while it is open.
	onRogue := regexp.MustCompile(`(^|[ ,])` + roguePort + `($|[ ,–])`)
	rogueAlert := func() string {
		for _, a := range d.engine().List(alert.Filter{States: []patrol.AlertState{patrol.AlertFiring, patrol.AlertResolved}}) {
			if a.Class == patrol.AlertSecurity && (a.Labels["port"] == roguePort || onRogue.MatchString(a.Summary)) {
				if a.Labels["finding"] != "unauthorised_open" || a.Severity != patrol.P1 {
					t.Errorf("alert %+v: want an unauthorised_open P1", a)
				}
				return string(a.State)
			}
		}
		return ""
	}
	waitAlert := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			got := rogueAlert()
			for _, w := range want {
				if got == w {
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("the alert on rogue port %s is %q after 10s, want one of %q", roguePort, rogueAlert(), want)
	}
	waitAlert("firing")

	// The API shows the same report: the allowed port allowed, the rogue one not.
	code, body := testsvc.Get(t, base+"/api/v1/audits")
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/audits: got %d: %s", code, body)
	}
	var list struct{ Audits []api.AuditReport }
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("GET /api/v1/audits: %v: %s", err, body)
	}
	verdicts := map[string]string{}
	var kinds []string
	for _, a := range list.Audits {
		if a.Name != "local" || a.Time.IsZero() {
			t.Errorf("audit %q at %s: want local, run", a.Name, a.Time)
		}
		for _, h := range a.Hosts {
			for _, op := range h.Open {
				verdicts[strconv.Itoa(int(op.Port))] = op.Verdict
			}
		}
		for _, f := range a.Findings {
			if strconv.Itoa(int(f.Port)) == roguePort {
				kinds = append(kinds, f.Kind+" "+f.Severity)
			}
		}
	}
	if verdicts[allowedPort] != "allowed" || verdicts[roguePort] != "unauthorised" {
		t.Errorf("verdicts %v: want %s allowed and %s unauthorised\n%s", verdicts, allowedPort, roguePort, body)
	}
	if !slices.Equal(kinds, []string{"unauthorised_open P1"}) {
		t.Errorf("findings on the rogue port: got %q, want one unauthorised_open P1", kinds)
	}

	rogue.Close()
	waitAlert("resolved", "")
}

func TestRestartSectionsNamesWhatReloadCannotApply(t *testing.T) {
	dir := t.TempDir()
	testsvc.WriteFile(t, filepath.Join(dir, "ports.yaml"), "hosts:\n  - match: 127.0.0.1\n    allow: [{port: 22}]\n")
	a, err := config.Parse([]byte("audits: [{policy: ports.yaml}]\ntargets: [{url: 127.0.0.1:1}]\n"), filepath.Join(dir, "a.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := config.Parse([]byte("audits: [{policy: ports.yaml}]\ntargets: [{url: 127.0.0.1:2}]\n"), filepath.Join(dir, "a.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := restartSections(a, b); len(got) != 0 {
		t.Errorf("only targets changed, but restartSections says %v", got)
	}
	c, err := config.Parse([]byte("audits: [{policy: ports.yaml, interval: 5m}]\nhost_watch: {disabled: true}\n"), filepath.Join(dir, "a.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(restartSections(a, c), ","); got != "host_watch" {
		t.Errorf("got %q, want host_watch (audits reload)", got)
	}
}

// Taking a target out of the config resolves its open alert: nothing else would.
func TestServeRemovingATargetResolvesItsAlert(t *testing.T) {
	closed := testsvc.ClosedPort(t)
	path := filepath.Join(t.TempDir(), "pp.yaml")
	testsvc.WriteFile(t, path, fmt.Sprintf("host_watch: {disabled: true}\ndefaults: {interval: 200ms, timeout: 100ms}\ntargets: [{url: %s}]\n", closed))
	d, _ := startDaemon(t, path)
	id := "tcp://" + closed
	eventually(t, "a P0 on the closed port", func() bool { return len(d.engine().List(alert.Filter{Target: id})) > 0 })

	testsvc.WriteFile(t, path, "host_watch: {disabled: true}\n")
	if err := d.ReloadFile(); err != nil {
		t.Fatal(err)
	}
	if open := d.engine().List(alert.Filter{Target: id}); len(open) != 0 {
		t.Errorf("after removing %s its alert is still open: %+v", id, open[0])
	}
}

// A target taken out of the config while the daemon was down has its alert resolved
// soon after the next start.
func TestServeResolvesAlertsOfTargetsRemovedWhileDown(t *testing.T) {
	closed := testsvc.ClosedPort(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "pp.yaml")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	testsvc.WriteFile(t, path, fmt.Sprintf("host_watch: {disabled: true}\ndefaults: {interval: 200ms, timeout: 100ms}\ntargets: [{url: %s}]\n", closed))
	id := "tcp://" + closed

	runFor := func(d *Daemon, until func() bool) {
		t.Helper()
		_, stop := serveDaemon(t, d)
		eventually(t, "the expected alert state", until)
		stop()
	}
	d1, err := New(Config{Path: path, DataDir: dir, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	runFor(d1, func() bool { return len(d1.engine().List(alert.Filter{Target: id})) > 0 })

	testsvc.WriteFile(t, path, "host_watch: {disabled: true}\n")
	d2, err := New(Config{Path: path, DataDir: dir, Logger: logger, OrphanDelay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(d2.engine().List(alert.Filter{Target: id})) == 0 {
		t.Fatal("the restarted daemon did not load the open alert")
	}
	runFor(d2, func() bool { return len(d2.engine().List(alert.Filter{Target: id})) == 0 })
}

// A result of a probe that was in flight when its target was removed reaches onResult
// after the reload resolved the target's alert: it must not open the alert again.
func TestResultOfRemovedTargetOpensNoAlert(t *testing.T) {
	closed := testsvc.ClosedPort(t)
	path := filepath.Join(t.TempDir(), "pp.yaml")
	testsvc.WriteFile(t, path, fmt.Sprintf("host_watch: {disabled: true}\ndefaults: {interval: 1h, timeout: 100ms}\ntargets: [{url: %s}]\n", closed))
	d, _ := startDaemon(t, path)
	id := "tcp://" + closed
	testsvc.WriteFile(t, path, "host_watch: {disabled: true}\n")
	if err := d.ReloadFile(); err != nil {
		t.Fatal(err)
	}
	late := patrol.Result{Target: id, Start: time.Now(), Class: patrol.ClassRefused, Error: "connection refused"}
	d.onResult(schedule.Event{Job: &schedule.Job{ID: id}, Result: late, Status: patrol.StatusDown, Prev: patrol.StatusUnknown, Changed: true})
	if open := d.engine().List(alert.Filter{Target: id}); len(open) != 0 {
		t.Errorf("a late result of removed %s opened %+v", id, open[0])
	}
}
