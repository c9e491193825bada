package alert

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Defaults for the zero values of Config fields.
const (
	DefaultGroupWait       = 30 * time.Second
	DefaultGroupInterval   = 5 * time.Minute
	DefaultRepeatInterval  = time.Hour
	DefaultRetention       = 24 * time.Hour
	DefaultMaxSilence      = 30 * 24 * time.Hour
	DefaultEvidence        = 5
	DefaultEscalation      = "default"
	DefaultReceiver        = "default"
	DefaultCapacityRatio   = 0.8
	DefaultSlowCount       = 3
	DefaultCapacityFor     = time.Minute
	DefaultAnomalyWindow   = 20
	DefaultAnomalyFactor   = 3.0
	DefaultAnomalyBaseline = time.Hour
	DefaultAnomalyFor      = 5 * time.Minute
	// DefaultCertWarn and DefaultCertCritical are how long before a certificate
	// expires the cert_expiry rule raises a P3, then a P2.
	DefaultCertWarn     = 21 * 24 * time.Hour
	DefaultCertCritical = 7 * 24 * time.Hour
	// GroupByNothing as the only group_by entry sends every alert in a message of its
	// own, as "..." does in Alertmanager.
	GroupByNothing = "..."
)

// DefaultUnreachableClasses are the result classes that make a down target
// unreachable (P0) under the severity policy.
var DefaultUnreachableClasses = []patrol.Class{patrol.ClassRefused, patrol.ClassTimeout,
	patrol.ClassReset, patrol.ClassDNS, patrol.ClassTLS, patrol.ClassProtocol}

// Config configures an Engine. Its zero value follows DESIGN.md: P0–P3 with response
// deadlines of 5m, 15m, 30m and 1h, one escalation chain "default" that notifies the
// receiver "default", grouping by host (30s wait, 5m interval), hourly reminders, the
// two standard inhibitions (a host down mutes its ports; a P0 mutes P1–P3 of its target)
// and no maintenance windows. Field tags are the YAML keys under `alerting:`. A Config
// is a value; the Engine keeps its own validated copy.
type Config struct {
	// Deadlines maps "P0".."P3" to the time within which an alert must be acknowledged
	// before it escalates; missing severities keep patrol.Severity.Deadline.
	Deadlines map[string]time.Duration `yaml:"deadlines"`
	Rules     Rules                    `yaml:"rules"`
	// Routes choose an escalation chain for a new alert: the first route whose
	// matchers all match wins; no match means DefaultEscalation.
	Routes []Route `yaml:"routes"`
	// Escalations names escalation chains. Nil means one chain "default" with one step
	// to the receiver "default".
	Escalations map[string][]Step `yaml:"escalations"`
	// DefaultEscalation is the chain for alerts no route matches; empty means "default".
	DefaultEscalation string `yaml:"default_escalation"`
	// RepeatInterval is how often everyone told is reminded while an alert stays
	// unacknowledged; zero means an hour, negative means never.
	RepeatInterval time.Duration `yaml:"repeat_interval"`
	Grouping       Grouping      `yaml:"grouping"`
	// Inhibit lists inhibition rules. Nil means DefaultInhibitRules; an empty list
	// means none.
	Inhibit     []InhibitRule `yaml:"inhibit"`
	Maintenance []Window      `yaml:"maintenance"`
	// RunbookURL is a text/template for each alert's runbook link, with the fields
	// .Target, .Host, .Rule, .Class, .Severity and .Labels (a map); for example
	// "https://wiki.example/runbooks/{{.Class}}?target={{urlquery .Target}}". A rule's
	// own runbook_url takes precedence. Empty means no link.
	RunbookURL string `yaml:"runbook_url"`
	// Evidence is how many of a target's latest results an alert carries; zero means 5.
	Evidence int `yaml:"evidence"`
	// Retention is how long resolved alerts and expired silences stay listed; zero
	// means 24h.
	Retention time.Duration `yaml:"retention"`
	// MaxSilence is the longest a silence may last, from its start to its end; zero
	// means 30 days. A silence that forgets to end mutes pages nobody then sees.
	MaxSilence time.Duration `yaml:"max_silence"`
	// Impact configures customer impact notices; the zero value sends none.
	Impact Impact `yaml:"impact"`
	// ImpactRules raise the severity of alerts by their labels; none by default.
	ImpactRules []ImpactRule `yaml:"impact_rules"`
}

