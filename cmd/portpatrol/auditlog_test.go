package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/sqlite"
)

// auditDB writes a chain of 50 entries through a Log into a real SQLite file, the
// first 25 dated two days ago, and returns the file and the head.
func auditDB(t *testing.T) (string, auditlog.Head) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portpatrol.db")
	db, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	i := 0
	l, err := auditlog.New(auditlog.Config{Store: db, Now: func() time.Time {
		if i <= 25 {
			return time.Now().Add(-48 * time.Hour)
		}
		return time.Now()
	}})
	if err != nil {
		t.Fatal(err)
	}
	var e auditlog.Entry
	for i = 1; i <= 50; i++ {
		e, err = l.Append(t.Context(), auditlog.Record{Kind: auditlog.KindDecision, Actor: "portpatrol",
			DecisionID: fmt.Sprintf("d%d", i), Reasons: []string{"no playbook matches the alert"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return path, auditlog.Head{Seq: e.Seq, Hash: e.Hash}
}

func tamperAuditDB(t *testing.T, path, query string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func TestAuditLogVerify(t *testing.T) {
	path, head := auditDB(t)
	code, out, errs := runCmd("audit-log", "verify", "--db", path)
	if want := fmt.Sprintf("chain intact: 50 entries, head 50 %s\n", head.Hash); code != exitOK || out != want {
		t.Fatalf("intact: exit %d, %q %q; want 0, %q", code, out, errs, want)
	}
	if code, out, _ := runCmd("audit-log", "verify", "--db", path, "--pin", fmt.Sprintf("50:%s", head.Hash)); code != exitOK {
		t.Errorf("pinned at its head: exit %d, %s", code, out)
	}
	// The same store through a configuration's storage: setting.
	cfg := filepath.Join(t.TempDir(), "portpatrol.yaml")
	if err := os.WriteFile(cfg, []byte("storage: "+path+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCmd("audit-log", "verify", "-c", cfg); code != exitOK || !strings.HasPrefix(out, "chain intact: 50 entries") {
		t.Errorf("with -c: exit %d, %q %q", code, out, errs)
	}

	tamperAuditDB(t, path, `UPDATE audit_chain SET record = replace(record, '"d17"', '"d99"') WHERE seq = 17`)
	code, out, errs = runCmd("audit-log", "verify", "--db", path)
	if code != exitCritical || !strings.HasPrefix(out, "chain broken at entry 17 (edited): entry 17 was edited or forged") ||
		!strings.Contains(out, "entries 1 to 16 before it are intact") {
		t.Errorf("edited: exit %d, %q %q; want 2 naming entry 17", code, out, errs)
	}
	code, out, _ = runCmd("audit-log", "verify", "--db", path, "--json")
	var rep struct {
		Intact  bool  `json:"intact"`
		Entries int64 `json:"entries"`
		Problem struct {
			Seq  int64  `json:"seq"`
			What string `json:"what"`
		} `json:"problem"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitCritical || rep.Intact || rep.Entries != 16 || rep.Problem.Seq != 17 || rep.Problem.What != "edited" {
		t.Errorf("--json: exit %d, %s (%v); want 2 with entry 17 edited", code, out, err)
	}

	path, head = auditDB(t)
	tamperAuditDB(t, path, `DELETE FROM audit_chain WHERE seq = 23`)
	if code, out, _ := runCmd("audit-log", "verify", "--db", path); code != exitCritical || !strings.HasPrefix(out, "chain broken at entry 23 (deleted)") {
		t.Errorf("deleted: exit %d, %q; want 2 naming entry 23", code, out)
	}

	path, head = auditDB(t)
	tamperAuditDB(t, path, `DELETE FROM audit_chain WHERE seq = 50`)
	if code, out, _ := runCmd("audit-log", "verify", "--db", path); code != exitOK || !strings.HasPrefix(out, "chain intact: 49 entries") {
		t.Errorf("last deleted, no pin: exit %d, %q; want intact with 49 (what the pin is for)", code, out)
	}
	code, out, _ = runCmd("audit-log", "verify", "--db", path, "--pin", fmt.Sprintf("50:%s", head.Hash))
	if code != exitCritical || !strings.HasPrefix(out, "chain broken at entry 50 (deleted): the chain ends at entry 49, but entry 50 was pinned") {
		t.Errorf("last deleted, pinned: exit %d, %q; want 2 naming entry 50", code, out)
	}
}

func TestAuditLogBadInput(t *testing.T) {
	path, _ := auditDB(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"verify", "--db", filepath.Join(t.TempDir(), "nope.db")}, "nope.db: no such file"},
		{[]string{"verify", "--db", path, "--pin", "50"}, `--pin "50": want SEQ:HASH`},
		{[]string{"verify", "--db", path, "--pin", "x:" + strings.Repeat("a", 64)}, "want SEQ:HASH"},
		{[]string{"verify", "--db", path, "--data-dir", t.TempDir()}, "--db names the database itself"},
		{[]string{"export", "--db", path, "--since", "-1h"}, "want a positive duration"},
	} {
		code, out, errs := runCmd(append([]string{"audit-log"}, tt.args...)...)
		if code != exitUnknown || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: exit %d, %q %q; want 3 saying %q", tt.args, code, out, errs, tt.want)
		}
	}
}

func TestAuditLogExport(t *testing.T) {
	path, head := auditDB(t)
	code, out, errs := runCmd("audit-log", "export", "--db", path)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != exitOK || len(lines) != 50 {
		t.Fatalf("export: exit %d, %d lines, %s; want 50", code, len(lines), errs)
	}
	var last auditlog.Entry
	if err := json.Unmarshal([]byte(lines[49]), &last); err != nil || last.Seq != 50 || last.Hash != head.Hash || last.Record.DecisionID != "d50" {
		t.Errorf("last line %s: %+v, %v", lines[49], last, err)
	}
	// The export verifies on its own, and an edit of it is found.
	file := filepath.Join(t.TempDir(), "decisions.jsonl")
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, got, errs := runCmd("audit-log", "verify", "--file", file, "--pin", fmt.Sprintf("50:%s", head.Hash)); code != exitOK ||
		got != fmt.Sprintf("chain intact: 50 entries, head 50 %s\n", head.Hash) {
		t.Errorf("verify --file: exit %d, %q %q", code, got, errs)
	}
	edited := strings.Replace(out, `"decision_id":"d40"`, `"decision_id":"d41"`, 1)
	if err := os.WriteFile(file, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, got, _ := runCmd("audit-log", "verify", "--file", file); code != exitCritical || !strings.HasPrefix(got, "chain broken at entry 40 (edited)") {
		t.Errorf("verify --file of an edited export: exit %d, %q; want 2 naming entry 40", code, got)
	}
	if code, _, errs := runCmd("audit-log", "verify", "--file", file, "--db", path); code != exitUnknown || !strings.Contains(errs, "--file verifies an export") {
		t.Errorf("--file with --db: exit %d, %q", code, errs)
	}

	code, out, _ = runCmd("audit-log", "export", "--db", path, "--since", "24h")
	lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != exitOK || len(lines) != 25 || !strings.HasPrefix(lines[0], `{"seq":26,`) {
		t.Errorf("export --since 24h: exit %d, %d lines from %.12s; want 25 from seq 26", code, len(lines), lines[0])
	}
}
