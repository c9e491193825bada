package config

import (
	"strings"
	"testing"
)

func TestAutomationSection(t *testing.T) {
	good := `automation:
  mode: on
  approval_expiry: 10m
  service_owners: [carol]
  breaker: {attempts: 3, per: 1h, backoff: 10s}
  fleet: {max_actions: 5, window: 10m}
  playbooks:
    - name: restart-web
      mode: auto
      trigger: {class: [unreachable], severity: [P0], labels: ["service=web"]}
      rollout: ["tier=non-critical"]
      steps:
        - name: restart
          action: exec
          risk: R1
          params: {argv: [/usr/local/bin/start-web, "{port}"], timeout: 5s, env: [PATH]}
          verify: {window: 20s, interval: 1s}
        - name: backup
          action: switch_port
          risk: R2
          params: {port: 8080, backup_port: 8081, family: inet}
`
	c, err := Parse([]byte(good), "good.yaml")
	if err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	if got := c.Automation.Playbooks[0].Steps[1].Params.BackupPort; got != 8081 {
		t.Errorf("backup_port: got %d, want 8081", got)
	}
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"unknown action", `automation:
  playbooks:
    - name: x
      steps:
        - action: reboot
          risk: R1
`, "bad.yaml:5:19: automation.playbooks[0].steps[0].action: unknown action \"reboot\""},
		{"unknown tier", `automation:
  playbooks:
    - name: x
      steps:
        - action: exec
          risk: R9
          params: {argv: [/bin/true]}
`, "bad.yaml:6:17: automation.playbooks[0].steps[0].risk: unknown tier \"R9\""},
		{"unknown parameter", `automation:
  playbooks:
    - name: x
      steps:
        - action: exec
          risk: R1
          params:
            argv: [/bin/true]
            shell: true
`, "bad.yaml:9:13: automation.playbooks[0].steps[0].params.shell: unknown field \"shell\""},
		{"parameter of another action", `automation:
  playbooks:
    - name: x
      steps:
        - action: exec
          risk: R1
          params:
            argv: [/bin/true]
            url: http://127.0.0.1/
`, "bad.yaml:9:18: automation.playbooks[0].steps[0].params.url: action exec has no parameter \"url\""},
		{"bad mode", "automation:\n  mode: yes-please\n", "bad.yaml:2:9: automation.mode: \"yes-please\": want off or on"},
		{"bad playbook mode", `automation:
  playbooks:
    - name: x
      mode: live
      steps: [{action: exec, risk: R0, params: {argv: [/bin/true]}}]
`, "bad.yaml:4:13: automation.playbooks[0].mode: \"live\": want shadow, suggest or auto"},
		{"bad matcher", `automation:
  playbooks:
    - name: x
      trigger: {labels: ["=web"]}
      steps: [{action: exec, risk: R0, params: {argv: [/bin/true]}}]
`, "automation.playbooks[0].trigger.labels[0]"},
		{"same ports", `automation:
  playbooks:
    - name: x
      steps: [{action: switch_port, risk: R2, params: {port: 80, backup_port: 80}}]
`, "automation.playbooks[0].steps[0].params.backup_port: is the same port as port (80)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "bad.yaml")
			if err == nil {
				t.Fatalf("accepted, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to contain %q", err, tt.want)
			}
		})
	}
	if c, err := Parse([]byte("targets: []\n"), "empty.yaml"); err != nil || c.Automation.Mode != "" || len(c.Automation.Playbooks) != 0 {
		t.Errorf("empty config: automation %+v, err %v; want off with no playbooks", c.Automation, err)
	}
}
