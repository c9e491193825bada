package alert

import (
	"fmt"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Annotate sets the diagnosis and the impact of an active alert, found outside the
// engine after it opened (an empty argument keeps what is there). A notification not
// yet sent carries them; the change hook and the API show them at once. It only takes
// the engine's lock for the assignment, so a slow diagnosis never holds up Observe.
func (e *Engine) Annotate(id, diagnosis, impact string) error {
	defer e.deliver() // after the unlock
	e.mu.Lock()
	defer e.mu.Unlock()
	ent, ok := e.alerts[id]
	switch {
	case !ok:
		return fmt.Errorf("annotate %s: %w", id, ErrNotFound)
	case ent.base() == patrol.AlertResolved:
		return fmt.Errorf("annotate %s: %w", id, ErrResolved)
	}
	a := &ent.Alert
	if (diagnosis == "" || diagnosis == a.Diagnosis) && (impact == "" || impact == a.Impact) {
		return nil
	}
	if diagnosis != "" {
		a.Diagnosis = diagnosis
	}
	if impact != "" {
		a.Impact = impact
	}
	e.touch(ent)
	return nil
}
