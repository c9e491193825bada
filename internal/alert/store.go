package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Record is an alert with the engine's bookkeeping: what it owes to whom and what has
// already been sent, so that a restarted engine neither pages twice nor forgets to
// page. Records are what the Store keeps; Engine.Get returns a copy.
type Record struct {
	Alert patrol.Alert `json:"alert"`
	// Chain is the escalation chain chosen when the alert was created.
	Chain string `json:"chain"`
	// Notified reports that the first step has been sent the firing notice.
	Notified bool `json:"notified,omitempty"`
	// Flapping mirrors the scheduler's flap detection; FlapNotified reports that the
	// one flapping notice has been sent.
	Flapping     bool `json:"flapping,omitempty"`
	FlapNotified bool `json:"flap_notified,omitempty"`
	// NextReminder is when everyone told is next reminded; Reminders counts the
	// reminders sent.
	NextReminder time.Time `json:"next_reminder,omitzero"`
	Reminders    int       `json:"reminders,omitempty"`
	// Owed lists the notifications decided but not yet handed to the sink.
	Owed []Owed `json:"owed,omitempty"`
	// Notes is the journal of acknowledgements and manual resolutions.
	Notes []patrol.Note `json:"notes,omitempty"`
	// ImpactAudience is the audience ("customer=acme") the alert's customer impact
	// notice is owed or was sent to; empty when there is none.
	ImpactAudience string `json:"impact_audience,omitempty"`
	// ImpactTold lists the receivers sent the impact notice; they are sent the
	// resolved one. They are not in Alert.Told, which is who hears of internals.
	ImpactTold []string `json:"impact_told,omitempty"`
}

// Owed is a notification the engine has decided to send: of Kind, numbered Seq
// (the escalation step, or the reminder's number), to the Receivers not yet sent it.
type Owed struct {
	Kind      patrol.NotificationKind `json:"kind"`
	Seq       int                     `json:"seq"`
	Receivers []string                `json:"receivers"`
	// Sent reports that at least one receiver has been sent it.
	Sent bool `json:"sent,omitempty"`
}

// AlertStore keeps alert records.
//
// Contract, for every implementation:
//   - SaveAlert inserts or replaces the record with ID r.Alert.ID. It must keep every
//     field of r as encoding/json round-trips it (a JSON column is enough); times
//     need only survive to the nanosecond, not their monotonic reading or zone.
//   - DeleteAlert removes the record with that ID; deleting a missing ID is not an
//     error.
//   - LoadAlerts returns every saved record not deleted, in any order.
//   - A successful call is durable before it returns: the engine sends a notification
//     only after the record that owes it was saved, and saves what it sent right
//     after the sink accepted it.
//   - Methods obey ctx and are safe for concurrent use. The engine calls them with its
//     lock held, so they must not call back into the Engine.
type AlertStore interface {
	SaveAlert(ctx context.Context, r Record) error
	DeleteAlert(ctx context.Context, id string) error
	LoadAlerts(ctx context.Context) ([]Record, error)
}

// SilenceStore keeps silences, under the same contract as AlertStore with Silence.ID
// as the key.
type SilenceStore interface {
	SaveSilence(ctx context.Context, s patrol.Silence) error
	DeleteSilence(ctx context.Context, id string) error
	LoadSilences(ctx context.Context) ([]patrol.Silence, error)
}

// AlertBatchStore is an AlertStore that also saves and deletes many records at once.
// When the engine's Store has it, the engine saves what changed since its last save
// in a few transactions instead of one per record: an outage of thousands of targets
// opens thousands of alerts at once, and a durable transaction each would cost the
// disk a flush each.
//
// Contract: SaveAlerts saves every record of save and deletes every ID of del, as
// SaveAlert and DeleteAlert would, all or none, durably before it returns. An ID is in
// at most one of the two lists.
type AlertBatchStore interface {
	SaveAlerts(ctx context.Context, save []Record, del []string) error
}

// Store is what the engine persists to, so that alerts and silences survive a restart
// without a second page.
type Store interface {
	AlertStore
	SilenceStore
}

// MemStore is a Store in memory, for tests and for running without a database. It
// keeps records as JSON, so what it returns is exactly what a store that follows the
// contract would return. The zero value is not usable; call NewMemStore. It is safe for
// concurrent use.
type MemStore struct {
	mu       sync.Mutex
	alerts   map[string][]byte
	silences map[string][]byte
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{alerts: map[string][]byte{}, silences: map[string][]byte{}}
}

// SaveAlert implements AlertStore.
func (m *MemStore) SaveAlert(ctx context.Context, r Record) error {
	if r.Alert.ID == "" {
		return fmt.Errorf("save alert: empty ID")
	}
	return memSave(ctx, &m.mu, m.alerts, r.Alert.ID, r)
}

// DeleteAlert implements AlertStore.
func (m *MemStore) DeleteAlert(ctx context.Context, id string) error {
	return memDelete(ctx, &m.mu, m.alerts, id)
}

// LoadAlerts implements AlertStore.
func (m *MemStore) LoadAlerts(ctx context.Context) ([]Record, error) {
	return memLoad[Record](ctx, &m.mu, m.alerts)
}

// SaveSilence implements SilenceStore.
func (m *MemStore) SaveSilence(ctx context.Context, s patrol.Silence) error {
	if s.ID == "" {
		return fmt.Errorf("save silence: empty ID")
	}
	return memSave(ctx, &m.mu, m.silences, s.ID, s)
}

// DeleteSilence implements SilenceStore.
func (m *MemStore) DeleteSilence(ctx context.Context, id string) error {
	return memDelete(ctx, &m.mu, m.silences, id)
}

// LoadSilences implements SilenceStore.
func (m *MemStore) LoadSilences(ctx context.Context) ([]patrol.Silence, error) {
	return memLoad[patrol.Silence](ctx, &m.mu, m.silences)
}

func memSave(ctx context.Context, mu *sync.Mutex, into map[string][]byte, id string, v any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("save %s: %w", id, err)
	}
	mu.Lock()
	defer mu.Unlock()
	into[id] = b
	return nil
}

func memDelete(ctx context.Context, mu *sync.Mutex, from map[string][]byte, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	delete(from, id)
	return nil
}

func memLoad[T any](ctx context.Context, mu *sync.Mutex, from map[string][]byte) ([]T, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	ids := make([]string, 0, len(from))
	for id := range from {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]T, 0, len(ids))
	for _, id := range ids {
		var v T
		if err := json.Unmarshal(from[id], &v); err != nil {
			return nil, fmt.Errorf("load %s: %w", id, err)
		}
		out = append(out, v)
	}
	return out, nil
}
