package hostwatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/store"
)

// batchStore is a memStore that writes batches, can hold them until released, and
// can fail.
type batchStore struct {
	*memStore
	hold    chan struct{} // when not nil, a batch waits for it to close
	entered chan int      // receives the size of each batch as it starts
	mu      sync.Mutex
	batches []int // sizes of the batches written
	fail    int   // how many more batches fail
}

func newBatchStore() *batchStore {
	return &batchStore{memStore: newMemStore(), entered: make(chan int, 100)}
}

func (s *batchStore) PutLearnedBatch(ctx context.Context, ls []store.Learned) error {
	s.entered <- len(ls)
	s.mu.Lock()
	hold := s.hold
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return errors.New("database is locked")
	}
	for _, l := range ls {
		if err := s.memStore.PutLearned(ctx, l); err != nil {
			return err
		}
	}
	s.batches = append(s.batches, len(ls))
	return nil
}

func (s *batchStore) PutLearned(context.Context, store.Learned) error {
	return errors.New("a batch store is written in batches")
}

var _ BatchStore = (*batchStore)(nil)

// manySocks is n TCP listeners on 127.0.0.1 from port 20000 on, held by pid 4242.
func manySocks(n int) []inventory.Socket {
	out := make([]inventory.Socket, n)
	for i := range out {
		out[i] = sock(fmt.Sprintf("127.0.0.1:%d", 20000+i), uint64(1000+i), "worker", 4242)
	}
	return out
}

// TestThousandLearnedAtOnceDoNotHoldUpLossDetection learns 1,000 listeners in one
// dump while the store is slow (it holds every write until released): the dumps that
// follow notice one of them gone and page while the write is still under way. The
// thousand rows are written in one batch, the gone one's change coalesced into the
// next, and a restart finds all 1,000.
func TestThousandLearnedAtOnceDoNotHoldUpLossDetection(t *testing.T) {
	st := newBatchStore()
	release := make(chan struct{})
	st.hold = release
	h := newHarness(t, Config{Store: st})
	socks := manySocks(1000)
	h.src.set(socks...)

	done := make(chan struct{})
	go func() {
		defer close(done)
		h.step(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval) + 1)
		if n := len(targetsOf(h.w)); n != 1000 {
			t.Errorf("learned: got %d targets, want 1000", n)
		}
		// The batch of the thousand is under way, and held.
		if n := <-st.entered; n != 1000 {
			t.Errorf("first batch: got %d rows, want 1000", n)
		}
		h.src.set(socks[1:]...)
		h.step(h.w.cfg.ConfirmTicks)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatal("the watch loop waited for the store: dumps did not go on while the learned set was being written")
	}
	if t.Failed() {
		close(release)
		return
	}
	gone := "tcp://127.0.0.1:20000"
	h.wantEvents("one of the thousand gone", is("unreachable", "", gone, true))
	st.mu.Lock()
	written := len(st.batches)
	st.mu.Unlock()
	if written != 0 {
		t.Fatalf("the loss was paged after %d batches were written, want it paged while the first was held", written)
	}

	close(release)
	h.flush()
	st.mu.Lock()
	batches := st.batches
	st.mu.Unlock()
	if len(batches) != 2 || batches[0] != 1000 || batches[1] != 1 {
		t.Errorf("batches: got %v, want [1000 1]: the thousand in one, then the gone one's change", batches)
	}
	if err := h.w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	h2 := newHarness(t, Config{Store: st})
	if n := len(targetsOf(h2.w)); n != 1000 {
		t.Fatalf("after a restart: got %d targets, want 1000", n)
	}
	l := listed(t, h2.w, "127.0.0.1:20000")
	if l.GoneSince.IsZero() {
		t.Errorf("the gone listener after a restart: got %+v, want it stored gone", l)
	}
}

// TestCloseWritesWhatIsPending stops the watch with changes queued behind a slow
// write: Close writes them all.
func TestCloseWritesWhatIsPending(t *testing.T) {
	st := newBatchStore()
	release := make(chan struct{})
	st.hold = release
	h := newHarness(t, Config{Store: st, LearnAfter: time.Second})
	h.src.set(manySocks(10)...)
	h.step(ticks(time.Second, h.w.cfg.Interval) + 1)
	<-st.entered
	h.src.set(manySocks(20)...)
	h.step(ticks(time.Second, h.w.cfg.Interval) + 1)
	closed := make(chan error, 1)
	go func() { closed <- h.w.Close(context.Background()) }()
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	ls, _ := st.ListLearned(context.Background(), Namespace)
	if len(ls) != 20 {
		t.Fatalf("after Close: got %d listeners stored, want 20", len(ls))
	}
	// A change after Close is written at once.
	if _, err := h.w.Forget(context.Background(), "127.0.0.1:20003"); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t, Config{Store: st})
	if n := len(targetsOf(h2.w)); n != 19 {
		t.Errorf("after a forget past Close: got %d targets, want 19", n)
	}
}

// TestFailedWriteIsRetriedAndLoggedOnce fails the first three writes: the background
// writer retries until the row is stored, logging the failure once and the recovery
// once.
func TestFailedWriteIsRetriedAndLoggedOnce(t *testing.T) {
	st := newBatchStore()
	st.fail = 3
	var logs bytes.Buffer
	var logMu sync.Mutex
	h := newHarness(t, Config{Store: st, Logger: slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, nil))})
	h.w.saver.retry = time.Millisecond
	h.src.set(sock("127.0.0.1:6379", 10, "redis-server", 100))
	h.step(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval) + 1)
	for range 4 { // three failures, then the write that succeeds
		<-st.entered
	}
	if err := h.w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetLearned(context.Background(), Namespace, "tcp://127.0.0.1:6379"); err != nil {
		t.Fatalf("after the retries: %v", err)
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if n := strings.Count(out, "store learned listeners: will retry"); n != 1 {
		t.Errorf("failure logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "stored learned listeners again"); n != 1 {
		t.Errorf("recovery logged %d times, want once:\n%s", n, out)
	}
	h.w.mu.Lock()
	persisted := h.w.ls[key{inventory.TCP, netip.MustParseAddrPort("127.0.0.1:6379")}].persisted
	h.w.mu.Unlock()
	if !persisted {
		t.Error("listener not marked stored after the write succeeded")
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestCloseGivesUpOnAHungStore: a store that never answers does not hold Close past
// its context; the error says what was not written.
func TestCloseGivesUpOnAHungStore(t *testing.T) {
	st := newBatchStore()
	st.hold = make(chan struct{}) // never released
	h := newHarness(t, Config{Store: st})
	h.hung = true
	h.src.set(sock("127.0.0.1:6379", 10, "redis-server", 100))
	h.step(ticks(h.w.cfg.LearnAfter, h.w.cfg.Interval) + 1)
	<-st.entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := h.w.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "store learned listeners") {
		t.Fatalf("Close with a hung store: got %v, want the deadline, named", err)
	}
	if ls, _ := st.ListLearned(context.Background(), Namespace); len(ls) != 0 {
		t.Errorf("stored %d rows through a hung store", len(ls))
	}
}
