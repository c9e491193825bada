// Package notify delivers notifications: a durable outbox in front of one Notifier per
// configured receiver (webhook, Slack, email, PagerDuty, Opsgenie, Alertmanager,
// DingTalk, Feishu/Lark, WeCom, Telegram — one subpackage each).
//
// Enqueue writes every notification to the Store before anything is sent. Run sends
// what is due: one receiver's deliveries go out one at a time in the order they were
// enqueued, so a receiver that was down gets everything, in order, once it is back; a
// failing head of the queue holds back only its own receiver. A temporary failure is
// retried with capped exponential backoff and jitter (or after the Retry-After the
// provider asked for) until the delivery is MaxAge old and expires; a permanent
// failure (a 4xx, a rejected payload) fails the delivery at once. The same (Key,
// Receiver) is delivered at most once however often it is enqueued.
package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Notifier sends one notification to one destination. Providers return a *send.Error
// to say whether a failure may be retried; any other error is treated as temporary.
type Notifier interface {
	Notify(ctx context.Context, n patrol.Notification) error
}

// Clock is the dispatcher's source of time. nil means the system clock.
type Clock interface {
	Now() time.Time
	// NewTicker returns a channel that receives every d, and a function that stops it.
	NewTicker(d time.Duration) (c <-chan time.Time, stop func())
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Receiver is a named destination.
type Receiver struct {
	Name string
	// Provider is the receiver's type ("slack"); it labels the counters.
	Provider string
	Notifier Notifier
	// Resend, when positive, makes the dispatcher send the receiver's active alerts
	// again every Resend until they resolve: Alertmanager forgets an alert that is not
	// re-sent before its endsAt.
	Resend time.Duration
}

// Outcome is what happened to a notification; it labels the counters.
type Outcome string

// The outcomes counted per provider.
const (
	OutcomeEnqueued  Outcome = "enqueued"  // written to the outbox
	OutcomeDuplicate Outcome = "duplicate" // its (Key, Receiver) was already in the outbox
	OutcomeDelivered Outcome = "delivered" // accepted by the provider
	OutcomeRetried   Outcome = "retried"   // a temporary failure; it will be tried again
	OutcomeFailed    Outcome = "failed"    // a permanent failure; it will not be tried again
	OutcomeExpired   Outcome = "expired"   // not delivered within MaxAge
)

// Outcomes lists the outcomes in a stable order.
var Outcomes = []Outcome{OutcomeEnqueued, OutcomeDuplicate, OutcomeDelivered, OutcomeRetried, OutcomeFailed, OutcomeExpired}

// Stat is one counter: how many notifications to receivers of a provider had an
// outcome. The daemon exports it as portpatrol_notifications_total{provider,outcome}.
type Stat struct {
	Provider string
	Outcome  Outcome
	Count    uint64
}

// Dispatcher is the outbox and its sender. Build it with New or NewDispatcher; it is
// safe for concurrent use.
type Dispatcher struct {
	store     Store
	clock     Clock
	o         OutboxConfig
	log       *slog.Logger
	receivers map[string]Receiver
	names     []string // sorted
	wake      chan struct{}
	resend    *resender

	dispatching sync.Mutex // one DispatchDue at a time
	// enqueuing makes each Enqueue, and each resend from its snapshot of active alerts
	// to its Put, one step: a resend decided before a resolve must not be written
	// after it (the receiver would see the alert firing again).
	enqueuing sync.Mutex

	mu    sync.Mutex
	stats map[[2]string]uint64 // (provider, outcome)
	busy  map[string]bool      // receivers with a drain in flight, under mu
	sem   chan struct{}        // Concurrency slots for drains
	// stopping is set when Run's context ends: drains start no new send.
	stopping atomic.Bool
	// standby, when set and reporting true, holds every send (see Standby).
	standby atomic.Pointer[func() bool]
}

// ShutdownGrace is how long a send in flight when Run's context ends may take to
// finish.
const ShutdownGrace = 3 * time.Second

// NewDispatcher builds a dispatcher for the given receivers; New builds them from a
// Config. o's zero fields take their defaults.
func NewDispatcher(o OutboxConfig, store Store, clock Clock, receivers ...Receiver) (*Dispatcher, error) {
	if store == nil {
		return nil, errors.New("notify: no store")
	}
	if clock == nil {
		clock = systemClock{}
	}
	o = o.withDefaults()
	if err := o.validate("outbox"); err != nil {
		return nil, err
	}
	d := &Dispatcher{
		store: store, clock: clock, o: o, log: o.Logger,
		receivers: make(map[string]Receiver, len(receivers)),
		wake:      make(chan struct{}, 1),
		resend:    newResender(),
		stats:     map[[2]string]uint64{},
		busy:      map[string]bool{},
		sem:       make(chan struct{}, o.Concurrency),
	}
	for _, r := range receivers {
		if r.Name == "" || r.Notifier == nil {
			return nil, fmt.Errorf("notify: receiver %q: missing name or notifier", r.Name)
		}
		if _, dup := d.receivers[r.Name]; dup {
			return nil, fmt.Errorf("notify: receiver %q defined twice", r.Name)
		}
		d.receivers[r.Name] = r
		d.names = append(d.names, r.Name)
		for _, oc := range Outcomes {
			d.stats[[2]string{r.Provider, string(oc)}] += 0
		}
	}
	sort.Strings(d.names)
	return d, nil
}

// Receivers returns the names of the receivers, sorted.
func (d *Dispatcher) Receivers() []string { return slices.Clone(d.names) }

// Enqueue writes the notifications to the outbox and wakes the sender. A notification
// whose (Key, Receiver) is already in the outbox is skipped, so enqueueing the same
// batch again is safe. It is the alert engine's sink. Notifications for receivers that
// are not configured are not written; the error names them, after the others have been
// written.
func (d *Dispatcher) Enqueue(ctx context.Context, ns []patrol.Notification) error {
	d.enqueuing.Lock()
	defer d.enqueuing.Unlock()
	return d.enqueue(ctx, ns)
}

// enqueue is Enqueue with d.enqueuing held.
func (d *Dispatcher) enqueue(ctx context.Context, ns []patrol.Notification) error {
	var errs []error
	now := d.clock.Now()
	wrote := false
	for _, n := range ns {
		r, ok := d.receivers[n.Receiver]
		if !ok {
			errs = append(errs, fmt.Errorf("notification %q: unknown receiver %q", n.Key, n.Receiver))
			continue
		}
		if n.Key == "" {
			errs = append(errs, fmt.Errorf("notification to %q: empty key", n.Receiver))
			continue
		}
		if n.CreatedAt.IsZero() {
			n.CreatedAt = now
		}
		ok, err := d.store.Put(ctx, Delivery{
			Receiver: n.Receiver, Key: n.Key, Notification: n, Provider: r.Provider,
			EnqueuedAt: now, State: StatePending, NextAttempt: now,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("enqueue %q for %q: %w", n.Key, n.Receiver, err))
			continue
		}
		if !ok {
			d.count(r.Provider, OutcomeDuplicate)
			continue
		}
		d.count(r.Provider, OutcomeEnqueued)
		wrote = true
		if r.Resend > 0 {
			d.resend.observe(r.Name, n, now)
		}
	}
	if wrote {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	return errors.Join(errs...)
}

// Run sends due deliveries until ctx is done, then waits for the sends in flight and
// returns nil. It wakes on every Enqueue, every PollInterval (to retry and to pick up
// deliveries another process wrote) and whenever a receiver's sends finish, and
// re-sends active alerts to receivers with a Resend interval. Each receiver is drained
// on its own: a receiver that takes its SendTimeout to answer holds back only its own
// queue, never another receiver's. Store errors are logged and retried at the next
// tick. Call Run once per Dispatcher.
func (d *Dispatcher) Run(ctx context.Context) error {
	tick, stop := d.clock.NewTicker(d.o.PollInterval)
	defer stop()
	d.seedResend(ctx)
	// Sends in flight when ctx ends get ShutdownGrace to finish and be recorded, so a
	// stop does not cut a delivery off half-way (and send it again after the restart);
	// no new send starts.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	stopGrace := context.AfterFunc(ctx, func() {
		d.stopping.Store(true)
		time.AfterFunc(ShutdownGrace, cancelSends)
	})
	defer stopGrace()
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		if !d.held() {
			if _, err := d.dispatch(sendCtx, &inflight, false); err != nil && ctx.Err() == nil {
				d.log.Error("notify: dispatch", "err", err)
			}
			d.resendDue(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		case <-d.wake:
		}
	}
}

