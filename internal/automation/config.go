// Package automation is portpatrol's governed remediation engine: playbooks matched to
// alerts, steps run through actions (exec, http, kube, switch_port, systemd) under risk tiers,
// approvals bound to the exact plan, circuit breakers, a fleet-wide limit, a kill switch,
// verification after each step and rollback on failure. Every decision, including the
// decision to do nothing, is recorded through an auditlog.Recorder with its reasons.
package automation

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Defaults applied where the configuration says nothing.
const (
	DefaultApprovalExpiry  = 15 * time.Minute
	DefaultBreakerAttempts = 2
	DefaultBreakerPer      = time.Hour
	DefaultBreakerBackoff  = 10 * time.Second
	DefaultBreakerMaxDelay = 5 * time.Minute
	DefaultFleetActions    = 10
	DefaultFleetWindow     = 10 * time.Minute
	DefaultVerifyWindow    = 30 * time.Second
	DefaultVerifyInterval  = time.Second
	DefaultExecTimeout     = 30 * time.Second
	DefaultHTTPTimeout     = 10 * time.Second
)

// The values of Config.Mode.
const (
	ModeOff = "off" // observe and recommend only: nothing runs, nothing asks for approval
	ModeOn  = "on"  // playbooks act within their own mode and tier
)

// The values of Playbook.Mode.
const (
	PlaybookShadow  = "shadow"  // decide and record what would have run; touch nothing
	PlaybookSuggest = "suggest" // every step asks for approval with its plan and reasons
	PlaybookAuto    = "auto"    // R0 and R1 steps run on their own; R2 and R3 still ask
)

// Tier is a step's risk tier.
type Tier string

// The risk tiers.
const (
	R0 Tier = "R0" // read-only diagnostics: always automatic when automation is on
	R1 Tier = "R1" // reversible, single target: automatic only in a playbook in mode auto
	R2 Tier = "R2" // one approver who is not the requester
	R3 Tier = "R3" // two distinct approvers, one of them a service owner
)

// RoleServiceOwner is the approver role an R3 step needs among its two approvers.
const RoleServiceOwner = "service-owner"

// Config is the automation: section. The zero value is off, with the defaults.
type Config struct {
	// Mode is "off" (the default: observe and recommend only) or "on".
	Mode string `yaml:"mode"`
	// Paused starts with the kill switch thrown: nothing runs until resumed.
	Paused bool `yaml:"paused"`
	// ApprovalExpiry is how long a pending approval waits (default 15m).
	ApprovalExpiry time.Duration `yaml:"approval_expiry"`
	// PolicyVersion names this policy in every plan hash; an approval given under one
	// version is void under another. Empty means "1".
	PolicyVersion string `yaml:"policy_version"`
	// ServiceOwners are the names that hold the service-owner role for R3 approvals.
	ServiceOwners []string `yaml:"service_owners"`
	Breaker       Breaker  `yaml:"breaker"`
	Fleet         Fleet    `yaml:"fleet"`
	// BlastRadius limits how much of a pool one step acts on within a window.
	BlastRadius BlastRadius `yaml:"blast_radius"`
	// Playbooks are tried in order; the first whose trigger and rollout match an alert
	// handles it.
	Playbooks []Playbook `yaml:"playbooks"`
}

// Breaker limits attempts per (action, target).
type Breaker struct {
	// Attempts allowed within Per (default 2 within 1h).
	Attempts int           `yaml:"attempts"`
	Per      time.Duration `yaml:"per"`
	// Backoff is the wait after the first attempt, doubled after each further one up to
	// MaxDelay, as a container's restart back-off (default 10s, 5m).
	Backoff  time.Duration `yaml:"backoff"`
	MaxDelay time.Duration `yaml:"max_delay"`
}

// Fleet is the fleet-wide limit: more than MaxActions actions within Window halts
// automation and pages once.
type Fleet struct {
	MaxActions int           `yaml:"max_actions"`
	Window     time.Duration `yaml:"window"`
}

