package anomaly

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	s := NewSet(Config{})
	rng := rand.New(rand.NewPCG(9, 9))
	at := 3*perDay + 7
	var wg sync.WaitGroup
	results := make([][]Result, 2)
	vals := make([][]float64, 2)
	for k := range vals {
		for i := range at + 1 {
			v := 120 + 10*rng.NormFloat64()
			if i == at && k == 1 {
				v = 0 // connections of the second key drop to zero
			}
			vals[k] = append(vals[k], v)
		}
	}
	for k, key := range []string{"db-1/connections", "db-2/connections"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, v := range vals[k] {
				r, err := s.Observe(key, "connections", Down, t0.Add(time.Duration(i)*step), v)
				if err != nil {
					t.Error(err)
					return
				}
				results[k] = append(results[k], r)
			}
		}()
	}
	wg.Wait()
	if s.Len() != 2 {
		t.Fatalf("Len: got %d, want 2", s.Len())
	}
	if results[0][at].Alert || !results[1][at].Alert {
		t.Errorf("at the drop: alerts %v and %v, want only the second key", results[0][at].Alert, results[1][at].Alert)
	}
	state, err := s.State("db-2/connections")
	if err != nil || len(state) == 0 {
		t.Fatalf("State: %d bytes, %v", len(state), err)
	}
	s2 := NewSet(Config{})
	if err := s2.Restore("db-2/connections", "connections", Down, state); err != nil {
		t.Fatal(err)
	}
	next := t0.Add(time.Duration(at+1) * step)
	r1, _ := s.Observe("db-2/connections", "connections", Down, next, 0)
	r2, _ := s2.Observe("db-2/connections", "connections", Down, next, 0)
	if r1 != r2 {
		t.Errorf("after Restore: got %+v, want %+v", r2, r1)
	}
	s.Forget("db-1/connections")
	if b, _ := s.State("db-1/connections"); b != nil || s.Len() != 1 {
		t.Errorf("after Forget: state %d bytes, Len %d; want none and 1", len(b), s.Len())
	}
}
