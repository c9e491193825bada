package sqlite

import (
	"context"
	"database/sql"
)

// syncTx runs f in a write transaction whose commit is fsynced. The connection runs
// synchronous=NORMAL, under which a commit survives a crash of the process but not of
// the machine; alerts and outbox deliveries must survive both, since a notification
// is sent on the strength of them. They are rare, so the fsync costs little. The
// writer's one connection is held throughout, so no other write sees the setting.
func (db *DB) syncTx(ctx context.Context, f func(*sql.Tx) error) error {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
		return err
	}
	// A failed reset leaves the connection fsyncing every commit: slower, not wrong.
	defer conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = NORMAL`)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}
