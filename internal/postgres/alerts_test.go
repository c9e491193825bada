package postgres

import (
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	alertstoretest "github.com/portpatrol/portpatrol/internal/alert/storetest"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// openSchema opens cfg, on a new schema when cfg.DSN is empty, and closes it at
// cleanup.
func openSchema(t *testing.T, cfg Config) *DB {
	t.Helper()
	if cfg.DSN == "" {
		cfg.DSN, _ = newSchema(t)
	}
	db, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestAlertStore(t *testing.T) {
	alertstoretest.Run(t, func(t *testing.T) alert.Store { return openSchema(t, Config{}) })
}

// TestAlertsSurviveRestart saves an alert and a silence, reconnects and finds them; a
// resolved alert, however old, stays until the engine deletes it.
func TestAlertsSurviveRestart(t *testing.T) {
	dsn, _ := newSchema(t)
	now := notifytest.T0.Add(30 * 24 * time.Hour)
	cfg := Config{DSN: dsn, OutboxMaxAge: time.Hour, Now: func() time.Time { return now }}
	rec := alert.Record{Alert: notifytest.Alert(), Chain: "default", Notified: true}
	rec.Alert.State, rec.Alert.ResolvedAt = patrol.AlertResolved, notifytest.T0.Add(time.Hour)
	// jsonb would refuse the escaped NUL; the json column keeps it.
	rec.Alert.Evidence[0].Error = "read: \x00\x00 garbage"
	sil := alert.Silence{ID: "s1", Author: "alice", StartsAt: notifytest.T0, EndsAt: notifytest.T0.Add(time.Hour)}

	db, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SaveAlert(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveSilence(t.Context(), sil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Compact(t.Context(), now); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = openSchema(t, cfg)
	alerts, err := db.LoadAlerts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].Alert.ID != rec.Alert.ID || alerts[0].Alert.State != patrol.AlertResolved {
		t.Fatalf("after restart: got alerts %+v, want %s resolved", alerts, rec.Alert.ID)
	}
	if got, want := alerts[0].Alert.Evidence[0].Error, rec.Alert.Evidence[0].Error; got != want {
		t.Errorf("evidence error: got %q, want %q", got, want)
	}
	sils, err := db.LoadSilences(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(sils) != 1 || sils[0].ID != "s1" {
		t.Errorf("after restart: got silences %+v, want s1", sils)
	}
}
