package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemStore is a Store in memory, for tests and for running without a database: its
// deliveries do not survive the process. Like a database, it keeps copies: what is
// put or returned is a deep copy made through encoding/json. The zero value is an
// empty store, ready to use; it is safe for concurrent use.
type MemStore struct {
	mu      sync.Mutex
	seq     int64
	byseq   map[int64]*Delivery
	keys    map[[2]string]int64 // (receiver, key) → seq
	pending map[string][]int64  // receiver → pending seqs, ascending
}

var _ Store = (*MemStore)(nil)

func (s *MemStore) init() {
	if s.byseq == nil {
		s.byseq = map[int64]*Delivery{}
		s.keys = map[[2]string]int64{}
		s.pending = map[string][]int64{}
	}
}

// Put implements Store.
func (s *MemStore) Put(ctx context.Context, d Delivery) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	c, err := clone(d)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	k := [2]string{d.Receiver, d.Key}
	if _, dup := s.keys[k]; dup {
		return false, nil
	}
	s.seq++
	c.Seq = s.seq
	c.State = StatePending
	s.byseq[c.Seq] = &c
	s.keys[k] = c.Seq
	s.pending[c.Receiver] = append(s.pending[c.Receiver], c.Seq)
	return true, nil
}

// Due implements Store.
func (s *MemStore) Due(ctx context.Context, now time.Time, limit int) ([]Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Delivery
	for _, seqs := range s.pending {
		if len(seqs) == 0 || s.byseq[seqs[0]].NextAttempt.After(now) {
			continue
		}
		if limit > 0 && len(seqs) > limit {
			seqs = seqs[:limit]
		}
		for _, q := range seqs {
			c, err := clone(*s.byseq[q])
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// Update implements Store.
func (s *MemStore) Update(ctx context.Context, d Delivery) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.byseq[d.Seq]
	if !ok {
		return fmt.Errorf("update delivery %d: %w", d.Seq, ErrNotFound)
	}
	was := cur.State
	cur.State, cur.Attempts, cur.NextAttempt = d.State, d.Attempts, d.NextAttempt
	cur.LastAttempt, cur.LastError, cur.DoneAt = d.LastAttempt, d.LastError, d.DoneAt
	switch {
	case was == StatePending && d.State != StatePending:
		s.pending[cur.Receiver] = slices.DeleteFunc(s.pending[cur.Receiver], func(q int64) bool { return q == d.Seq })
	case was != StatePending && d.State == StatePending:
		p := s.pending[cur.Receiver]
		i, _ := slices.BinarySearch(p, d.Seq)
		s.pending[cur.Receiver] = slices.Insert(p, i, d.Seq)
	}
	return nil
}

// List implements Store.
func (s *MemStore) List(ctx context.Context, f Filter) ([]Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seqs := make([]int64, 0, len(s.byseq))
	for q := range s.byseq {
		if q > f.AfterSeq {
			seqs = append(seqs, q)
		}
	}
	slices.Sort(seqs)
	var out []Delivery
	for _, q := range seqs {
		d := s.byseq[q]
		if (f.Receiver != "" && d.Receiver != f.Receiver) ||
			(len(f.States) > 0 && !slices.Contains(f.States, d.State)) ||
			(!f.Since.IsZero() && d.EnqueuedAt.Before(f.Since)) {
			continue
		}
		c, err := clone(*d)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

// clone deep-copies d the way a database would: through its JSON form.
func clone(d Delivery) (Delivery, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return Delivery{}, fmt.Errorf("encode delivery: %w", err)
	}
	var c Delivery
	if err := json.Unmarshal(b, &c); err != nil {
		return Delivery{}, fmt.Errorf("decode delivery: %w", err)
	}
	return c, nil
}