// Standby makes the dispatcher send nothing, and resend no reminder, while held
// reports true. Processes that share an outbox (a PostgreSQL store) deliver only from
// the one that leads, so no notification goes out twice from two of them; a send in
// flight when held turns true finishes and is recorded. nil removes the hold.
func (d *Dispatcher) Standby(held func() bool) {
	if held == nil {
		d.standby.Store(nil)
		return
	}
	d.standby.Store(&held)
}

// held reports whether Standby holds the sends now.
func (d *Dispatcher) held() bool {
	f := d.standby.Load()
	return f != nil && (*f)()
}

// DispatchDue sends what is due now and waits for the sends to finish. Receivers are
// served in parallel, at most Concurrency at a time; each receiver's deliveries are
// sent one by one in order, stopping at the first that must be retried. A receiver
// whose sends Run already has in flight is left to them. It returns how many
// deliveries reached a final state. Tests and `notify flush` call it.
func (d *Dispatcher) DispatchDue(ctx context.Context) (int, error) {
	var wg sync.WaitGroup
	return d.dispatch(ctx, &wg, true)
}

// dispatch reads what is due and starts a drain of each receiver that has none in
// flight, counted in wg. With wait it waits for them and returns their outcome;
// without, each drain logs its own error and wakes Run when it ends.
func (d *Dispatcher) dispatch(ctx context.Context, wg *sync.WaitGroup, wait bool) (int, error) {
	d.dispatching.Lock()
	// Receivers busy before the read are left out even if their drain ends meanwhile:
	// what the read saw of them may be older than the drain's last update.
	d.mu.Lock()
	wasBusy := maps.Clone(d.busy)
	d.mu.Unlock()
	due, err := d.store.Due(ctx, d.clock.Now(), d.o.Batch)
	if err != nil {
		d.dispatching.Unlock()
		return 0, fmt.Errorf("read due deliveries: %w", err)
	}
	queues := map[string][]Delivery{}
	var order []string
	d.mu.Lock()
	for _, dl := range due {
		if d.busy[dl.Receiver] || wasBusy[dl.Receiver] {
			continue
		}
		if _, ok := queues[dl.Receiver]; !ok {
			order = append(order, dl.Receiver)
		}
		queues[dl.Receiver] = append(queues[dl.Receiver], dl)
	}
	for _, name := range order {
		d.busy[name] = true
	}
	d.mu.Unlock()
	d.dispatching.Unlock()
	var (
		mu   sync.Mutex
		done int
		errs []error
	)
	for _, name := range order {
		q := queues[name]
		slices.SortFunc(q, func(a, b Delivery) int { return cmp.Compare(a.Seq, b.Seq) })
		wg.Go(func() {
			defer func() {
				d.mu.Lock()
				delete(d.busy, name)
				d.mu.Unlock()
				if !wait {
					select {
					case d.wake <- struct{}{}:
					default:
					}
				}
			}()
			select {
			case d.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-d.sem }()
			n, err := d.drain(ctx, q)
			if err != nil && !wait && ctx.Err() == nil {
				d.log.Error("notify: dispatch", "receiver", name, "err", err)
			}
			mu.Lock()
			done += n
			if err != nil {
				errs = append(errs, err)
			}
			mu.Unlock()
		})
	}
	if !wait {
		return 0, nil
	}
	wg.Wait()
	return done, errors.Join(errs...)
}