// Playbook is a remediation: which alerts it handles and the steps it takes.
type Playbook struct {
	Name    string  `yaml:"name"`
	Trigger Trigger `yaml:"trigger"`
	// Mode is shadow (default), suggest or auto.
	Mode string `yaml:"mode"`
	// Rollout are label matchers ("tier=non-critical") an alert must also match: the
	// playbook is enabled stage by stage. Empty means every alert the trigger matches.
	Rollout []string `yaml:"rollout"`
	Steps   []Step   `yaml:"steps"`
}

// Trigger selects alerts: any of the classes, any of the severities, and all the label
// matchers. An empty list does not restrict.
type Trigger struct {
	Class    []string `yaml:"class"`
	Severity []string `yaml:"severity"`
	Labels   []string `yaml:"labels"`
}

// Step is one action of a playbook.
type Step struct {
	Name   string `yaml:"name"`
	Action string `yaml:"action"`
	Risk   Tier   `yaml:"risk"`
	Params Params `yaml:"params"`
	// PreCheck is a command that must exit 0 right before the step runs, besides the
	// action's own checks.
	PreCheck *Command `yaml:"pre_check"`
	Verify   Verify   `yaml:"verify"`
	// Rollback undoes the step when its verification fails: the exec command or http
	// call to make. switch_port always rolls back by deleting its rule.
	Rollback *Params `yaml:"rollback"`
}

// Command is an argv run without a shell.
type Command struct {
	Argv    []string      `yaml:"argv"`
	Timeout time.Duration `yaml:"timeout"`
}

// Verify is how a step's effect is judged: the target is probed every Interval until
// healthy, for at most Window.
type Verify struct {
	Window   time.Duration `yaml:"window"`
	Interval time.Duration `yaml:"interval"`
}

// Params are an action's parameters; each action reads its own and refuses the others.
// In argv, url, body and headers, {target}, {host} and {port} stand for the alert's.
type Params struct {
	// exec
	Argv    []string      `yaml:"argv"`
	Timeout time.Duration `yaml:"timeout"`
	Env     []string      `yaml:"env"`
	User    string        `yaml:"user"`
	// http
	URL     string            `yaml:"url"`
	Method  string            `yaml:"method"`
	Body    string            `yaml:"body"`
	Headers map[string]string `yaml:"headers"`
	// switch_port
	Port       int    `yaml:"port"`
	BackupPort int    `yaml:"backup_port"`
	Family     string `yaml:"family"`
	// systemd (and kube's operation)
	Unit      string `yaml:"unit"`
	Operation string `yaml:"operation"`
	// kube
	Kind        string `yaml:"kind"`
	Namespace   string `yaml:"namespace"`
	Name        string `yaml:"name"`
	Replicas    int    `yaml:"replicas"`
	MinReplicas int    `yaml:"min_replicas"`
	MaxReplicas int    `yaml:"max_replicas"`
}

// paramFields lists the parameters each action reads.
var paramFields = map[string][]string{
	"exec":        {"argv", "timeout", "env", "user"},
	"http":        {"url", "method", "body", "headers", "timeout"},
	"switch_port": {"port", "backup_port", "family"},
	"systemd":     {"unit", "operation", "timeout"},
	"kube":        {"kind", "namespace", "name", "operation", "replicas", "min_replicas", "max_replicas"},
}

// Actions lists the action names a step may use.
func Actions() []string { return []string{"exec", "http", "kube", "switch_port", "systemd"} }

