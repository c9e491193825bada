// Package sqlstore holds what the SQL backends, internal/sqlite and internal/postgres,
// share around their SQL: the migration runner, the column lists both schemas have in
// common and the mapping between those rows and the stored types. Each backend keeps
// its SQL, its driver and its transactions; the functions here take the rows that
// database/sql and pgx both return.
package sqlstore

import (
	"encoding/json"
	"fmt"
)

// Scanner is one row to read: a *sql.Row, a pgx.Row, or the current row of Rows.
type Scanner interface {
	Scan(dest ...any) error
}

// Rows is the result of a query, as *sql.Rows and pgx.Rows both provide it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// Collect reads every row with scan and returns the values in order, nil when there
// are none. It does not close rows: the caller does, as it opened them.
func Collect[T any](rows Rows, scan func(Scanner) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// CollectJSON decodes rows of (id, JSON) into values of T, naming the id in decoding
// errors. It returns an empty, non-nil slice when there are no rows, and does not
// close rows.
func CollectJSON[T any](rows Rows) ([]T, error) {
	out := []T{}
	for rows.Next() {
		var id, b string
		if err := rows.Scan(&id, &b); err != nil {
			return nil, err
		}
		var v T
		if err := json.Unmarshal([]byte(b), &v); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
