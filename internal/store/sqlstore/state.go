package sqlstore

import (
	"fmt"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

// StateColumns are the columns of the states table, in the order of StateArgs and
// ScanState.
const StateColumns = `target, status, flapping, since_ns, last_ns, last_class, last_duration_ns, last_error, labels, updated_ns`

// StateArgs validates s and returns the values of its StateColumns; a zero UpdatedAt
// is stamped with now.
func StateArgs(s *patrol.TargetState, now time.Time) ([]any, error) {
	if err := store.ValidateState(s); err != nil {
		return nil, err
	}
	labels, err := store.EncodeLabels(s.Labels)
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", s.Target, err)
	}
	updated := s.UpdatedAt
	if updated.IsZero() {
		updated = now
	}
	return []any{s.Target, string(s.Status), s.Flapping, store.TimeNS(s.Since), store.TimeNS(s.Last.Time),
		string(s.Last.Class), int64(s.Last.Duration), s.Last.Error, labels, store.TimeNS(updated)}, nil
}

// ScanState reads a row of StateColumns.
func ScanState(sc Scanner) (patrol.TargetState, error) {
	var s patrol.TargetState
	var status, class, labels string
	var since, last, dur, updated int64
	if err := sc.Scan(&s.Target, &status, &s.Flapping, &since, &last, &class, &dur, &s.Last.Error, &labels, &updated); err != nil {
		return s, err
	}
	s.Status, s.Last.Class, s.Last.Duration = patrol.Status(status), patrol.Class(class), time.Duration(dur)
	s.Since, s.Last.Time, s.UpdatedAt = store.NSTime(since), store.NSTime(last), store.NSTime(updated)
	var err error
	s.Labels, err = store.DecodeLabels(labels)
	return s, err
}