// set returns the names of the parameters that are set.
func (p *Params) set() []string {
	var out []string
	add := func(ok bool, name string) {
		if ok {
			out = append(out, name)
		}
	}
	add(len(p.Argv) > 0, "argv")
	add(p.Timeout != 0, "timeout")
	add(len(p.Env) > 0, "env")
	add(p.User != "", "user")
	add(p.URL != "", "url")
	add(p.Method != "", "method")
	add(p.Body != "", "body")
	add(len(p.Headers) > 0, "headers")
	add(p.Port != 0, "port")
	add(p.BackupPort != 0, "backup_port")
	add(p.Family != "", "family")
	add(p.Unit != "", "unit")
	add(p.Operation != "", "operation")
	add(p.Kind != "", "kind")
	add(p.Namespace != "", "namespace")
	add(p.Name != "", "name")
	add(p.Replicas != 0, "replicas")
	add(p.MinReplicas != 0, "min_replicas")
	add(p.MaxReplicas != 0, "max_replicas")
	return out
}

// ConfigError is one problem in the automation section; Field is its path below
// "automation" ("playbooks[0].steps[1].risk").
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return "automation." + e.Field + ": " + e.Reason }

// Validate checks the section and returns every problem, joined; each is a *ConfigError.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	switch c.Mode {
	case "", ModeOff, ModeOn:
	default:
		bad("mode", "%q: want off or on", c.Mode)
	}
	for _, d := range []struct {
		f string
		v time.Duration
	}{{"approval_expiry", c.ApprovalExpiry}, {"breaker.per", c.Breaker.Per}, {"breaker.backoff", c.Breaker.Backoff},
		{"breaker.max_delay", c.Breaker.MaxDelay}, {"fleet.window", c.Fleet.Window}} {
		if d.v < 0 {
			bad(d.f, "must not be negative, got %s", d.v)
		}
	}
	if c.Breaker.Attempts < 0 {
		bad("breaker.attempts", "must not be negative, got %d", c.Breaker.Attempts)
	}
	if p := c.BlastRadius.MaxPoolPercent; p < 0 || p > 100 {
		bad("blast_radius.max_pool_percent", "want a share of the pool from 1 to 100 (percent), got %d", p)
	}
	if c.BlastRadius.Window < 0 {
		bad("blast_radius.window", "must not be negative, got %s", c.BlastRadius.Window)
	}
	if l := c.BlastRadius.PoolLabel; l != "" && !validLabelName(l) {
		bad("blast_radius.pool_label", "%q is not a label name: want letters, digits and underscores, not starting with a digit", l)
	}
	if c.Fleet.MaxActions < 0 {
		bad("fleet.max_actions", "must not be negative, got %d", c.Fleet.MaxActions)
	}
	names := map[string]int{}
	for i, pb := range c.Playbooks {
		p := fmt.Sprintf("playbooks[%d]", i)
		switch {
		case pb.Name == "":
			bad(p+".name", "empty; give the playbook a name")
		case names[pb.Name] > 0:
			bad(p+".name", "%q is also the name of playbooks[%d]", pb.Name, names[pb.Name]-1)
		}
		names[pb.Name] = i + 1
		switch pb.Mode {
		case "", PlaybookShadow, PlaybookSuggest, PlaybookAuto:
		default:
			bad(p+".mode", "%q: want shadow, suggest or auto", pb.Mode)
		}
		for j, cl := range pb.Trigger.Class {
			if !knownClass(cl) {
				bad(fmt.Sprintf("%s.trigger.class[%d]", p, j), "%q is not an alert class; want one of %s", cl, classNames())
			}
		}
		for j, s := range pb.Trigger.Severity {
			if _, err := patrol.ParseSeverity(s); err != nil {
				bad(fmt.Sprintf("%s.trigger.severity[%d]", p, j), "%q: want P0, P1, P2 or P3", s)
			}
		}
		for j, m := range pb.Trigger.Labels {
			if _, err := patrol.ParseMatcher(m); err != nil {
				bad(fmt.Sprintf("%s.trigger.labels[%d]", p, j), "%v", err)
			}
		}
		for j, m := range pb.Rollout {
			if _, err := patrol.ParseMatcher(m); err != nil {
				bad(fmt.Sprintf("%s.rollout[%d]", p, j), "%v", err)
			}
		}
		if len(pb.Steps) == 0 {
			bad(p+".steps", "no steps; a playbook needs at least one")
		}
		for j := range pb.Steps {
			validateStep(bad, fmt.Sprintf("%s.steps[%d]", p, j), &pb.Steps[j])
		}
	}
	return errors.Join(errs...)
}

