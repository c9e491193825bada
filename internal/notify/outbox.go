package notify

import (
	"context"
	"errors"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// State is where a delivery is in the outbox.
type State string

// The delivery states. Pending is the only state that is ever sent; the others are
// final.
const (
	StatePending   State = "pending"   // waiting for its first or next attempt
	StateDelivered State = "delivered" // the provider accepted it
	StateFailed    State = "failed"    // a permanent error; LastError says why
	StateExpired   State = "expired"   // not delivered within the outbox's max age
)

// Delivery is one notification for one receiver in the outbox.
type Delivery struct {
	// Seq is assigned by Store.Put: unique in the store, and increasing in the order
	// deliveries were put. It identifies the delivery and orders a receiver's queue.
	Seq int64 `json:"seq"`
	// Receiver and Key are the notification's; together they are unique in the store.
	Receiver     string              `json:"receiver"`
	Key          string              `json:"key"`
	Notification patrol.Notification `json:"notification"`
	// Provider is the receiver's type ("slack") when it was enqueued.
	Provider   string    `json:"provider"`
	EnqueuedAt time.Time `json:"enqueued_at"`

	// The fields below change as the delivery is tried; Store.Update writes them.
	State       State     `json:"state"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	// DoneAt is when the delivery reached a final state.
	DoneAt time.Time `json:"done_at,omitzero"`
}

// Filter selects deliveries for Store.List. The zero value selects every delivery.
type Filter struct {
	// Receiver, when set, selects that receiver's deliveries only.
	Receiver string
	// States, when set, selects deliveries in one of these states.
	States []State
	// Since, when set, selects deliveries enqueued at or after it.
	Since time.Time
	// AfterSeq selects deliveries with Seq > AfterSeq, for paging.
	AfterSeq int64
	// Limit caps the number returned; 0 means no cap.
	Limit int
}

// ErrNotFound is returned by Store.Update for a Seq the store does not hold.
var ErrNotFound = errors.New("delivery not found")

// Store is the outbox's durable storage. The dispatcher writes a delivery with Put
// before it tries to send it, so a delivery survives a crash at any point after Put
// returns; it is sent at least once, and exactly once unless the daemon stops between
// a provider accepting it and Update recording that.
//
// One dispatcher uses a store at a time (the daemon that holds leadership), so a
// store need not lock deliveries against concurrent senders. Methods must be safe for
// concurrent use and obey ctx. Times must round-trip at millisecond precision or
// better; the Notification must round-trip through encoding/json (a store may keep it
// as JSON). Deliveries in a final state may be pruned by the store once they are older
// than twice the outbox's max age; until then they keep their key from being put again.
//
// internal/notify/storetest is the suite every implementation must pass.
type Store interface {
	// Put adds d with State pending, unless the store already holds a delivery with
	// the same (Receiver, Key), in any state: then it changes nothing and returns
	// false. It assigns d.Seq (the given value is ignored) and stores every other field
	// as given.
	Put(ctx context.Context, d Delivery) (inserted bool, err error)
	// Due returns what may be sent at now. For each receiver it looks at that
	// receiver's pending deliveries in Seq order: if the first of them (the head) has
	// NextAttempt ≤ now, it returns the head and the pending deliveries after it, up
	// to limit in all for that receiver (limit ≤ 0: no limit); otherwise it returns
	// none of that receiver's. Each receiver's deliveries are in Seq order; receivers
	// may come in any order. So a head waiting to be retried holds back its receiver's
	// later deliveries, and no other receiver's.
	Due(ctx context.Context, now time.Time, limit int) ([]Delivery, error)
	// Update writes the mutable fields (State, Attempts, NextAttempt, LastAttempt,
	// LastError, DoneAt) of the delivery with d.Seq; other fields are ignored. It
	// returns ErrNotFound when there is no such delivery.
	Update(ctx context.Context, d Delivery) error
	// List returns the deliveries that f selects, in Seq order.
	List(ctx context.Context, f Filter) ([]Delivery, error)
}
