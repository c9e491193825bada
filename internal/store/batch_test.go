package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// writerFunc is a hand-written ResultWriter.
type writerFunc func(ctx context.Context, rs []patrol.Result) error

func (f writerFunc) WriteResults(ctx context.Context, rs []patrol.Result) error { return f(ctx, rs) }

func TestBatchWriterDropsWhenFull(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var got int
	w := NewBatchWriter(writerFunc(func(ctx context.Context, rs []patrol.Result) error {
		<-release
		mu.Lock()
		got += len(rs)
		mu.Unlock()
		return nil
	}), BatchConfig{Size: 1, Buffer: 4, Overflow: OverflowDrop})
	ctx := t.Context()
	// One result blocks in the writer, four fill the buffer; the rest are dropped.
	var accepted, full int
	for range 20 {
		switch err := w.Write(ctx, patrol.Result{Target: "t"}); {
		case err == nil:
			accepted++
		case errors.Is(err, ErrBufferFull):
			full++
		default:
			t.Fatal(err)
		}
	}
	if accepted < 4 || accepted > 5 || accepted+full != 20 {
		t.Errorf("accepted %d, full %d; want 4 or 5 accepted, the rest refused", accepted, full)
	}
	close(release)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Dropped != uint64(full) || st.Written != uint64(accepted) || got != accepted {
		t.Errorf("stats %+v, stored %d; want %d dropped, %d written", st, got, full, accepted)
	}
}

func TestBatchWriterBlocksUntilContextDone(t *testing.T) {
	release := make(chan struct{})
	w := NewBatchWriter(writerFunc(func(ctx context.Context, rs []patrol.Result) error {
		<-release
		return nil
	}), BatchConfig{Size: 1, Buffer: 1})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	var err error
	for range 5 {
		if err = w.Write(ctx, patrol.Result{Target: "t"}); err != nil {
			break
		}
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("write to a full buffer: got %v, want the context's deadline", err)
	}
	close(release)
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Dropped != 1 || st.Written != st.Accepted {
		t.Errorf("stats %+v: want 1 dropped and every accepted result written", st)
	}
}

func TestBatchWriterRetriesThenFails(t *testing.T) {
	var calls int
	boom := errors.New("disk full")
	w := NewBatchWriter(writerFunc(func(ctx context.Context, rs []patrol.Result) error {
		calls++
		if calls == 1 {
			return boom // the first attempt fails, the retry succeeds
		}
		if rs[0].Target == "bad" {
			return boom
		}
		return nil
	}), BatchConfig{Attempts: 3, RetryBackoff: time.Millisecond})
	ctx := t.Context()
	w.Write(ctx, patrol.Result{Target: "good"})
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("flush after one failed attempt: %v", err)
	}
	w.Write(ctx, patrol.Result{Target: "bad"})
	if err := w.Flush(ctx); !errors.Is(err, boom) {
		t.Errorf("flush of a batch failing every attempt: got %v, want %v", err, boom)
	}
	if err := w.Close(ctx); err == nil {
		t.Error("close after a lost batch: got nil, want the loss reported")
	}
	if st := w.Stats(); st.Written != 1 || st.Failed != 1 || calls != 5 {
		t.Errorf("stats %+v after %d calls; want 1 written, 1 failed, 5 calls", st, calls)
	}
}

func TestBatchWriterCloseAbortsOnDeadline(t *testing.T) {
	w := NewBatchWriter(writerFunc(func(ctx context.Context, rs []patrol.Result) error {
		<-ctx.Done() // a store that never answers
		return ctx.Err()
	}), BatchConfig{})
	w.Write(t.Context(), patrol.Result{Target: "t"})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("close: got %v, want the deadline", err)
	}
	if st := w.Stats(); st.Failed != 1 {
		t.Errorf("stats %+v: want the result counted failed", st)
	}
}

func TestChooseResolution(t *testing.T) {
	now := time.Date(2031, 1, 10, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		from time.Duration // before now
		span time.Duration
		want patrol.Resolution
	}{
		{time.Hour, time.Hour, patrol.ResolutionRaw},
		{6 * time.Hour, 6 * time.Hour, patrol.ResolutionRaw},
		{7 * time.Hour, 7 * time.Hour, patrol.ResolutionMinute},
		{50 * time.Hour, time.Hour, patrol.ResolutionMinute}, // raw no longer kept
		{3 * 24 * time.Hour, 3 * 24 * time.Hour, patrol.ResolutionMinute},
		{4 * 24 * time.Hour, 4 * 24 * time.Hour, patrol.ResolutionHour},
		{91 * 24 * time.Hour, time.Hour, patrol.ResolutionHour},
	} {
		from := now.Add(-tt.from)
		if got := ChooseResolution(from, from.Add(tt.span), now, Retention{}); got != tt.want {
			t.Errorf("from now-%s for %s: got %s, want %s", tt.from, tt.span, got, tt.want)
		}
	}
}

func TestRawStep(t *testing.T) {
	for _, tt := range []struct{ span, want time.Duration }{
		{time.Minute, time.Second},
		{time.Hour, 10 * time.Second},
		{6 * time.Hour, time.Minute},
		{30 * 24 * time.Hour, 2 * time.Hour},
	} {
		if got := RawStep(tt.span); got != tt.want {
			t.Errorf("RawStep(%s): got %s, want %s", tt.span, got, tt.want)
		}
	}
}

func TestNearestRank(t *testing.T) {
	var v []time.Duration
	for i := 1; i <= 20; i++ {
		v = append(v, time.Duration(i))
	}
	for _, tt := range []struct {
		pct  int
		want time.Duration
	}{{50, 10}, {95, 19}, {99, 20}, {100, 20}, {1, 1}} {
		if got := NearestRank(v, tt.pct); got != tt.want {
			t.Errorf("p%d of 1..20: got %d, want %d", tt.pct, got, tt.want)
		}
	}
	if got := NearestRank(nil, 50); got != 0 {
		t.Errorf("p50 of nothing: got %d, want 0", got)
	}
}

func TestRetentionValidate(t *testing.T) {
	if err := (Retention{}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if err := (Retention{Raw: time.Minute}).WithDefaults().Validate(); err == nil {
		t.Error("raw kept 1m with a 2m rollup delay: got nil, want an error")
	}
}
