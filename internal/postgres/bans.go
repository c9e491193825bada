package postgres

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
		return errors.New("postgres: put ban: empty address")
	}
	rec, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("postgres: put ban %s: %w", b.Addr, err)
	}
	end := b.Expires
	if !b.Lifted.IsZero() && b.Lifted.Before(end) {
		end = b.Lifted
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO bans (addr, record, end_ns, updated_ns) VALUES ($1, $2::json, $3, $4)
		ON CONFLICT (addr) DO UPDATE SET record = excluded.record, end_ns = excluded.end_ns, updated_ns = excluded.updated_ns`,
		b.Addr, string(rec), end.UnixNano(), db.now().UnixNano()); err != nil {
		return fmt.Errorf("postgres: put ban %s: %w", b.Addr, err)
	}
	return nil
}

// ListBans returns every ban kept, ordered by address.
func (db *DB) ListBans(ctx context.Context) ([]store.Ban, error) {
	rows, err := db.pool.Query(ctx, `SELECT addr, record::text FROM bans ORDER BY addr`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list bans: %w", err)
	}
	defer rows.Close()
	out, err := sqlstore.CollectJSON[store.Ban](rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: list bans: %w", err)
	}
	return out, nil
}

// DeleteBans forgets the bans that ended before t.
func (db *DB) DeleteBans(ctx context.Context, before time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM bans WHERE end_ns < $1`, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("postgres: delete bans: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