// drain sends one receiver's due deliveries in order until one must wait.
func (d *Dispatcher) drain(ctx context.Context, q []Delivery) (int, error) {
	done := 0
	for _, dl := range q {
		if ctx.Err() != nil || d.stopping.Load() || d.held() {
			return done, nil
		}
		final, err := d.attempt(ctx, &dl)
		if err != nil {
			return done, err
		}
		if !final {
			return done, nil
		}
		done++
	}
	return done, nil
}

// attempt tries one delivery and records the outcome. It reports whether the delivery
// reached a final state; when it did not, the receiver's queue must wait.
func (d *Dispatcher) attempt(ctx context.Context, dl *Delivery) (final bool, err error) {
	now := d.clock.Now()
	r, ok := d.receivers[dl.Receiver]
	provider := dl.Provider
	if ok {
		provider = r.Provider
	}
	// What happened is recorded even when shutdown begins meanwhile: a message the
	// receiver accepted must not stay pending and go out again after a restart.
	record := func() error {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return d.store.Update(rctx, *dl)
	}
	finish := func(s State, oc Outcome, msg string) (bool, error) {
		dl.State, dl.DoneAt = s, d.clock.Now()
		if msg != "" {
			dl.LastError = msg
		}
		if err := record(); err != nil {
			return false, fmt.Errorf("record delivery %d to %s as %s: %w", dl.Seq, dl.Receiver, s, err)
		}
		d.count(provider, oc)
		return true, nil
	}
	expires := dl.EnqueuedAt.Add(d.o.MaxAge)
	if !now.Before(expires) {
		return finish(StateExpired, OutcomeExpired, "")
	}
	if !ok {
		return finish(StateFailed, OutcomeFailed, fmt.Sprintf("receiver %q is not configured", dl.Receiver))
	}
	sctx, cancel := context.WithTimeout(ctx, d.o.SendTimeout)
	sendErr := r.Notifier.Notify(sctx, dl.Notification)
	cancel()
	if sendErr != nil && ctx.Err() != nil {
		// Shutting down: the attempt was cut short, so it does not count.
		return false, nil
	}
	dl.Attempts++
	dl.LastAttempt = now
	if sendErr == nil {
		dl.LastError = ""
		return finish(StateDelivered, OutcomeDelivered, "")
	}
	if send.IsPermanent(sendErr) {
		return finish(StateFailed, OutcomeFailed, sendErr.Error())
	}
	dl.LastError = sendErr.Error()
	next := now.Add(d.backoff(dl.Attempts, send.RetryAfter(sendErr)))
	if next.After(expires) {
		next = expires
	}
	dl.NextAttempt = next
	if err := record(); err != nil {
		return false, fmt.Errorf("record retry of delivery %d to %s: %w", dl.Seq, dl.Receiver, err)
	}
	d.count(provider, OutcomeRetried)
	d.log.Warn("notify: send failed, will retry", "receiver", dl.Receiver, "key", dl.Key,
		"attempt", dl.Attempts, "next", next, "err", sendErr)
	return false, nil
}