// ImpactAll is the audience key of Impact.Receivers whose receivers hear about every
// audience.
const ImpactAll = "*"

// DefaultImpactLabel is the label whose value names an alert's audience when
// Impact.Label is empty.
const DefaultImpactLabel = "customer"

// Impact configures customer impact notices: when an alert of one of Severities fires
// on a target whose Label names an audience, that audience's receivers are sent one
// notice of kind impact (customer-facing wording, no internals), grouped per audience,
// and another when it resolves. Alerts muted by a silence or a maintenance window, and
// flapping alerts, send none; acknowledging or inhibiting an alert does not stop its
// notice, since customers feel the outage either way. The zero value sends no notices.
type Impact struct {
	// Label is the alert label whose value names the audience, such as "customer" or
	// "service"; empty means "customer". Alerts without it have no audience.
	Label string `yaml:"label"`
	// Severities lists the severities customers are told of; nil means P0 and P1.
	Severities []string `yaml:"severities"`
	// Receivers maps an audience (a value of Label) to the receivers it is told
	// through. The receivers of "*" are told of every audience as well. Empty means no
	// impact notices.
	Receivers map[string][]string `yaml:"receivers"`
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// impactSettings is a validated Impact; a nil *impactSettings sends nothing.
type impactSettings struct {
	label      string
	severities [4]bool
	receivers  map[string][]string
}

// audience returns the audience of an alert and the receivers it is told through, or
// "" when the alert has none.
func (s *impactSettings) audience(a *patrol.Alert) (string, []string) {
	if s == nil || !s.severities[a.Severity] {
		return "", nil
	}
	v := a.Labels[s.label]
	if v == "" {
		return "", nil
	}
	var out []string
	for _, r := range append(slices.Clone(s.receivers[v]), s.receivers[ImpactAll]...) {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return "", nil
	}
	return s.label + "=" + v, out
}

// Rules configures the built-in rules, one per alert class.
type Rules struct {
	// Unreachable fires when the scheduler's state is down and the latest result's class
	// is one of Classes. Default P0, for 0 (the scheduler's failure_threshold already
	// confirmed it).
	Unreachable Rule `yaml:"unreachable"`
	// Slow fires after Count consecutive results of class slow (default 3). Default P1.
	Slow Rule `yaml:"slow"`
	// Capacity fires when Result.Capacity's ratio reaches Threshold (default 0.8) or the
	// class is overloaded, Count times in a row (default 1), for For (default 1m).
	// Default P2.
	Capacity Rule `yaml:"capacity"`
	// Anomaly is the built-in latency anomaly rule and the default for Anomaly inputs.
	// Default P3.
	Anomaly AnomalyRule `yaml:"anomaly"`
	// Security and Config give the severity (defaults P1 and P2) and `for` of
	// findings of those classes.
	Security Rule `yaml:"security"`
	Config   Rule `yaml:"config"`
	// CertExpiry raises, per target, a P3 when the leaf certificate the target presents
	// (Result.TLS.NotAfter) expires within Warn and turns it into a P2 in place within
	// Critical. It resolves when a renewed certificate is seen or the target answers
	// without TLS.
	CertExpiry CertExpiryRule `yaml:"cert_expiry"`
	// Self gives the `for` and default severity (P1) of portpatrol's own self-check
	// alerts (class self); each check may name its own severity.
	Self Rule `yaml:"self"`
}

// CertExpiryRule configures the cert_expiry rule. Its severities are fixed by the
// thresholds (P3 within Warn, P2 within Critical), so Rule.Severity and Rule.Count
// must stay unset; Disabled, For and RunbookURL apply.
type CertExpiryRule struct {
	Rule `yaml:",inline"`
	// Warn is how long before expiry the rule raises a P3; zero means 21 days (504h).
	Warn time.Duration `yaml:"warn"`
	// Critical is how long before expiry the alert becomes a P2; zero means 7 days
	// (168h). It must be shorter than Warn.
	Critical time.Duration `yaml:"critical"`
}

// Rule configures one rule. Fields a rule does not use are ignored.
type Rule struct {
	// Disabled turns the rule off: no new alerts; open ones resolve when their
	// condition clears.
	Disabled bool `yaml:"disabled"`
	// Severity is "P0".."P3"; empty means the rule's default.
	Severity string `yaml:"severity"`
	// For is how long the condition must hold before the alert fires; until then it is
	// pending, and clears without a word if the condition does.
	For time.Duration `yaml:"for"`
	// Count is how many consecutive results must meet the condition before the alert
	// is pending.
	Count int `yaml:"count"`
	// Threshold is the capacity ratio (0 < t <= 1) of the capacity rule.
	Threshold float64 `yaml:"threshold"`
	// Classes are the result classes of the unreachable rule.
	Classes []patrol.Class `yaml:"classes"`
	// RunbookURL overrides Config.RunbookURL for this rule's alerts.
	RunbookURL string `yaml:"runbook_url"`
}

// AnomalyRule configures the built-in anomaly rule: the p95 of the last Window
// durations of usable results is over Factor times the median of the durations of the
// last Baseline, by at least MinIncrease, once at least MinSamples durations are
// known.
type AnomalyRule struct {
	Rule `yaml:",inline"`
	// Window is how many latest durations the p95 is taken over; zero means 20.
	Window int `yaml:"window"`
	// Factor is how many times the median the p95 must exceed; zero means 3.
	Factor float64 `yaml:"factor"`
	// Baseline is how far back the median looks; zero means 1h.
	Baseline time.Duration `yaml:"baseline"`
	// MinSamples is how many durations the baseline needs; zero means 3×Window.
	MinSamples int `yaml:"min_samples"`
	// MinIncrease is how far the p95 must be above the median, so that loopback
	// jitter of microseconds is not an anomaly; zero means 20ms.
	MinIncrease time.Duration `yaml:"min_increase"`
	// MaxSamples caps the durations kept per target; zero means 256.
	MaxSamples int `yaml:"max_samples"`
	// Learned is set (by internal/config, from `anomaly.enabled`) when the daemon feeds
	// the learned-baseline detector of internal/anomaly: it replaces the p95 rule above,
	// which then stays off. The rule's severity, for and runbook_url still apply to the
	// detector's alerts (ObserveAnomaly).
	Learned bool `yaml:"-"`
}

// Route sends the alerts it matches to an escalation chain.
type Route struct {
	// Match lists matchers (patrol.ParseMatcher syntax), such as "team=db" or
	// "severity=~P0|P1"; empty matches every alert.
	Match      []string `yaml:"match"`
	Escalation string   `yaml:"escalation"`
}

// Step is one step of an escalation chain.
type Step struct {
	// After is the delay before this step is notified while the alert stays
	// unacknowledged: for the first step, after the alert fires (usually 0); for
	// later steps, after the previous step was notified, where zero means the
	// severity's deadline.
	After     time.Duration `yaml:"after"`
	Receivers []string      `yaml:"receivers"`
}

// Grouping batches notifications as Alertmanager does: alerts with the same values of
// GroupBy going to the same receiver share one message. The first message of a new
// group waits GroupWait for others to join; later ones wait until GroupInterval after
// the previous. A group ends GroupInterval after its last message once nothing is
// waiting.
type Grouping struct {
	// GroupBy lists label names. Nil means ["host"]; an empty list puts all alerts in
	// one group; ["..."] gives every alert a message of its own.
	GroupBy []string `yaml:"group_by"`
	// GroupWait: zero means 30s, negative means no wait.
	GroupWait time.Duration `yaml:"group_wait"`
	// GroupInterval: zero means 5m, negative means no wait.
	GroupInterval time.Duration `yaml:"group_interval"`
}

// InhibitRule mutes an alert (a target) while another active alert (a source) matches,
// with equal values of the Equal labels. An alert never inhibits itself.
type InhibitRule struct {
	Source []string `yaml:"source_matchers"`
	Target []string `yaml:"target_matchers"`
	Equal  []string `yaml:"equal"`
}

// DefaultInhibitRules are the inhibitions of DESIGN.md: an unreachable host (an alert
// whose target is "host:<name>") mutes every other alert with the same host label, and
// a P0 mutes the P1–P3 alerts of its target.
var DefaultInhibitRules = []InhibitRule{
	{Source: []string{"class=unreachable", "target=~host:.+"}, Target: []string{"target!~host:.+"}, Equal: []string{"host"}},
	{Source: []string{"severity=P0"}, Target: []string{"severity=~P1|P2|P3"}, Equal: []string{"target"}},
}

// ConfigError reports an invalid configuration field. Field is the YAML path below
// `alerting:`, such as "escalations.default[1].receivers".
type ConfigError struct {
	Field  string
	Reason string
}

// Error returns "field: reason".
func (e *ConfigError) Error() string { return e.Field + ": " + e.Reason }

// settings is a validated Config with defaults filled in.
type settings struct {
	impactRules   []impactRule
	deadlines     [4]time.Duration
	unreachable   ruleSettings
	slow          ruleSettings
	capacity      ruleSettings
	anomaly       anomalySettings
	security      ruleSettings
	config        ruleSettings
	certExpiry    certSettings
	self          ruleSettings
	routes        []route
	chains        map[string][]Step
	defaultChain  string
	repeat        time.Duration
	groupBy       []string
	groupNone     bool
	groupWait     time.Duration
	groupInterval time.Duration
	inhibit       []inhibitRule
	windows       []window
	runbook       *template.Template
	evidence      int
	retention     time.Duration
	maxSilence    time.Duration
	impact        *impactSettings
}

type ruleSettings struct {
	name      string
	class     patrol.AlertClass
	disabled  bool
	severity  patrol.Severity
	forDur    time.Duration
	count     int
	threshold float64
	classes   map[patrol.Class]bool
	runbook   *template.Template
}

type anomalySettings struct {
	ruleSettings
	learned     bool
	window      int
	factor      float64
	baseline    time.Duration
	minSamples  int
	minIncrease time.Duration
	maxSamples  int
}

type certSettings struct {
	ruleSettings
	warn, critical time.Duration
}

type route struct {
	match patrol.Matchers
	chain string
}

type inhibitRule struct {
	source, target patrol.Matchers
	equal          []string
}

// Validate checks the configuration and reports every invalid field, each as a
// *ConfigError, joined.
func (c Config) Validate() error {
	_, err := c.compile()
	return err
}

// compiler turns a Config into settings, collecting every problem as a *ConfigError.
type compiler struct {
	c    Config
	s    *settings
	errs []error
}

// bad records a problem of field.
func (k *compiler) bad(field, format string, args ...any) {
	k.errs = append(k.errs, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// compile checks c and builds the engine's settings, section by section; the error
// joins every problem found.
func (c Config) compile() (*settings, error) {
	k := &compiler{c: c, s: &settings{}}
	k.deadlines()
	k.rules()
	k.anomaly()
	k.certExpiry()
	k.escalations()
	k.grouping()
	k.windows()
	k.limits()
	k.impactRules()
	if err := errors.Join(k.errs...); err != nil {
		return nil, err
	}
	return k.s, nil
}

// deadlines sets the response deadlines per severity.
func (k *compiler) deadlines() {
	c, s, bad := k.c, k.s, k.bad
	for sev := patrol.P0; sev <= patrol.P3; sev++ {
		s.deadlines[sev] = sev.Deadline()
	}
	for _, k := range slices.Sorted(maps.Keys(c.Deadlines)) {
		sev, err := patrol.ParseSeverity(k)
		if err != nil {
			bad("deadlines."+k, "unknown severity: want P0, P1, P2 or P3")
			continue
		}
		if d := c.Deadlines[k]; d <= 0 {
			bad("deadlines."+k, "must be positive, got %s", d)
		} else {
			s.deadlines[sev] = d
		}
	}
}

// rule compiles one rule's common settings over the given defaults.
func (k *compiler) rule(field string, r Rule, name string, class patrol.AlertClass, sev patrol.Severity, forDur time.Duration, count int) ruleSettings {
	bad := k.bad
	rs := ruleSettings{name: name, class: class, disabled: r.Disabled, severity: sev, forDur: forDur, count: count}
	if r.Severity != "" {
		v, err := patrol.ParseSeverity(r.Severity)
		if err != nil {
			bad(field+".severity", "%q: want P0, P1, P2 or P3", r.Severity)
		}
		rs.severity = v
	}
	switch {
	case r.For < 0:
		bad(field+".for", "must not be negative, got %s", r.For)
	case r.For > 0:
		rs.forDur = r.For
	}
	switch {
	case r.Count < 0:
		bad(field+".count", "must not be negative, got %d", r.Count)
	case r.Count > 0:
		rs.count = r.Count
	}
	if rs.count == 0 {
		rs.count = 1
	}
	if r.RunbookURL != "" {
		t, err := template.New(field).Option("missingkey=zero").Parse(r.RunbookURL)
		if err != nil {
			bad(field+".runbook_url", "%v", err)
		}
		rs.runbook = t
	}
	return rs
}

// rules compiles the rules of the alert classes but anomaly.
func (k *compiler) rules() {
	c, s, bad := k.c, k.s, k.bad
	s.unreachable = k.rule("rules.unreachable", c.Rules.Unreachable, string(patrol.AlertUnreachable), patrol.AlertUnreachable, patrol.P0, 0, 1)
	classes := c.Rules.Unreachable.Classes
	if classes == nil {
		classes = DefaultUnreachableClasses
	}
	s.unreachable.classes = map[patrol.Class]bool{}
	for i, cl := range classes {
		if !slices.Contains(patrol.Classes, cl) || cl.Up() {
			bad(fmt.Sprintf("rules.unreachable.classes[%d]", i), "%q is not a failing result class", cl)
		}
		s.unreachable.classes[cl] = true
	}
	s.slow = k.rule("rules.slow", c.Rules.Slow, string(patrol.AlertSlow), patrol.AlertSlow, patrol.P1, 0, DefaultSlowCount)
	s.capacity = k.rule("rules.capacity", c.Rules.Capacity, string(patrol.AlertCapacity), patrol.AlertCapacity, patrol.P2, DefaultCapacityFor, 1)
	s.capacity.threshold = DefaultCapacityRatio
	if t := c.Rules.Capacity.Threshold; t != 0 {
		if t < 0 || t > 1 {
			bad("rules.capacity.threshold", "want a ratio in (0, 1], got %g", t)
		}
		s.capacity.threshold = t
	}
	s.security = k.rule("rules.security", c.Rules.Security, string(patrol.AlertSecurity), patrol.AlertSecurity, patrol.P1, 0, 1)
	s.config = k.rule("rules.config", c.Rules.Config, string(patrol.AlertConfig), patrol.AlertConfig, patrol.P2, 0, 1)
	s.self = k.rule("rules.self", c.Rules.Self, string(patrol.AlertSelf), patrol.AlertSelf, patrol.P1, 0, 1)
}

// anomaly compiles the anomaly rule and its detector's settings.
func (k *compiler) anomaly() {
	c, s, bad := k.c, k.s, k.bad
	a := c.Rules.Anomaly
	s.anomaly = anomalySettings{
		ruleSettings: k.rule("rules.anomaly", a.Rule, string(patrol.AlertAnomaly), patrol.AlertAnomaly, patrol.P3, DefaultAnomalyFor, 1),
		learned:      a.Learned,
		window:       pickInt(a.Window, DefaultAnomalyWindow),
		factor:       DefaultAnomalyFactor,
		baseline:     pickDur(a.Baseline, DefaultAnomalyBaseline),
		minIncrease:  pickDur(a.MinIncrease, 20*time.Millisecond),
		maxSamples:   pickInt(a.MaxSamples, 256),
	}
	if a.Factor != 0 {
		s.anomaly.factor = a.Factor
	}
	s.anomaly.minSamples = pickInt(a.MinSamples, 3*s.anomaly.window)
	switch {
	case a.Window < 0:
		bad("rules.anomaly.window", "must not be negative, got %d", a.Window)
	case a.Factor < 0 || a.Factor != 0 && a.Factor <= 1:
		bad("rules.anomaly.factor", "must be over 1, got %g", a.Factor)
	case a.Baseline < 0:
		bad("rules.anomaly.baseline", "must not be negative, got %s", a.Baseline)
	case a.MinSamples < 0:
		bad("rules.anomaly.min_samples", "must not be negative, got %d", a.MinSamples)
	case a.MinIncrease < 0:
		bad("rules.anomaly.min_increase", "must not be negative, got %s", a.MinIncrease)
	case a.MaxSamples < 0:
		bad("rules.anomaly.max_samples", "must not be negative, got %d", a.MaxSamples)
	case s.anomaly.maxSamples < s.anomaly.minSamples || s.anomaly.maxSamples < s.anomaly.window:
		bad("rules.anomaly.max_samples", "%d is fewer than min_samples %d or window %d",
			s.anomaly.maxSamples, s.anomaly.minSamples, s.anomaly.window)
	}
}

// certExpiry compiles the cert_expiry rule and its two thresholds.
func (k *compiler) certExpiry() {
	r, bad := k.c.Rules.CertExpiry, k.bad
	s := certSettings{
		ruleSettings: k.rule("rules.cert_expiry", r.Rule, string(patrol.AlertCertExpiry), patrol.AlertCertExpiry, patrol.P3, 0, 1),
		warn:         pickDur(r.Warn, DefaultCertWarn),
		critical:     pickDur(r.Critical, DefaultCertCritical),
	}
	if r.Severity != "" {
		bad("rules.cert_expiry.severity", "the rule's severities follow its thresholds (P3 within warn, P2 within critical); remove severity")
	}
	if r.Count != 0 {
		bad("rules.cert_expiry.count", "the rule judges each certificate once; remove count")
	}
	switch {
	case r.Warn < 0:
		bad("rules.cert_expiry.warn", "must be positive, got %s", r.Warn)
	case r.Critical < 0:
		bad("rules.cert_expiry.critical", "must be positive, got %s", r.Critical)
	case s.critical >= s.warn:
		bad("rules.cert_expiry.critical", "%s is not shorter than warn %s", s.critical, s.warn)
	}
	k.s.certExpiry = s
}

// escalations compiles the escalation chains, the default chain and the routes.
func (k *compiler) escalations() {
	c, s, bad := k.c, k.s, k.bad
	s.chains = c.Escalations
	if s.chains == nil {
		s.chains = map[string][]Step{DefaultEscalation: {{Receivers: []string{DefaultReceiver}}}}
	}
	for _, name := range slices.Sorted(maps.Keys(s.chains)) {
		steps := s.chains[name]
		if name == "" {
			bad("escalations", "empty chain name")
		}
		if len(steps) == 0 {
			bad("escalations."+name, "no steps")
		}
		for i, st := range steps {
			f := fmt.Sprintf("escalations.%s[%d]", name, i)
			if st.After < 0 {
				bad(f+".after", "must not be negative, got %s", st.After)
			}
			if len(st.Receivers) == 0 {
				bad(f+".receivers", "empty")
			}
			for j, r := range st.Receivers {
				if strings.TrimSpace(r) == "" {
					bad(fmt.Sprintf("%s.receivers[%d]", f, j), "empty receiver name")
				}
			}
		}
	}
	s.defaultChain = c.DefaultEscalation
	if s.defaultChain == "" {
		s.defaultChain = DefaultEscalation
	}
	if _, ok := s.chains[s.defaultChain]; !ok {
		bad("default_escalation", "no escalation chain %q", s.defaultChain)
	}
	for i, r := range c.Routes {
		f := fmt.Sprintf("routes[%d]", i)
		ms, err := patrol.ParseMatchers(r.Match)
		if err != nil {
			bad(f+".match", "%v", err)
		}
		if _, ok := s.chains[r.Escalation]; !ok {
			bad(f+".escalation", "no escalation chain %q", r.Escalation)
		}
		s.routes = append(s.routes, route{match: ms, chain: r.Escalation})
	}
}

// grouping compiles repeats, grouping and inhibition.
func (k *compiler) grouping() {
	c, s, bad := k.c, k.s, k.bad
	switch {
	case c.RepeatInterval == 0:
		s.repeat = DefaultRepeatInterval
	case c.RepeatInterval > 0:
		s.repeat = c.RepeatInterval
	}
	s.groupBy = c.Grouping.GroupBy
	if s.groupBy == nil {
		s.groupBy = []string{"host"}
	}
	if slices.Contains(s.groupBy, GroupByNothing) {
		if len(s.groupBy) != 1 {
			bad("grouping.group_by", "%q must be the only entry", GroupByNothing)
		}
		s.groupNone = true
	}
	s.groupWait = pickWait(c.Grouping.GroupWait, DefaultGroupWait)
	s.groupInterval = pickWait(c.Grouping.GroupInterval, DefaultGroupInterval)

	inhibit := c.Inhibit
	if inhibit == nil {
		inhibit = DefaultInhibitRules
	}
	for i, r := range inhibit {
		f := fmt.Sprintf("inhibit[%d]", i)
		src, err := patrol.ParseMatchers(r.Source)
		if err != nil {
			bad(f+".source_matchers", "%v", err)
		}
		if len(r.Source) == 0 {
			bad(f+".source_matchers", "empty: a rule needs at least one source matcher")
		}
		tgt, err := patrol.ParseMatchers(r.Target)
		if err != nil {
			bad(f+".target_matchers", "%v", err)
		}
		s.inhibit = append(s.inhibit, inhibitRule{source: src, target: tgt, equal: r.Equal})
	}
}

// windows compiles the maintenance windows.
func (k *compiler) windows() {
	c, s, bad := k.c, k.s, k.bad
	names := map[string]bool{}
	for i, w := range c.Maintenance {
		cw, err := compileWindow(w)
		if err != nil {
			// compileWindow's errors name the field within the window.
			var ce *ConfigError
			if errors.As(err, &ce) {
				bad(fmt.Sprintf("maintenance[%d].%s", i, ce.Field), "%s", ce.Reason)
			} else {
				bad(fmt.Sprintf("maintenance[%d]", i), "%v", err)
			}
			continue
		}
		if names[w.Name] {
			bad(fmt.Sprintf("maintenance[%d].name", i), "duplicate name %q", w.Name)
		}
		names[w.Name] = true
		s.windows = append(s.windows, cw)
	}
}

// limits compiles the runbook link, evidence, retention, the silence limit and impact notices.
func (k *compiler) limits() {
	c, s, bad := k.c, k.s, k.bad
	if c.RunbookURL != "" {
		t, err := template.New("runbook_url").Option("missingkey=zero").Parse(c.RunbookURL)
		if err != nil {
			bad("runbook_url", "%v", err)
		}
		s.runbook = t
	}
	if c.Evidence < 0 {
		bad("evidence", "must not be negative, got %d", c.Evidence)
	}
	s.evidence = pickInt(c.Evidence, DefaultEvidence)
	if c.Retention < 0 {
		bad("retention", "must not be negative, got %s", c.Retention)
	}
	s.retention = pickDur(c.Retention, DefaultRetention)
	if c.MaxSilence < 0 {
		bad("max_silence", "must not be negative, got %s", c.MaxSilence)
	}
	s.maxSilence = pickDur(c.MaxSilence, DefaultMaxSilence)
	s.impact = c.Impact.compile(bad)
}

// compile validates an Impact, reporting problems through bad; it returns nil when
// impact notices are off.
func (im Impact) compile(bad func(field, format string, args ...any)) *impactSettings {
	if len(im.Receivers) == 0 {
		if im.Label != "" || im.Severities != nil {
			bad("impact.receivers", "empty: name the receivers of at least one audience, or %q for all", ImpactAll)
		}
		return nil
	}
	s := &impactSettings{label: im.Label, receivers: make(map[string][]string, len(im.Receivers))}
	for k, v := range im.Receivers {
		s.receivers[k] = slices.Clone(v)
	}
	switch {
	case s.label == "":
		s.label = DefaultImpactLabel
	case !labelName.MatchString(s.label):
		bad("impact.label", "%q is not a label name", s.label)
	case slices.Contains([]string{"alertname", "class", "severity", "target", "host"}, s.label):
		// These name internals (addresses, rules), which customers must not see.
		bad("impact.label", "%q names internals; use a label that names a customer or a service", s.label)
	}
	sevs := im.Severities
	if sevs == nil {
		sevs = []string{"P0", "P1"}
	}
	if len(sevs) == 0 {
		bad("impact.severities", "empty: list the severities customers are told of, such as [P0, P1]")
	}
	for i, v := range sevs {
		sev, err := patrol.ParseSeverity(v)
		if err != nil {
			bad(fmt.Sprintf("impact.severities[%d]", i), "%q: want P0, P1, P2 or P3", v)
			continue
		}
		s.severities[sev] = true
	}
	for _, aud := range slices.Sorted(maps.Keys(im.Receivers)) {
		f := "impact.receivers." + aud
		if strings.TrimSpace(aud) == "" {
			bad("impact.receivers", "empty audience name")
			continue
		}
		if len(im.Receivers[aud]) == 0 {
			bad(f, "empty")
		}
		for j, r := range im.Receivers[aud] {
			if strings.TrimSpace(r) == "" {
				bad(fmt.Sprintf("%s[%d]", f, j), "empty receiver name")
			}
		}
	}
	return s
}

func pickInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func pickDur(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

// pickWait maps zero to the default and a negative value to no wait.
func pickWait(v, def time.Duration) time.Duration {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// rule returns the settings of the rule for a class.
func (s *settings) rule(c patrol.AlertClass) *ruleSettings {
	switch c {
	case patrol.AlertUnreachable:
		return &s.unreachable
	case patrol.AlertSlow:
		return &s.slow
	case patrol.AlertCapacity:
		return &s.capacity
	case patrol.AlertAnomaly:
		return &s.anomaly.ruleSettings
	case patrol.AlertSecurity:
		return &s.security
	case patrol.AlertConfig:
		return &s.config
	case patrol.AlertCertExpiry:
		return &s.certExpiry.ruleSettings
	case patrol.AlertSelf:
		return &s.self
	}
	return nil
}

// forOf returns the `for` duration of the rule of a class; a class without a rule
// (from a store written by another version) fires at once.
func (s *settings) forOf(c patrol.AlertClass) time.Duration {
	if rs := s.rule(c); rs != nil {
		return rs.forDur
	}
	return 0
}

// nextDelay returns the delay before escalation step i (i >= 1) of a chain.
func (s *settings) nextDelay(chain string, i int, sev patrol.Severity) (time.Duration, bool) {
	steps := s.chains[chain]
	if i >= len(steps) {
		return 0, false
	}
	if d := steps[i].After; d > 0 {
		return d, true
	}
	return s.deadlines[sev], true
}
