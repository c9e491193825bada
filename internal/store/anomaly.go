package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// AnomalyState is the learned state of one series of the anomaly detector
// (anomaly.Detector.MarshalBinary, about 12.7 KB at 5-minute buckets), so that a restart
// does not forget the baselines.
type AnomalyState struct {
	// Key names the series: "<signal> <target>", such as "latency tcp://10.0.0.5:6379".
	Key string
	// State is the detector's marshalled state; the store keeps it as it is.
	State []byte
	// Last is the time of the series' latest point.
	Last time.Time
}

// AnomalyStateStore keeps the anomaly detector's learned states, one row per series.
type AnomalyStateStore interface {
	// PutAnomalyStates inserts or replaces the states, all or none.
	PutAnomalyStates(ctx context.Context, states []AnomalyState) error
	// LoadAnomalyStates returns every state, ordered by key.
	LoadAnomalyStates(ctx context.Context) ([]AnomalyState, error)
	// DeleteAnomalyStates removes the states of the keys; unknown keys are ignored.
	DeleteAnomalyStates(ctx context.Context, keys []string) error
}

// MaxAnomalyState bounds one stored state, far above a detector's (a detector with
// 1-minute buckets marshals to about 62 KB).
const MaxAnomalyState = 1 << 20

// ValidateAnomalyStates checks states before they are written: a key and a state each,
// keys not repeated, states within MaxAnomalyState.
func ValidateAnomalyStates(states []AnomalyState) error {
	seen := make(map[string]bool, len(states))
	for i, s := range states {
		switch {
		case s.Key == "":
			return fmt.Errorf("anomaly state %d: empty key", i)
		case len(s.State) == 0:
			return fmt.Errorf("anomaly state %q: empty state", s.Key)
		case len(s.State) > MaxAnomalyState:
			return fmt.Errorf("anomaly state %q: %d bytes, over the limit of %d", s.Key, len(s.State), MaxAnomalyState)
		case seen[s.Key]:
			return fmt.Errorf("anomaly state %q: %w", s.Key, errRepeated)
		}
		seen[s.Key] = true
	}
	return nil
}

var errRepeated = errors.New("key given twice")
