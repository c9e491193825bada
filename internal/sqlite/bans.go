package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

var _ store.BanStore = (*DB)(nil)

// PutBan inserts or replaces the ban of b.Addr.
func (db *DB) PutBan(ctx context.Context, b store.Ban) error {
	if b.Addr == "" {
		return errors.New("sqlite: put ban: empty address")
	}
	rec, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("sqlite: put ban %s: %w", b.Addr, err)
	}
	end := b.Expires
	if !b.Lifted.IsZero() && b.Lifted.Before(end) {
		end = b.Lifted
	}
	if _, err := db.write.ExecContext(ctx, `INSERT INTO bans (addr, record, end_ns, updated_ns) VALUES (?, ?, ?, ?)
		ON CONFLICT (addr) DO UPDATE SET record = excluded.record, end_ns = excluded.end_ns, updated_ns = excluded.updated_ns`,
		b.Addr, string(rec), end.UnixNano(), db.now().UnixNano()); err != nil {
		return fmt.Errorf("sqlite: put ban %s: %w", b.Addr, err)
	}
	return nil
}

// ListBans returns every ban kept, ordered by address.
func (db *DB) ListBans(ctx context.Context) ([]store.Ban, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT addr, record FROM bans ORDER BY addr`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list bans: %w", err)
	}
	defer rows.Close()
	out, err := sqlstore.CollectJSON[store.Ban](rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list bans: %w", err)
	}
	return out, nil
}

// DeleteBans forgets the bans that ended before t.
func (db *DB) DeleteBans(ctx context.Context, before time.Time) (int, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM bans WHERE end_ns < ?`, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete bans: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
