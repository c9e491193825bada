package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// The event types of GET /api/v1/events.
const (
	// EventTarget carries a target's state as in GET /api/v1/targets, without its
	// alert summary: alert events carry that.
	EventTarget = "target"
	// EventAlert carries an alert as in GET /api/v1/alerts.
	EventAlert = "alert"
)

// Event is one message of the event stream. ID is "<epoch>-<seq>": the epoch changes
// with every Broker, so a client resuming across a restart is told to reload.
type Event struct {
	ID   string
	Type string
	Data json.RawMessage
}

// BrokerConfig sizes a Broker. The zero value means the defaults.
type BrokerConfig struct {
	// History is how many recent events are kept for clients resuming with
	// Last-Event-ID; default 1024.
	History int
	// Buffer is how many events may wait for one subscriber; a subscriber that falls
	// further behind is dropped and told so. Default 256.
	Buffer int
}

// Broker fans events out to subscribers and keeps a bounded ring of recent ones. Build
// it with NewBroker; it is safe for concurrent use.
type Broker struct {
	buffer int
	epoch  string

	mu     sync.Mutex
	seq    uint64
	ring   []Event // ring[i%len] holds seq i+1
	subs   map[*Subscription]struct{}
	closed bool
}

// NewBroker returns an empty Broker.
func NewBroker(cfg BrokerConfig) *Broker {
	if cfg.History <= 0 {
		cfg.History = 1024
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	var e [4]byte
	_, _ = rand.Read(e[:])
	return &Broker{buffer: cfg.Buffer, epoch: hex.EncodeToString(e[:]),
		ring: make([]Event, cfg.History), subs: map[*Subscription]struct{}{}}
}

// Subscription receives events from a Broker until it is dropped or cancelled.
type Subscription struct {
	b *Broker
	c chan Event
	// done is closed when the broker drops the subscription; reason says why.
	done   chan struct{}
	reason string
}

// C returns the channel events arrive on.
func (s *Subscription) C() <-chan Event { return s.c }

// Done is closed when the broker has dropped the subscription: it fell behind, or the
// broker closed. Reason says which.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Reason says why the subscription was dropped; empty while it is not.
func (s *Subscription) Reason() string {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.reason
}

// Cancel ends the subscription.
func (s *Subscription) Cancel() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.drop(s, "")
}

// drop removes s; the caller holds b.mu.
func (b *Broker) drop(s *Subscription, reason string) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	s.reason = reason
	close(s.done)
}

// Publish sends an event of type typ carrying data as JSON to every subscriber, and
// returns it. It never blocks: a subscriber whose buffer is full is dropped.
func (b *Broker) Publish(typ string, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("publish %s event: %w", typ, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return Event{}, fmt.Errorf("publish %s event: broker closed", typ)
	}
	b.seq++
	ev := Event{ID: b.epoch + "-" + strconv.FormatUint(b.seq, 10), Type: typ, Data: raw}
	b.ring[(b.seq-1)%uint64(len(b.ring))] = ev
	for s := range b.subs {
		select {
		case s.c <- ev:
		default:
			b.drop(s, fmt.Sprintf("fell more than %d events behind", b.buffer))
		}
	}
	return ev, nil
}

// PublishTarget publishes a target's new state.
func (b *Broker) PublishTarget(t patrol.TargetState) error {
	_, err := b.Publish(EventTarget, newTargetView(t, nil))
	return err
}

// PublishAlert publishes an alert that changed.
func (b *Broker) PublishAlert(a patrol.Alert) error {
	_, err := b.Publish(EventAlert, newAlertView(a))
	return err
}

// Subscribe starts a subscription. With a lastID from an earlier event it also returns
// the events after it; complete is false when they are no longer all kept (or lastID
// is from another broker), and the client must reload what it shows.
func (b *Broker) Subscribe(lastID string) (sub *Subscription, replay []Event, complete bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sub = &Subscription{b: b, c: make(chan Event, b.buffer), done: make(chan struct{})}
	if b.closed {
		sub.reason = "server shutting down"
		close(sub.done)
		return sub, nil, true
	}
	b.subs[sub] = struct{}{}
	if lastID == "" {
		return sub, nil, true
	}
	epoch, seqText, _ := strings.Cut(lastID, "-")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	oldest := uint64(1)
	if b.seq > uint64(len(b.ring)) {
		oldest = b.seq - uint64(len(b.ring)) + 1
	}
	if err != nil || epoch != b.epoch || seq > b.seq || seq+1 < oldest {
		return sub, nil, false
	}
	for i := seq + 1; i <= b.seq; i++ {
		replay = append(replay, b.ring[(i-1)%uint64(len(b.ring))])
	}
	return sub, replay, true
}

// Subscribers returns how many subscriptions are live.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Close drops every subscriber, so event streams end (call it when the HTTP server
// shuts down: http.Server.RegisterOnShutdown), and refuses later events.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.drop(s, "server shutting down")
	}
}

// events answers GET /api/v1/events with a server-sent event stream.
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ Identity) {
	rc := http.NewResponseController(w)
	// The stream outlives any server-wide write timeout.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var (
		evc  <-chan Event
		done <-chan struct{}
		sub  *Subscription
	)
	fmt.Fprint(w, ": portpatrol events\nretry: 3000\n\n")
	if s.cfg.Broker != nil {
		last := r.Header.Get("Last-Event-ID")
		if last == "" {
			last = r.URL.Query().Get("last_event_id")
		}
		var replay []Event
		var complete bool
		sub, replay, complete = s.cfg.Broker.Subscribe(last)
		defer sub.Cancel()
		evc, done = sub.C(), sub.Done()
		if !complete {
			fmt.Fprint(w, "event: reset\ndata: {\"reason\":\"events since Last-Event-ID are no longer kept; reload\"}\n\n")
		}
		for _, ev := range replay {
			writeEvent(w, ev)
		}
	}
	if err := rc.Flush(); err != nil {
		return
	}
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-evc:
			writeEvent(w, ev)
		case <-done:
			reason, _ := json.Marshal(map[string]string{"reason": sub.Reason()})
			fmt.Fprintf(w, "event: dropped\ndata: %s\n\n", reason)
			_ = rc.Flush()
			return
		case <-tick.C:
			fmt.Fprint(w, ": heartbeat\n\n")
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// writeEvent writes one event; its JSON data holds no newline.
func writeEvent(w http.ResponseWriter, ev Event) {
	fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, ev.Data)
}
