package sqlstore

import (
	"time"

	"github.com/portpatrol/portpatrol/internal/store"
)

// ScanLearned returns a scan of the learned rows (key, value as text, updated_ns) of
// namespace.
func ScanLearned(namespace string) func(Scanner) (store.Learned, error) {
	return func(sc Scanner) (store.Learned, error) {
		l := store.Learned{Namespace: namespace}
		var value string
		var updated int64
		if err := sc.Scan(&l.Key, &value, &updated); err != nil {
			return l, err
		}
		l.Value, l.UpdatedAt = []byte(value), time.Unix(0, updated)
		return l, nil
	}
}