func validateStep(bad func(field, format string, args ...any), p string, s *Step) {
	fields, ok := paramFields[s.Action]
	if !ok {
		if s.Action == "" {
			bad(p+".action", "empty; want one of %s", strings.Join(Actions(), ", "))
		} else {
			bad(p+".action", "unknown action %q; want one of %s", s.Action, strings.Join(Actions(), ", "))
		}
		return
	}
	switch s.Risk {
	case R0, R1, R2, R3:
	case "":
		bad(p+".risk", "empty; give the step's risk tier: R0, R1, R2 or R3")
	default:
		bad(p+".risk", "unknown tier %q; want R0, R1, R2 or R3", s.Risk)
	}
	checkParams := func(pp string, prm *Params, rollback bool) {
		for _, name := range prm.set() {
			if !contains(fields, name) {
				bad(pp+"."+name, "action %s has no parameter %q; its parameters are %s", s.Action, name, strings.Join(fields, ", "))
			}
		}
		if prm.Timeout < 0 {
			bad(pp+".timeout", "must not be negative, got %s", prm.Timeout)
		}
		switch s.Action {
		case "exec":
			if len(prm.Argv) == 0 {
				bad(pp+".argv", "empty; give the command as a list, program first (it runs without a shell)")
			}
			for k, e := range prm.Env {
				if e == "" || strings.ContainsAny(e, "= ") {
					bad(fmt.Sprintf("%s.env[%d]", pp, k), "%q: want the name of a variable to pass through, without a value", e)
				}
			}
		case "http":
			u, err := url.Parse(prm.URL)
			if prm.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(pp+".url", "%q: want an http:// or https:// URL", prm.URL)
			}
			switch strings.ToUpper(prm.Method) {
			case "", "GET", "POST", "PUT", "PATCH", "DELETE":
			default:
				bad(pp+".method", "%q: want GET, POST, PUT, PATCH or DELETE", prm.Method)
			}
		case "switch_port":
			if rollback {
				bad(pp, "switch_port rolls back by deleting its own rule; remove rollback")
				return
			}
			if prm.Port < 1 || prm.Port > 65535 {
				bad(pp+".port", "want a port from 1 to 65535, got %d", prm.Port)
			}
			if prm.BackupPort < 1 || prm.BackupPort > 65535 {
				bad(pp+".backup_port", "want a port from 1 to 65535, got %d", prm.BackupPort)
			} else if prm.BackupPort == prm.Port {
				bad(pp+".backup_port", "is the same port as port (%d)", prm.Port)
			}
			switch prm.Family {
			case "", "inet", "ip":
			default:
				bad(pp+".family", "%q: want inet or ip", prm.Family)
			}
		case "kube":
			if rollback {
				bad(pp, "a kube step rolls back a scale to the replicas it had, and a restart has nothing to undo; remove rollback")
				return
			}
			switch prm.Kind {
			case "Deployment", "StatefulSet", "DaemonSet":
			default:
				bad(pp+".kind", "%q: want Deployment, StatefulSet or DaemonSet", prm.Kind)
			}
			if prm.Name == "" {
				bad(pp+".name", "empty; give the workload's name")
			}
			switch prm.Operation {
			case "", "restart":
				for _, f := range []struct {
					n string
					v int
				}{{"replicas", prm.Replicas}, {"min_replicas", prm.MinReplicas}, {"max_replicas", prm.MaxReplicas}} {
					if f.v != 0 {
						bad(pp+"."+f.n, "only operation scale uses it")
					}
				}
			case "scale":
				if prm.Kind == "DaemonSet" {
					bad(pp+".operation", "a DaemonSet runs one pod per node and cannot be scaled")
				}
				if prm.MaxReplicas <= 0 {
					bad(pp+".max_replicas", "required for scale: the most replicas this step may set")
				}
				if prm.MinReplicas < 0 || (prm.MaxReplicas > 0 && prm.MinReplicas > prm.MaxReplicas) {
					bad(pp+".min_replicas", "want 0 to max_replicas (%d), got %d", prm.MaxReplicas, prm.MinReplicas)
				}
				if prm.Replicas < prm.MinReplicas || (prm.MaxReplicas > 0 && prm.Replicas > prm.MaxReplicas) {
					bad(pp+".replicas", "%d is outside min_replicas..max_replicas (%d..%d)", prm.Replicas, prm.MinReplicas, prm.MaxReplicas)
				}
			default:
				bad(pp+".operation", "%q: want restart or scale", prm.Operation)
			}
		case "systemd":
			if rollback {
				bad(pp, "a systemd step has no rollback; remove rollback")
				return
			}
			if prm.Unit == "" || strings.ContainsAny(prm.Unit, " /") {
				bad(pp+".unit", "%q: want a unit name such as web.service", prm.Unit)
			}
			switch prm.Operation {
			case "", "restart", "start":
			default:
				bad(pp+".operation", "%q: want restart or start", prm.Operation)
			}
		}
	}
	checkParams(p+".params", &s.Params, false)
	if s.Rollback != nil {
		checkParams(p+".rollback", s.Rollback, true)
	}
	if s.PreCheck != nil && len(s.PreCheck.Argv) == 0 {
		bad(p+".pre_check.argv", "empty; give the command as a list, program first")
	}
	if s.Verify.Window < 0 {
		bad(p+".verify.window", "must not be negative, got %s", s.Verify.Window)
	}
	if s.Verify.Interval < 0 {
		bad(p+".verify.interval", "must not be negative, got %s", s.Verify.Interval)
	}
	if s.Verify.Window > 0 && s.Verify.Interval > s.Verify.Window {
		bad(p+".verify.interval", "%s is longer than the window %s", s.Verify.Interval, s.Verify.Window)
	}
}

