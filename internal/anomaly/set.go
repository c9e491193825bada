package anomaly

import (
	"sync"
	"time"
)

// Set holds one Detector per series key ("redis-1/latency", "host/:5432/established"), so
// that the daemon can feed every series it has through one value. The zero value is not
// usable; create it with NewSet. A Set is safe for concurrent use; points of one key must
// still come in time order.
type Set struct {
	cfg Config
	mu  sync.Mutex
	m   map[string]*Detector
}

// NewSet returns an empty Set whose detectors use cfg (Name and Direction are set per key).
func NewSet(cfg Config) *Set {
	return &Set{cfg: cfg, m: make(map[string]*Detector)}
}

// Observe feeds the next point of the series key, creating its detector on first use with
// the given name (for reasons) and direction. The name and direction of an existing key
// do not change.
func (s *Set) Observe(key, name string, dir Direction, t time.Time, v float64) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.m[key]
	if d == nil {
		cfg := s.cfg
		cfg.Name, cfg.Direction = name, dir
		d = New(cfg)
		s.m[key] = d
	}
	return d.Observe(t, v)
}

// Len returns the number of series in the set.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Forget drops the series key (a target that was removed).
func (s *Set) Forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// State returns the marshalled state of key for the store, or nil if the key is unknown.
func (s *Set) State(key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.m[key]
	if d == nil {
		return nil, nil
	}
	return d.MarshalBinary()
}

// Restore recreates the series key from a state written by State (after a restart).
func (s *Set) Restore(key, name string, dir Direction, state []byte) error {
	cfg := s.cfg
	cfg.Name, cfg.Direction = name, dir
	d := New(cfg)
	if err := d.UnmarshalBinary(state); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = d
	return nil
}
