package store

import (
	"os"
	"testing"
)

func isRoot() bool { return os.Geteuid() == 0 }

func TestDefaultDataDir(t *testing.T) {
	t.Setenv("PORTPATROL_DATA_DIR", "/srv/pp")
	if got, err := DefaultDataDir(); err != nil || got != "/srv/pp" {
		t.Errorf("with PORTPATROL_DATA_DIR: got %q, %v", got, err)
	}
	t.Setenv("PORTPATROL_DATA_DIR", "")
	t.Setenv("XDG_STATE_HOME", "/home/u/.state")
	t.Setenv("HOME", "/home/u")
	got, err := DefaultDataDir()
	want := "/home/u/.state/portpatrol"
	if isRoot() {
		want = "/var/lib/portpatrol"
	}
	if err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	if !isRoot() {
		t.Setenv("XDG_STATE_HOME", "")
		if got, _ := DefaultDataDir(); got != "/home/u/.local/state/portpatrol" {
			t.Errorf("without XDG_STATE_HOME: got %q, want /home/u/.local/state/portpatrol", got)
		}
	}
}