// backoff returns the wait before attempt+1: BackoffMin doubled per attempt, capped
// at BackoffMax, with equal jitter (a uniform draw from its upper half), and never
// less than what the provider asked for.
func (d *Dispatcher) backoff(attempt int, retryAfter time.Duration) time.Duration {
	b := d.o.BackoffMin
	for i := 1; i < attempt && b < d.o.BackoffMax; i++ {
		b *= 2
	}
	b = min(b, d.o.BackoffMax)
	w := b/2 + time.Duration(d.o.Rand()*float64(b/2))
	return max(w, retryAfter)
}

// Test sends a test notification to the named receiver at once, bypassing the outbox,
// and returns the provider's error. It is `portpatrol notify test RECEIVER`.
func (d *Dispatcher) Test(ctx context.Context, receiver string) error {
	r, ok := d.receivers[receiver]
	if !ok {
		return fmt.Errorf("unknown receiver %q; configured: %s", receiver, strings.Join(d.names, ", "))
	}
	now := d.clock.Now()
	n := patrol.Notification{
		Key:       "test/" + now.UTC().Format(time.RFC3339Nano),
		Receiver:  receiver,
		Kind:      patrol.NotifyTest,
		CreatedAt: now,
	}
	sctx, cancel := context.WithTimeout(ctx, d.o.SendTimeout)
	defer cancel()
	if err := r.Notifier.Notify(sctx, n); err != nil {
		d.count(r.Provider, OutcomeFailed)
		return fmt.Errorf("receiver %q (%s): %w", receiver, r.Provider, err)
	}
	d.count(r.Provider, OutcomeDelivered)
	return nil
}

func (d *Dispatcher) count(provider string, oc Outcome) {
	d.mu.Lock()
	d.stats[[2]string{provider, string(oc)}]++
	d.mu.Unlock()
}

// Stats returns every counter, including zeros for each configured provider, sorted
// by provider and then in the order of Outcomes.
func (d *Dispatcher) Stats() []Stat {
	d.mu.Lock()
	out := make([]Stat, 0, len(d.stats))
	for k, v := range d.stats {
		out = append(out, Stat{Provider: k[0], Outcome: Outcome(k[1]), Count: v})
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b Stat) int {
		if c := strings.Compare(a.Provider, b.Provider); c != 0 {
			return c
		}
		return slices.Index(Outcomes, a.Outcome) - slices.Index(Outcomes, b.Outcome)
	})
	return out
}

// defaultRand is the jitter source when OutboxConfig.Rand is nil.
func defaultRand() float64 { return rand.Float64() }
