package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// simulate replays the alerts the API serves against a config's playbooks.
func TestAutomationSimulate(t *testing.T) {
	url := startAPI(t, newAlertWorld())
	cfg := filepath.Join(t.TempDir(), "pp.yaml")
	if err := os.WriteFile(cfg, []byte(`automation:
  playbooks:
    - name: restart-sessions
      trigger: {class: [unreachable], labels: ["service=sessions"]}
      steps:
        - {name: restart, action: systemd, risk: R1, params: {unit: sessions.service}}
    - name: failover-orders
      trigger: {labels: ["service=orders"]}
      steps:
        - {name: switch, action: switch_port, risk: R2, params: {port: 5432, backup_port: 5433}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runAPICmd(t, "automation", "simulate", "-c", cfg, "--since", "7d", "--server", url, "--token", viewerToken)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"playbook restart-sessions (configured mode shadow)",
		"step restart (systemd R1): would run: restart unit sessions.service",
		"step switch (switch_port R2): needs approval",
		"no playbook: playbook restart-sessions: class slow is not one of unreachable",
		"3 alert(s) in the last 7d, 2 matched a playbook: 1 step(s) would run, 1 would need approval, 0 breaker trip(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A shorter window leaves the older alert out.
	out, _, _ = runAPICmd(t, "automation", "simulate", "-c", cfg, "--since", "1h", "--server", url, "--token", viewerToken)
	if !strings.Contains(out, "2 alert(s) in the last 1h") {
		t.Errorf("--since 1h:\n%s", out)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"automation", "simulate", "--server", url}, "needs the configuration"},
		{[]string{"automation", "simulate", "-c", cfg, "--since", "week", "--server", url}, "--since \"week\""},
		{[]string{"deny", "abc", "--server", url, "--token", operatorToken}, "deny needs a reason"},
	} {
		_, errOut, code := runAPICmd(t, tt.args...)
		if code != exitUnknown || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d %q, want 3 saying %q", tt.args, code, errOut, tt.want)
		}
	}
	if d, err := parseSince("7d"); err != nil || d != 7*24*time.Hour {
		t.Errorf("parseSince(7d) = %s, %v", d, err)
	}
}
