package daemon

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/store"
)

// auditLogBuffer is a log destination that the daemon's workers and the test share.
type auditLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *auditLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *auditLogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAuditChainHead: the daemon's audit log stamps entries on the injected clock,
// /metrics shows the head (also one appended by another writer of the store), and the
// head is logged at start and every hour of the daemon's clock.
func TestAuditChainHead(t *testing.T) {
	clock := notifytest.NewClock(time.Date(2031, 5, 6, 7, 0, 0, 0, time.UTC))
	var logs auditLogBuffer
	d, err := New(Config{Config: parse(t, "host_watch: {disabled: true}\n"), DataDir: t.TempDir(), Clock: clock,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	l := d.AuditLog()
	if l == nil {
		t.Fatal("no audit log on the SQLite store")
	}
	if h := l.Head(); h.Seq != 0 {
		t.Errorf("head of a new store: %v, want empty", h)
	}
	var last auditlog.Entry
	for i := range 3 {
		if last, err = l.Append(t.Context(), auditlog.Record{Kind: auditlog.KindDecision, Actor: "portpatrol",
			Reasons: []string{fmt.Sprintf("decision %d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if !last.Time.Equal(clock.Now()) {
		t.Errorf("entry time %v, want the daemon's clock %v", last.Time, clock.Now())
	}
	base := runDaemon(t, d)
	waitFor(t, base+"/metrics", "portpatrol_audit_chain_entries 3\n",
		fmt.Sprintf("portpatrol_audit_chain_head_info{hash=%q} 1\n", last.Hash))
	waitAuditLog(t, &logs, fmt.Sprintf("pin=3:%s", last.Hash))

	// Another writer of the same store (another instance, or the CLI) moves the head:
	// /metrics reads it on scrape, the log on the hour.
	other, err := auditlog.New(auditlog.Config{Store: d.db.(store.AuditChainStore)})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if last, err = other.Append(t.Context(), auditlog.Record{Kind: auditlog.KindApproval, Actor: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, base+"/metrics", "portpatrol_audit_chain_entries 5\n",
		fmt.Sprintf("portpatrol_audit_chain_head_info{hash=%q} 1\n", last.Hash))
	if strings.Contains(logs.String(), "pin=5:") {
		t.Fatal("the new head was logged before the hour passed")
	}
	want := fmt.Sprintf("pin=5:%s", last.Hash)
	within(t, clock, 10*time.Minute, "the head logged on the hour", func() bool { return strings.Contains(logs.String(), want) })

	// A replica sharing the store knows the head from New on.
	d2, err := New(Config{Config: parse(t, "host_watch: {disabled: true}\n"), Store: d.db, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if h := d2.AuditLog().Head(); h.Seq != 5 || h.Hash != last.Hash {
		t.Errorf("head of a replica after New: %v, want 5 %s", h, last.Hash)
	}
}

// waitAuditLog waits until the log holds want, or fails after 30s.
func waitAuditLog(t *testing.T, logs *auditLogBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never held %q:\n%s", want, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
