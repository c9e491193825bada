package automation

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Target is what a plan acts on: the alert's target, with its host and port when the
// target names an address.
type Target struct {
	ID     string
	Host   string
	Port   string
	Labels map[string]string
}

// targetOf reads the host and port out of an alert's target ID ("tcp://h:p", "h:p").
func targetOf(a patrol.Alert) Target {
	t := Target{ID: a.Target, Labels: a.Labels}
	hp := a.Target
	if i := strings.Index(hp, "://"); i >= 0 {
		if u, err := url.Parse(hp); err == nil {
			hp = u.Host
		}
	}
	if h, p, err := net.SplitHostPort(hp); err == nil {
		t.Host, t.Port = h, p
	} else {
		t.Host = hp
	}
	if t.Host == "" {
		t.Host = a.Labels["host"]
	}
	return t
}

// expand replaces {target}, {host} and {port} in s.
func (t Target) expand(s string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	return strings.NewReplacer("{target}", t.ID, "{host}", t.Host, "{port}", t.Port).Replace(s)
}

// Change is a step resolved against one target: what would change, in words, and the
// parameters as they will be used. Params go into the plan hash.
type Change struct {
	Action string
	Target string
	Params map[string]string
	// Diff says what changes, as a person reviewing the plan reads it.
	Diff string
	// detail is the action's own resolved form.
	detail any
}

// Action is one kind of remediation. Plan resolves a step against a target without
// touching anything; PreCheck says whether it can run now, with a message a person can
// act on; Apply makes the change; Verify checks the change itself is in place (the
// target's health is judged by the engine's probe); Rollback undoes it. Implementations
// must leave nothing half-applied when Apply fails.
type Action interface {
	Plan(t Target) (Change, error)
	PreCheck(ctx context.Context, c Change) error
	Apply(ctx context.Context, c Change) error
	Verify(ctx context.Context, c Change) error
	Rollback(ctx context.Context, c Change) error
}

// stater is an Action that reads the target's state as far as the action is concerned
// (for switch_port: whether a redirect is in place), so that an approval given to one
// state is void when it drifts.
type stater interface {
	State(ctx context.Context, c Change) string
}

// ActionEnv is what actions need from their surroundings. The zero value uses this
// host's network namespace and systemd.
type ActionEnv struct {
	// NetNS is a file descriptor of the network namespace switch_port works in; 0 means
	// portpatrol's own.
	NetNS int
	// SystemdRoot is the directory whose presence says systemd runs (default
	// /run/systemd/system).
	SystemdRoot string
	// Kube is the cluster the kube action acts on; nil makes its pre-check fail with
	// what to configure.
	Kube KubeWorkloads
}

// newAction builds the action a step names, with its parameters and rollback.
func newAction(s Step, env ActionEnv) (Action, error) {
	switch s.Action {
	case "exec":
		return &Exec{Params: s.Params, Undo: s.Rollback}, nil
	case "http":
		return &HTTP{Params: s.Params, Undo: s.Rollback}, nil
	case "switch_port":
		return &SwitchPort{Params: s.Params, NetNS: env.NetNS}, nil
	case "systemd":
		return &Systemd{Params: s.Params, Root: env.SystemdRoot}, nil
	case "kube":
		return &Kube{Params: s.Params, API: env.Kube}, nil
	}
	return nil, fmt.Errorf("unknown action %q", s.Action)
}
