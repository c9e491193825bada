package sqlstore

import (
	"fmt"

	"github.com/portpatrol/portpatrol/internal/store"
)

// Migration is one step of a schema. Versions count from 1 and never change once
// released: a new schema is a new migration appended to the list.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrate brings a schema at version have up to the last of migrations, applying
// each newer one in order with apply, which runs its SQL and records it as applied in
// the backend's transaction. It applies nothing and returns a *store.SchemaTooNewError
// when have is newer than every migration.
func Migrate(have int, migrations []Migration, apply func(Migration) error) error {
	if err := store.CheckSchema(have, migrations[len(migrations)-1].Version); err != nil {
		return err
	}
	for _, m := range migrations {
		if m.Version <= have {
			continue
		}
		if err := apply(m); err != nil {
			return fmt.Errorf("migrate to version %d (%s): %w", m.Version, m.Name, err)
		}
	}
	return nil
}
