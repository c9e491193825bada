package automation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/portpatrol/portpatrol/internal/auditlog"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/postgres"
	"github.com/portpatrol/portpatrol/internal/sqlite"
	"github.com/portpatrol/portpatrol/internal/store"
)

// learnedState keeps the state as one learned-set row, as the daemon does.
type learnedState struct{ db store.LearnedStore }

func (l learnedState) LoadState(ctx context.Context) ([]byte, error) {
	v, err := l.db.GetLearned(ctx, "automation", "engine")
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v.Value, err
}

func (l learnedState) SaveState(ctx context.Context, b []byte) error {
	return l.db.PutLearned(ctx, store.Learned{Namespace: "automation", Key: "engine", Value: b})
}

// The breakers' attempts and a pending approval survive a restart (a new engine over the
// same SQLite store): the restored breaker still stops the crash-looping target, and the
// restored request is approved by another person and runs.
func TestStateSurvivesRestart(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "pp.db")
		stateSurvivesRestart(t, func() (store.LearnedStore, func()) {
			db, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
			if err != nil {
				t.Fatal(err)
			}
			return db, func() { _ = db.Close() }
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgSchema(t)
		stateSurvivesRestart(t, func() (store.LearnedStore, func()) {
			db, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn})
			if err != nil {
				t.Fatal(err)
			}
			return db, func() { _ = db.Close() }
		})
	})
}

// pgSchema creates a schema of its own on the test server and returns a DSN selecting
// it; it skips without a server, except under CI=true.
func pgSchema(t *testing.T) string {
	t.Helper()
	base := os.Getenv("PORTPATROL_TEST_POSTGRES")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s: %v", base, err)
		}
		t.Skipf("PostgreSQL at %s unreachable (set PORTPATROL_TEST_POSTGRES; CI=true fails instead): %v", base, err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("portpatrol_automation_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			_, _ = c.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`)
			_ = c.Close(ctx)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func stateSurvivesRestart(t *testing.T, open func() (store.LearnedStore, func())) {
	ctx := context.Background()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	t.Cleanup(srv.Close)
	cfg := Config{Mode: ModeOn, Breaker: Breaker{Attempts: 1}, Playbooks: []Playbook{
		{Name: "restart", Mode: PlaybookAuto, Trigger: Trigger{Labels: []string{"service=web"}},
			Steps: []Step{{Name: "restart", Action: "http", Risk: R1, Params: Params{URL: srv.URL + "/restart"},
				Verify: Verify{Window: time.Second, Interval: 100 * time.Millisecond}}}},
		{Name: "failover", Mode: PlaybookSuggest, Trigger: Trigger{Labels: []string{"service=db"}},
			Steps: []Step{{Name: "switch", Action: "http", Risk: R2, Params: Params{URL: srv.URL + "/failover"},
				Verify: Verify{Window: time.Second, Interval: 100 * time.Millisecond}}}},
	}}
	clk := newFakeClock()
	start := func() (*Engine, *memRecorder, func()) {
		db, closeDB := open()
		rec := &memRecorder{}
		e, err := New(cfg, Deps{Recorder: rec, Clock: clk, State: learnedState{db},
			Probe: func(context.Context, patrol.Alert) (bool, string) { return true, "ok" }})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Restore(ctx); err != nil {
			t.Fatal(err)
		}
		return e, rec, closeDB
	}

	e1, _, stop1 := start()
	e1.HandleAlert(ctx, alertFor("w1", "tcp://web:80", patrol.P0, map[string]string{"service": "web"}))
	e1.HandleAlert(ctx, alertFor("d1", "tcp://db:5432", patrol.P0, map[string]string{"service": "db"}))
	reqs := e1.Requests()
	if len(reqs) != 1 || calls.Load() != 1 {
		t.Fatalf("before the restart: %d requests, %d calls; want 1 and 1", len(reqs), calls.Load())
	}
	stop1() // the daemon goes away

	e2, rec2, stop2 := start()
	defer stop2()
	got := e2.Requests()
	if len(got) != 1 || got[0].ID != reqs[0].ID || got[0].State != StatePending || got[0].Plan.Hash != reqs[0].Plan.Hash {
		t.Fatalf("after the restart: requests %+v, want %s pending", got, reqs[0].ID)
	}
	st := e2.State()
	if len(st.Breakers) != 1 || st.Breakers[0].Target != "tcp://web:80" || len(st.Breakers[0].Attempts) != 1 || st.FleetCount != 1 {
		t.Fatalf("after the restart: breakers %+v, fleet %d", st.Breakers, st.FleetCount)
	}
	if r := rec2.find(auditlog.KindControl, "restored"); len(r) != 1 || !strings.Contains(r[0].Reasons[0], "1 pending approval request(s), 1 breaker(s)") {
		t.Errorf("restore recorded %+v", r)
	}
	// The restored breaker still stops the target.
	e2.HandleAlert(ctx, alertFor("w2", "tcp://web:80", patrol.P0, map[string]string{"service": "web"}))
	if n := calls.Load(); n != 1 {
		t.Errorf("the web step ran again after the restart: %d calls", n)
	}
	if r := rec2.find(auditlog.KindDecision, "did nothing"); len(r) != 1 || !strings.Contains(strings.Join(r[0].Reasons, " "), "breaker open") {
		t.Errorf("want the breaker's refusal, got %+v", r)
	}
	// The restored request: its requester cannot approve it; another person can, and it runs.
	if _, err := e2.Approve(ctx, got[0].ID, Approver{Name: Actor}, ""); err == nil {
		t.Error("portpatrol approved its own restored request")
	}
	if _, err := e2.Approve(ctx, got[0].ID, Approver{Name: "bob", Roles: []string{"operator"}}, "go"); err != nil {
		t.Fatal(err)
	}
	e2.Wait()
	if n := calls.Load(); n != 2 {
		t.Errorf("the approved failover: %d calls in all, want 2", n)
	}
	if r := rec2.find(auditlog.KindVerification, "recovered"); len(r) != 1 || r[0].Playbook != "failover" {
		t.Errorf("the restored run did not recover: %s", rec2.dump())
	}
}

// A pending request whose playbook is gone after the restart is voided, with the reason.
func TestRestoreVoidsUnconfiguredRequest(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "pp.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := Config{Mode: ModeOn, Playbooks: []Playbook{{Name: "failover", Mode: PlaybookSuggest,
		Steps: []Step{{Name: "switch", Action: "http", Risk: R2, Params: Params{URL: "http://127.0.0.1:9/"}}}}}}
	e1, err := New(cfg, Deps{Recorder: &memRecorder{}, State: learnedState{db}})
	if err != nil {
		t.Fatal(err)
	}
	e1.HandleAlert(ctx, alertFor("d1", "tcp://db:5432", patrol.P0, nil))
	cfg.Playbooks[0].Name = "failover-v2"
	rec := &memRecorder{}
	e2, err := New(cfg, Deps{Recorder: rec, State: learnedState{db}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(e2.Requests()); n != 0 {
		t.Errorf("%d requests restored, want none", n)
	}
	if v := rec.find(auditlog.KindExpiry, "void"); len(v) != 1 || !strings.Contains(v[0].Reasons[0], "failover/switch is no longer configured") {
		t.Errorf("void: %+v", v)
	}
}