func validLabelName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var alertClasses = []patrol.AlertClass{patrol.AlertUnreachable, patrol.AlertSlow, patrol.AlertCapacity, patrol.AlertAnomaly,
	patrol.AlertSecurity, patrol.AlertConfig, patrol.AlertCertExpiry}

func knownClass(s string) bool {
	for _, c := range alertClasses {
		if string(c) == s {
			return true
		}
	}
	return false
}

func classNames() string {
	parts := make([]string, len(alertClasses))
	for i, c := range alertClasses {
		parts[i] = string(c)
	}
	return strings.Join(parts, ", ")
}

// withDefaults returns the configuration with every default filled in.
func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeOff
	}
	if c.ApprovalExpiry == 0 {
		c.ApprovalExpiry = DefaultApprovalExpiry
	}
	if c.PolicyVersion == "" {
		c.PolicyVersion = "1"
	}
	if c.Breaker.Attempts == 0 {
		c.Breaker.Attempts = DefaultBreakerAttempts
	}
	if c.Breaker.Per == 0 {
		c.Breaker.Per = DefaultBreakerPer
	}
	if c.Breaker.Backoff == 0 {
		c.Breaker.Backoff = DefaultBreakerBackoff
	}
	if c.Breaker.MaxDelay == 0 {
		c.Breaker.MaxDelay = DefaultBreakerMaxDelay
	}
	if c.Fleet.MaxActions == 0 {
		c.Fleet.MaxActions = DefaultFleetActions
	}
	if c.Fleet.Window == 0 {
		c.Fleet.Window = DefaultFleetWindow
	}
	if c.BlastRadius.PoolLabel == "" {
		c.BlastRadius.PoolLabel = DefaultPoolLabel
	}
	if c.BlastRadius.MaxPoolPercent == 0 {
		c.BlastRadius.MaxPoolPercent = DefaultMaxPoolPercent
	}
	if c.BlastRadius.Window == 0 {
		c.BlastRadius.Window = DefaultBlastWindow
	}
	return c
}
