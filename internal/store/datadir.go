package store

import (
	"fmt"
	"os"
	"path/filepath"
)

// DefaultDataDir returns where portpatrol keeps its state: $PORTPATROL_DATA_DIR if
// set; /var/lib/portpatrol when running as root; else $XDG_STATE_HOME/portpatrol, or
// ~/.local/state/portpatrol. It does not create the directory; the daemon and the
// SQLite store create it 0700.
func DefaultDataDir() (string, error) {
	if d := os.Getenv("PORTPATROL_DATA_DIR"); d != "" {
		return d, nil
	}
	if os.Geteuid() == 0 {
		return "/var/lib/portpatrol", nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "portpatrol"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("data directory: set PORTPATROL_DATA_DIR: %w", err)
	}
	return filepath.Join(home, ".local", "state", "portpatrol"), nil
}
