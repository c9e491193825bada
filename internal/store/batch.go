package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Overflow says what BatchWriter.Write does when the buffer is full.
type Overflow int

// The overflow policies.
const (
	// OverflowBlock makes Write wait for room until its context is done: the probes
	// slow down to the pace of the disk and nothing is lost. The default.
	OverflowBlock Overflow = iota
	// OverflowDrop makes Write return ErrBufferFull at once, counting the result as
	// dropped: probing keeps its pace and history gets gaps.
	OverflowDrop
)

// BatchConfig configures a BatchWriter. The zero value means the defaults.
type BatchConfig struct {
	// Size is how many results make a batch; default 1000.
	Size int
	// Interval is the longest a result waits for its batch; default 250ms. The writer
	// keeps no timer while it has nothing to write.
	Interval time.Duration
	// Buffer is how many results may wait to be batched; default 16384. Memory is
	// bounded by Buffer+Size results.
	Buffer int
	// Overflow is the policy when the buffer is full; default OverflowBlock.
	Overflow Overflow
	// Attempts is how many times a batch is tried before its results are counted as
	// failed and discarded; default 4, with a backoff doubling from RetryBackoff
	// (default 100ms). While a batch is retried the buffer fills, and Overflow applies.
	Attempts     int
	RetryBackoff time.Duration
	// Hold, when over 0, keeps up to Hold results whose batch failed every attempt
	// and tries them again with the next batch, at most every HoldRetry (default 1s),
	// while the buffer keeps draining: a store that is down or full for minutes loses
	// nothing within the bound, and Write does not block. Beyond Hold the oldest are
	// discarded and counted as failed. 0 discards a failed batch at once.
	Hold      int
	HoldRetry time.Duration
	// WriteTimeout bounds one WriteResults call; default 30s.
	WriteTimeout time.Duration
	// Logger receives failed writes; nil discards them (Stats still counts them).
	Logger *slog.Logger
	// NewTicker makes the interval ticker; nil uses time.NewTicker. Tests pass a
	// ticker they drive.
	NewTicker func(d time.Duration) (c <-chan time.Time, stop func())
}

func (c BatchConfig) withDefaults() BatchConfig {
	if c.Size <= 0 {
		c.Size = 1000
	}
	if c.Interval <= 0 {
		c.Interval = 250 * time.Millisecond
	}
	if c.Buffer <= 0 {
		c.Buffer = 16384
	}
	if c.Attempts <= 0 {
		c.Attempts = 4
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.HoldRetry <= 0 {
		c.HoldRetry = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.NewTicker == nil {
		c.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	return c
}

// BatchStats counts what a BatchWriter did with the results it was given.
type BatchStats struct {
	Accepted uint64 // taken into the buffer
	Written  uint64 // committed to the store
	Dropped  uint64 // refused by Write: buffer full, context done or writer closed
	Failed   uint64 // accepted, but discarded after every attempt to write them failed
	Batches  uint64 // committed transactions
	// Held is how many results wait, after a failed write, to be tried again (Hold);
	// WriteErrors counts the write attempts that failed.
	Held        uint64
	WriteErrors uint64
}

// BatchWriter turns a stream of results into few transactions: it buffers results
// and writes them through a ResultWriter every Size results or every Interval,
// whichever comes first. Build it with NewBatchWriter; the zero value is not usable.
// It is safe for concurrent use.
type BatchWriter struct {
	w   ResultWriter
	cfg BatchConfig
	ch  chan batchItem

	mu        sync.RWMutex // held for reading while sending on ch; for writing to close it
	closed    bool
	closing   chan struct{} // closed when Close starts: blocked Writes give up
	closeOnce sync.Once
	done      chan struct{} // closed when run returns
	ctx       context.Context
	cancel    context.CancelFunc // aborts writes in flight when Close's context ends

	accepted, written, dropped, failed, batches, held, writeErrors atomic.Uint64
}

type batchItem struct {
	r     patrol.Result
	flush chan error // non-nil for a flush request
}

// NewBatchWriter starts a BatchWriter writing to w. Close it to stop its goroutine.
func NewBatchWriter(w ResultWriter, cfg BatchConfig) *BatchWriter {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	b := &BatchWriter{
		w:       w,
		cfg:     cfg,
		ch:      make(chan batchItem, cfg.Buffer),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
	}
	go b.run()
	return b
}

// Write hands r to the writer. It returns nil once r is buffered; the Overflow policy
// decides what happens when the buffer is full. It returns ErrClosed after Close.
func (b *BatchWriter) Write(ctx context.Context, r patrol.Result) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		b.dropped.Add(1)
		return ErrClosed
	}
	it := batchItem{r: r}
	select {
	case b.ch <- it:
		b.accepted.Add(1)
		return nil
	default:
	}
	if b.cfg.Overflow == OverflowDrop {
		b.dropped.Add(1)
		return ErrBufferFull
	}
	select {
	case b.ch <- it:
		b.accepted.Add(1)
		return nil
	case <-ctx.Done():
		b.dropped.Add(1)
		return fmt.Errorf("buffer result of %s: %w", r.Target, ctx.Err())
	case <-b.closing:
		b.dropped.Add(1)
		return ErrClosed
	}
}

// Flush writes every result accepted before the call and returns the error of the
// last attempt to write them, if they were discarded.
func (b *BatchWriter) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	select {
	case b.ch <- batchItem{flush: reply}:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return fmt.Errorf("flush: %w", ctx.Err())
	case <-b.closing:
		b.mu.RUnlock()
		return ErrClosed
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("flush: %w", ctx.Err())
	}
}

