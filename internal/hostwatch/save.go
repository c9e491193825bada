package hostwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/store"
)

// BatchStore is a Store that writes many values in one transaction: all of them or
// none. The SQLite and PostgreSQL stores are. A Store that is not one is written a
// row at a time, still off the watch loop.
type BatchStore interface {
	PutLearnedBatch(ctx context.Context, ls []store.Learned) error
}

// The delays between attempts to write the learned set after a failure.
const (
	saveRetryMin = time.Second
	saveRetryMax = 30 * time.Second
)

// saver writes the changes to the learned set in the background, so that the watch
// loop never waits for the store: learning a thousand listeners at once must not hold
// up the next dump, which notices one of them gone. Changes to one listener coalesce:
// only its latest value is written. A failed write is kept and retried, its error
// logged once until a write succeeds again.
type saver struct {
	w *Watch

	mu      sync.Mutex
	pending map[string]learnedValue // by listener ID, the latest value of each
	started bool
	closed  bool
	failing bool          // the last write failed, and that was logged
	writing chan struct{} // held while a write is under way
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	ctx     context.Context // of the background writes; cancelled when Close gives up
	cancel  context.CancelFunc
	retry   time.Duration // the first delay after a failure; 0 means saveRetryMin
}

func newSaver(w *Watch) *saver {
	ctx, cancel := context.WithCancel(context.Background())
	return &saver{w: w, pending: map[string]learnedValue{}, writing: make(chan struct{}, 1),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), ctx: ctx, cancel: cancel}
}

// save queues vs to be written. It never waits for the store.
func (s *saver) save(vs ...learnedValue) {
	if s.w.cfg.Store == nil || len(vs) == 0 {
		return
	}
	s.mu.Lock()
	for _, v := range vs {
		s.pending[v.Proto+"://"+v.Bind] = v
	}
	if !s.started && !s.closed {
		s.started = true
		go s.run()
	}
	closed := s.closed
	s.mu.Unlock()
	if closed {
		// Saved after Close: written now, so that nothing is lost.
		s.write(context.Background())
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run writes what is pending whenever there is something, until close.
func (s *saver) run() {
	defer close(s.done)
	first := cmpOr(s.retry, saveRetryMin)
	delay := first
	var retry <-chan time.Time
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
			if retry != nil {
				continue // waiting out a failure
			}
		case <-retry:
			retry = nil
		}
		if err := s.write(s.ctx); err != nil {
			retry = time.After(delay)
			delay = min(2*delay, saveRetryMax)
			continue
		}
		delay = first
	}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// write writes what is pending in one transaction. On failure what was taken goes
// back to pending, unless a newer value of the same listener arrived meanwhile.
func (s *saver) write(ctx context.Context) error {
	select { // one write at a time, in the order they were queued
	case s.writing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writing }()
	s.mu.Lock()
	if len(s.pending) == 0 {
		s.mu.Unlock()
		return nil
	}
	batch := s.pending
	s.pending = map[string]learnedValue{}
	s.mu.Unlock()

	err := s.put(ctx, batch)

	s.mu.Lock()
	if err != nil {
		for id, v := range batch {
			if _, newer := s.pending[id]; !newer {
				s.pending[id] = v
			}
		}
	}
	wasFailing := s.failing
	s.failing = err != nil
	running := s.started && !s.closed
	s.mu.Unlock()
	if err != nil && running {
		select { // the background writer retries it
		case s.kick <- struct{}{}:
		default:
		}
	}

	switch {
	case err != nil && !wasFailing:
		s.w.log.Warn("store learned listeners: will retry", "listeners", len(batch), "err", err)
	case err == nil && wasFailing:
		s.w.log.Info("stored learned listeners again", "listeners", len(batch))
	}
	if err == nil {
		s.w.markPersisted(batch)
	}
	return err
}

// put writes batch, in one transaction when the store can.
func (s *saver) put(ctx context.Context, batch map[string]learnedValue) error {
	ls := make([]store.Learned, 0, len(batch))
	for _, id := range slices.Sorted(maps.Keys(batch)) {
		b, err := json.Marshal(batch[id])
		if err != nil {
			return fmt.Errorf("encode learned listener %s: %w", id, err)
		}
		ls = append(ls, store.Learned{Namespace: Namespace, Key: id, Value: b})
	}
	if bs, ok := s.w.cfg.Store.(BatchStore); ok {
		return bs.PutLearnedBatch(ctx, ls)
	}
	var errs []error
	for _, l := range ls {
		if err := s.w.cfg.Store.PutLearned(ctx, l); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// flush waits until everything saved before it is written, or ctx is done. It
// returns the error of the last write when something is still pending.
func (s *saver) flush(ctx context.Context) error {
	if s.w.cfg.Store == nil {
		return nil
	}
	return s.write(ctx)
}

// close stops the background writer and writes what is pending.
func (s *saver) close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return s.flush(ctx)
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	if started {
		close(s.stop)
		select {
		case <-s.done:
		case <-ctx.Done(): // a write hangs: abandon it
			s.cancel()
			<-s.done
		}
	}
	s.cancel()
	return s.flush(ctx)
}

// markPersisted notes that the listeners of batch are in the store.
func (w *Watch) markPersisted(batch map[string]learnedValue) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, v := range batch {
		if v.Forgotten {
			continue
		}
		proto, rest, _ := strings.Cut(id, "://")
		bind, err := netip.ParseAddrPort(rest)
		if err != nil {
			continue
		}
		if l := w.ls[key{inventory.Proto(proto), bind}]; l != nil && l.expected {
			l.persisted = true
		}
	}
}

// Flush waits until every change to the learned set made so far is in the store, or
// ctx is done. It returns the store's error when a change could not be written (it
// stays queued and is retried).
func (w *Watch) Flush(ctx context.Context) error { return w.saver.flush(ctx) }

// Close writes what is left of the learned set to the store and stops the writer.
// Call it after Run has returned; a change made after Close is written at once. It
// is safe to call more than once.
func (w *Watch) Close(ctx context.Context) error {
	if err := w.saver.close(ctx); err != nil {
		return fmt.Errorf("store learned listeners: %w", err)
	}
	return nil
}
