package sqlstore

import (
	"encoding/json"
	"fmt"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/store"
)

// ScanDelivery reads an outbox row: seq, receiver, key, notification (JSON text),
// provider, enqueued_ns, state, attempts, next_ns, last_ns, last_error, done_ns.
// last_error is read as bytes, which both a text and a bytea column give.
func ScanDelivery(sc Scanner) (notify.Delivery, error) {
	var d notify.Delivery
	var n, state string
	var lastError []byte
	var enqueued, next, last, done int64
	if err := sc.Scan(&d.Seq, &d.Receiver, &d.Key, &n, &d.Provider, &enqueued,
		&state, &d.Attempts, &next, &last, &lastError, &done); err != nil {
		return d, err
	}
	if err := json.Unmarshal([]byte(n), &d.Notification); err != nil {
		return d, fmt.Errorf("delivery %d: notification: %w", d.Seq, err)
	}
	d.State, d.LastError = notify.State(state), string(lastError)
	d.EnqueuedAt, d.NextAttempt, d.LastAttempt, d.DoneAt = store.NSTime(enqueued), store.NSTime(next), store.NSTime(last), store.NSTime(done)
	return d, nil
}