// Close stops accepting results, writes every buffered one and stops. If ctx ends
// first, the write in flight is aborted and Close reports how many results were lost.
// Calling Close again returns ErrClosed.
func (b *BatchWriter) Close(ctx context.Context) error {
	b.closeOnce.Do(func() { close(b.closing) }) // before Lock: blocked Writes hold RLock
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.closed = true
	close(b.ch)
	b.mu.Unlock()
	select {
	case <-b.done:
		b.cancel()
		if f := b.failed.Load(); f > 0 {
			return fmt.Errorf("close: %d results could not be written", f)
		}
		return nil
	case <-ctx.Done():
		b.cancel()
		<-b.done
		return fmt.Errorf("close: %d results not written: %w", b.failed.Load(), ctx.Err())
	}
}

// Stats returns the counters so far.
func (b *BatchWriter) Stats() BatchStats {
	return BatchStats{
		Accepted:    b.accepted.Load(),
		Written:     b.written.Load(),
		Dropped:     b.dropped.Load(),
		Failed:      b.failed.Load(),
		Batches:     b.batches.Load(),
		Held:        b.held.Load(),
		WriteErrors: b.writeErrors.Load(),
	}
}

// run batches what Write hands over. The interval's ticker runs only while a batch
// waits: an idle daemon's writer does not wake four times a second for nothing.
func (b *BatchWriter) run() {
	defer close(b.done)
	var (
		tick <-chan time.Time
		stop = func() {}
	)
	defer func() { stop() }()
	batch := make([]patrol.Result, 0, b.cfg.Size)
	var retryAt time.Time // while results are held: not before then
	flush := func() error {
		if b.cfg.Hold > 0 && len(batch) > 0 && time.Now().Before(retryAt) {
			return errHeld
		}
		err := b.write(batch)
		if err != nil && b.cfg.Hold > 0 && b.ctx.Err() == nil {
			if over := len(batch) - b.cfg.Hold; over > 0 {
				b.failed.Add(uint64(over))
				batch = append(batch[:0], batch[over:]...)
			}
			b.held.Store(uint64(len(batch)))
			retryAt = time.Now().Add(b.cfg.HoldRetry)
			return err
		}
		if err != nil {
			b.failed.Add(uint64(len(batch)))
		}
		b.held.Store(0)
		batch = batch[:0]
		stop()
		tick, stop = nil, func() {}
		return err
	}
	for {
		select {
		case it, ok := <-b.ch:
			if !ok {
				retryAt = time.Time{}
				if flush() != nil && b.cfg.Hold > 0 {
					b.failed.Add(uint64(len(batch))) // held, and the last try at close failed
					b.held.Store(0)
				}
				return
			}
			if it.flush != nil {
				it.flush <- flush()
				continue
			}
			if len(batch) == 0 {
				tick, stop = b.cfg.NewTicker(b.cfg.Interval)
			}
			batch = append(batch, it.r)
			if len(batch) >= b.cfg.Size && (b.cfg.Hold == 0 || len(batch)%b.cfg.Size == 0) {
				flush()
			} else if b.cfg.Hold > 0 && len(batch) > b.cfg.Hold {
				b.failed.Add(1) // held beyond the bound: the oldest goes
				batch = append(batch[:0], batch[1:]...)
			}
		case <-tick:
			flush()
		}
	}
}

// write commits batch, retrying with backoff; it returns the last error when the
// batch is discarded.
func (b *BatchWriter) write(batch []patrol.Result) error {
	if len(batch) == 0 {
		return nil
	}
	backoff := b.cfg.RetryBackoff
	var err error
	for attempt := 1; attempt <= b.cfg.Attempts; attempt++ {
		ctx, cancel := context.WithTimeout(b.ctx, b.cfg.WriteTimeout)
		err = b.w.WriteResults(ctx, batch)
		cancel()
		if err != nil {
			b.writeErrors.Add(1)
		}
		if err == nil {
			b.written.Add(uint64(len(batch)))
			b.batches.Add(1)
			return nil
		}
		if attempt == b.cfg.Attempts || b.ctx.Err() != nil {
			break
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-b.ctx.Done():
			t.Stop()
		}
		backoff *= 2
	}
	err = fmt.Errorf("write %d results: %w", len(batch), err)
	if errors.Is(err, context.Canceled) && b.ctx.Err() != nil {
		err = fmt.Errorf("write %d results: aborted by close: %w", len(batch), b.ctx.Err())
	}
	if b.cfg.Hold > 0 && b.ctx.Err() == nil {
		b.cfg.Logger.Warn("results held to be written again", "count", min(len(batch), b.cfg.Hold), "err", err)
		return err
	}
	b.cfg.Logger.Error("results discarded", "count", len(batch), "err", err)
	return err
}

// errHeld is Flush's answer while results wait, after a failed write, for the next try.
var errHeld = errors.New("results held after a failed write; the next try is due shortly")
