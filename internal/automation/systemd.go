package automation

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// Systemd restarts or starts a unit. This release runs systemctl (an argv, never a
// shell) rather than speaking D-Bus, and its pre-check says when systemd is not running.
type Systemd struct {
	Params Params
	// Root is the directory whose presence says systemd runs (default /run/systemd/system).
	Root string
}

var _ Action = (*Systemd)(nil)

type systemdDetail struct {
	argv    []string
	timeout time.Duration
}

// Plan builds the systemctl command.
func (s *Systemd) Plan(t Target) (Change, error) {
	op := s.Params.Operation
	if op == "" {
		op = "restart"
	}
	unit := t.expand(s.Params.Unit)
	d := systemdDetail{argv: []string{"systemctl", op, unit}, timeout: s.Params.Timeout}
	if d.timeout == 0 {
		d.timeout = DefaultExecTimeout
	}
	return Change{Action: "systemd", Target: t.ID, Params: map[string]string{"unit": unit, "operation": op},
		Diff: op + " unit " + unit + " (via " + quoteArgv(d.argv) + ")", detail: d}, nil
}

// PreCheck fails when systemd is not running here or systemctl is missing.
func (s *Systemd) PreCheck(_ context.Context, c Change) error {
	root := s.Root
	if root == "" {
		root = "/run/systemd/system"
	}
	d := c.detail.(systemdDetail)
	if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("systemd: systemd is not running on this host (%s is missing), so unit %s cannot be %sed; use an exec step for this host's service manager", root, d.argv[2], d.argv[1])
	}
	if _, err := exec.LookPath(d.argv[0]); err != nil {
		return fmt.Errorf("systemd: systemctl is not installed (%v); install systemd's tools or use an exec step", err)
	}
	return nil
}

// Apply runs systemctl.
func (s *Systemd) Apply(ctx context.Context, c Change) error {
	d := c.detail.(systemdDetail)
	return runArgv(ctx, d.argv, d.timeout, []string{"PATH"}, "")
}

// Verify has nothing to check beyond systemctl's exit status.
func (s *Systemd) Verify(context.Context, Change) error { return nil }

// Rollback: a restart has nothing to undo.
func (s *Systemd) Rollback(context.Context, Change) error { return nil }
