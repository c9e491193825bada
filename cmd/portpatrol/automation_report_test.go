package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/sqlite"
)

// automation report reads the playbooks from -c and the chain from the store its
// storage: names, and says whether the chain is intact.
func TestAutomationReport(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "portpatrol.db")
	db, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	l, err := auditlog.New(auditlog.Config{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []auditlog.Record{
		{Kind: auditlog.KindDecision, DecisionID: "d1", Playbook: "failover", Step: "switch", Target: "tcp://127.0.0.1:8080", Actor: "portpatrol",
			Outcome: "awaiting approval r1", Reasons: []string{"tier R2: needs one approver who is not the requester"}},
		{Kind: auditlog.KindApproval, DecisionID: "d1", Playbook: "failover", Step: "switch", Target: "tcp://127.0.0.1:8080", Actor: "bob",
			Outcome: "approved", Reasons: []string{"approved by bob (operator): backup is warm"}},
		{Kind: auditlog.KindExecution, DecisionID: "d1", Playbook: "failover", Step: "switch", Target: "tcp://127.0.0.1:8080", Actor: "portpatrol",
			Outcome: "applied", Reasons: []string{"ran: redirect port 8080 to 8081"}},
		{Kind: auditlog.KindRollback, DecisionID: "d1", Playbook: "failover", Step: "switch", Target: "tcp://127.0.0.1:8080", Actor: "portpatrol",
			Outcome: "rolled back", Reasons: []string{"rolled back redirect port 8080 to 8081"}},
		{Kind: auditlog.KindControl, DecisionID: "d2", Playbook: "failover", Step: "switch", Target: "tcp://127.0.0.1:9090", Actor: "root",
			Outcome: "break-glass", Reasons: []string{"break-glass by root: outage", "flagged for review: ran without its quorum (one approver)"}},
	} {
		if _, err := l.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	_ = db.Close()
	cfg := filepath.Join(dir, "portpatrol.yaml")
	yaml := "storage: " + path + `
automation:
  mode: on
  playbooks:
    - name: failover
      mode: suggest
      trigger: {labels: ["service=web"]}
      steps:
        - {name: switch, action: switch_port, risk: R2, params: {port: 8080, backup_port: 8081}}
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd("automation", "report", "-c", cfg, "--since", "30d")
	if code != exitOK {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	for _, want := range []string{
		"audit chain intact: 5 entries, head 5 ",
		"failover (mode suggest): on labels {service=web}",
		"step switch: switch_port R2: redirect port 8080 to 8081 on this host — one approver who is not the requester",
		"What ran (1)", "approved by bob  failover step switch on tcp://127.0.0.1:8080",
		"Rolled back (1)", "Break-glass, flagged for review (1)", "break-glass by root",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCmd("automation", "report", "-c", cfg, "--json")
	var v struct {
		BreakGlass []struct{ Actor string } `json:"break_glass"`
		Chain      string                   `json:"chain"`
	}
	if err := json.Unmarshal([]byte(out), &v); code != exitOK || err != nil || len(v.BreakGlass) != 1 || v.BreakGlass[0].Actor != "root" {
		t.Errorf("--json: exit %d, %v, %+v", code, err, v)
	}

	tamperAuditDB(t, path, `UPDATE audit_chain SET record = replace(record, '"bob"', '"eve"') WHERE seq = 2`)
	code, out, _ = runCmd("automation", "report", "-c", cfg)
	if code != exitOK || !strings.Contains(out, "audit chain BROKEN at entry 2 (edited)") {
		t.Errorf("after an edit: exit %d, want the review to say the chain is broken:\n%s", code, out)
	}
	if code, _, errs := runCmd("automation", "report", "-c", cfg, "--since", "soon"); code != exitUnknown || !strings.Contains(errs, "--since") {
		t.Errorf("bad --since: exit %d %q", code, errs)
	}
}
