package alert

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// verdict is what one result says about a rule's condition.
type verdict int

const (
	unknown verdict = iota // no opinion: keep the alert as it is
	holds                  // the condition holds
	clears                 // the condition does not hold
)

func verdictOf(active bool) verdict {
	if active {
		return holds
	}
	return clears
}

// cond is one rule's judgement of one subject.
type cond struct {
	rs      *ruleSettings
	rule    string // the alert's rule name; with subject, its fingerprint
	subject string
	sev     patrol.Severity
	labels  map[string]string
	// lazy says that labels are alertLabels(src, host, subject), made when needed.
	lazy    bool
	src     map[string]string
	host    string
	verdict verdict
	// ready reports that a holding condition has held long enough (count) to open an
	// alert; an open alert stays open while the condition holds.
	ready         bool
	summary, desc string
	at            time.Time
	// follow makes an open alert's severity follow sev (see setSeverity); otherwise
	// an alert keeps the severity it opened with.
	follow bool
}

// labelMap returns the labels of the condition's alert.
func (c *cond) labelMap() map[string]string {
	if c.lazy {
		return alertLabels(c.src, c.host, c.subject)
	}
	return c.labels
}

// sameLabels reports whether m equals c.labelMap(), without making it.
func (c *cond) sameLabels(m map[string]string) bool {
	if !c.lazy {
		return maps.Equal(m, c.labels)
	}
	host := alertHost(c.host, c.subject)
	_, has := c.src["host"]
	addHost := !has && host != ""
	n := len(c.src)
	if addHost {
		n++
	}
	if len(m) != n {
		return false
	}
	for k, v := range c.src {
		if w, ok := m[k]; !ok || w != v {
			return false
		}
	}
	return !addHost || m["host"] == host
}

func fingerprint(rule, subject string) string { return rule + "@" + subject }

// apply opens, updates or clears the alert of a condition.
func (e *Engine) apply(c cond, now time.Time) *entry {
	fp := fingerprint(c.rule, c.subject)
	ent := e.byFP[fp]
	switch c.verdict {
	case clears:
		if ent != nil {
			e.clear(ent, now)
		}
		return nil
	case unknown:
		return ent
	}
	if len(e.cfg.impactRules) > 0 {
		c.sev = e.cfg.raise(c.sev, c.labelMap())
	}
	if ent == nil {
		if c.rs.disabled || !c.ready {
			return nil
		}
		ent = e.open(c)
	} else if !c.sameLabels(ent.Alert.Labels) {
		ent.Alert.Labels = c.labelMap()
		e.markMute(ent)
		e.touch(ent)
	}
	if c.follow && c.sev != ent.Alert.Severity {
		e.setSeverity(ent, c.sev, now)
	}
	// A new wording alone is not saved (a slow alert's changes with every result),
	// but it is shown.
	if c.summary != "" && c.summary != ent.Alert.Summary {
		ent.Alert.Summary = c.summary
		if ent.src {
			e.markMute(ent) // the reason shown on the alerts it inhibits names it
		}
		e.changed(ent)
	}
	if c.desc != "" && c.desc != ent.Alert.Description {
		ent.Alert.Description = c.desc
		e.changed(ent)
	}
	return ent
}

// open creates the alert of a condition, pending or — with no `for` — firing.
func (e *Engine) open(c cond) *entry {
	fp := fingerprint(c.rule, c.subject)
	ent := &entry{Record: Record{Alert: patrol.Alert{
		ID: e.newID(fp, c.at), Fingerprint: fp, Rule: c.rule, Class: c.rs.class, Severity: c.sev,
		State: patrol.AlertPending, Target: c.subject, Labels: c.labelMap(), Summary: c.summary,
		Description: c.desc, StartsAt: c.at,
	}}}
	ent.Alert.RunbookURL = e.runbook(c.rs.runbook, &ent.Alert)
	ent.Chain = e.route(&ent.Alert)
	e.alerts[ent.Alert.ID] = ent
	e.byFP[fp] = ent
	if c.rs.forDur == 0 {
		e.fire(ent, c.at)
	}
	e.markMute(ent)
	e.touch(ent)
	return ent
}

// raisedSeq is the Seq of the escalation notice sent when an alert becomes sev: below
// zero, so that it never meets an escalation step's, and one per severity, since an
// incident reaches each severity at most once on the way up.
func raisedSeq(sev patrol.Severity) int { return -1 - int(sev) }

// setSeverity changes an open alert's severity in place: the incident, its ID and its
// acknowledgement stay. A more urgent severity is news: everyone told is sent an
// escalation notice, and once it is sent the response deadline starts again at the
// new severity's. While the alert is acknowledged, muted or flapping, or before its
// first notice, the change is only shown (a first notice not yet sent carries it). A
// less urgent severity is only shown.
func (e *Engine) setSeverity(ent *entry, sev patrol.Severity, now time.Time) {
	a := &ent.Alert
	raised := sev < a.Severity
	a.Severity = sev
	e.markMute(ent) // inhibition matches on severity
	if raised && ent.Notified && ent.base() == patrol.AlertFiring && a.MutedBy == "" && !ent.Flapping && len(a.Told) > 0 {
		e.owe(ent, patrol.NotifyEscalation, raisedSeq(sev), a.Told, now)
	}
	e.touch(ent)
}

// clear ends an alert whose condition no longer holds: a pending alert vanishes, a
// fired one resolves.
func (e *Engine) clear(ent *entry, now time.Time) {
	if ent.base() == patrol.AlertPending {
		ent.Alert.ResolvedAt, ent.Alert.ResolvedBy = now, "auto"
		e.markMute(ent)
		e.forget(ent)
		return
	}
	e.resolve(ent, "auto", now)
}

func (e *Engine) fire(ent *entry, at time.Time) {
	ent.Alert.FiredAt = at
	e.markMute(ent)
	e.touch(ent)
}

// resolve resolves an alert and tells everyone told. An alert nobody was told of, and
// nobody wrote about, is forgotten at once: it never was an incident to anyone.
func (e *Engine) resolve(ent *entry, by string, now time.Time) {
	if ts := e.targets[ent.Alert.Target]; ts != nil && ts.evidence.len() > 0 {
		ent.Alert.Evidence = ts.evidence.results()
	}
	ent.Alert.ResolvedAt, ent.Alert.ResolvedBy = now, by
	ent.Flapping = false
	e.dropPaging(ent)
	if e.byFP[ent.Alert.Fingerprint] == ent {
		delete(e.byFP, ent.Alert.Fingerprint)
	}
	e.markMute(ent)
	// Customers not yet told of an outage that is over need not hear of it at all.
	e.dropImpact(ent)
	if len(ent.Alert.Told) == 0 && len(ent.Notes) == 0 && len(ent.ImpactTold) == 0 {
		e.forget(ent)
		return
	}
	if len(ent.Alert.Told) > 0 {
		e.owe(ent, patrol.NotifyResolved, 0, ent.Alert.Told, now)
	}
	if len(ent.ImpactTold) > 0 {
		e.owe(ent, patrol.NotifyImpact, impactClosed, ent.ImpactTold, now)
	}
	e.touch(ent)
}

// base is the alert's life-cycle state, ignoring muting and flapping.
func (ent *entry) base() patrol.AlertState {
	a := &ent.Alert
	switch {
	case !a.ResolvedAt.IsZero():
		return patrol.AlertResolved
	case !a.AckedAt.IsZero():
		return patrol.AlertAcknowledged
	case !a.FiredAt.IsZero():
		return patrol.AlertFiring
	}
	return patrol.AlertPending
}

// touch recomputes the shown state and marks the alert to be saved.
func (e *Engine) touch(ent *entry) {
	st := ent.base()
	if st != patrol.AlertResolved {
		switch {
		case ent.Alert.MutedBy != "":
			st = patrol.AlertSilenced
		case ent.Flapping:
			st = patrol.AlertFlapping
		}
	}
	ent.Alert.State = st
	e.markVisit(ent)
	if _, ok := e.alerts[ent.Alert.ID]; ok {
		e.dirty[ent.Alert.ID] = true
		e.changed(ent)
	}
}

// paging reports whether a notification kind is one that muting, flapping and
// acknowledgement hold back. Impact notices follow rules of their own (impact).
func paging(k patrol.NotificationKind) bool {
	return k != patrol.NotifyAck && k != patrol.NotifyResolved && k != patrol.NotifyImpact
}

// The Seq of the two impact notices of an alert: one when it starts to affect its
// audience, one when that is over.
const (
	impactOpen   = 0
	impactClosed = 1
)

// impact owes the customer impact notice of an active alert once it fires, unless a
// silence or a maintenance window mutes it or it is flapping. Acknowledging does not
// hold it back: customers feel the outage whether or not someone is on it.
func (e *Engine) impact(ent *entry, now time.Time) {
	if ent.ImpactAudience != "" || ent.quiet || ent.Flapping {
		return
	}
	if st := ent.base(); st != patrol.AlertFiring && st != patrol.AlertAcknowledged {
		return
	}
	aud, rcv := e.cfg.impact.audience(&ent.Alert)
	if aud == "" {
		return
	}
	ent.ImpactAudience = aud
	e.owe(ent, patrol.NotifyImpact, impactOpen, rcv, now)
}

// dropImpact takes back the impact notice still owed. If nobody was sent it yet, the
// alert may owe it again once it is no longer held back; those already sent it keep
// their place for the resolved notice.
func (e *Engine) dropImpact(ent *entry) {
	n := len(ent.Owed)
	ent.Owed = slices.DeleteFunc(ent.Owed, func(o Owed) bool { return o.Kind == patrol.NotifyImpact && o.Seq == impactOpen })
	if len(ent.Owed) != n {
		if len(ent.ImpactTold) == 0 {
			ent.ImpactAudience = ""
		}
		e.touch(ent)
	}
}

// publicAlert is what an impact notice carries of an alert: its audience and service
// labels, class, severity, state and times under an opaque ID — nothing that names
// internals (target, address, rule, summary, evidence, runbook, who was told), so
// that no provider's payload can show them.
func publicAlert(ent *entry) patrol.Alert {
	a := &ent.Alert
	label, value, _ := strings.Cut(ent.ImpactAudience, "=")
	labels := map[string]string{label: value}
	for _, k := range []string{"service", "app"} {
		if v := a.Labels[k]; v != "" {
			labels[k] = v
		}
	}
	h := fnv.New64a()
	h.Write([]byte(a.ID + "\x00" + ent.ImpactAudience))
	id := fmt.Sprintf("impact-%016x", h.Sum64())
	p := patrol.Alert{ID: id, Fingerprint: id, Class: a.Class, Severity: a.Severity, State: patrol.AlertFiring,
		Labels: labels, StartsAt: a.StartsAt, FiredAt: a.FiredAt}
	if !a.ResolvedAt.IsZero() {
		p.State, p.ResolvedAt = patrol.AlertResolved, a.ResolvedAt
	}
	return p
}

func (e *Engine) dropPaging(ent *entry) {
	n := len(ent.Owed)
	ent.Owed = slices.DeleteFunc(ent.Owed, func(o Owed) bool { return paging(o.Kind) })
	if len(ent.Owed) != n {
		e.touch(ent)
	}
}

func (ent *entry) owes(k patrol.NotificationKind) bool {
	return slices.ContainsFunc(ent.Owed, func(o Owed) bool { return o.Kind == k })
}

// owe decides that receivers are to be sent a notification, through their groups.
func (e *Engine) owe(ent *entry, k patrol.NotificationKind, seq int, receivers []string, now time.Time) {
	rcv := slices.Clone(receivers)
	ent.Owed = append(ent.Owed, Owed{Kind: k, Seq: seq, Receivers: rcv})
	for _, r := range rcv {
		e.enqueue(ent, k, seq, r, now)
	}
	e.touch(ent)
}

// advance takes the decisions time calls for on one active alert: the first notice,
// escalation, reminders, the flapping notice.
func (e *Engine) advance(ent *entry, now time.Time) {
	a := &ent.Alert
	if ent.base() != patrol.AlertFiring || a.MutedBy != "" {
		return
	}
	steps := e.cfg.chains[ent.Chain]
	if ent.Flapping {
		if !ent.FlapNotified && !ent.owes(patrol.NotifyFlapping) {
			e.owe(ent, patrol.NotifyFlapping, 0, steps[0].Receivers, now)
		}
		return
	}
	if !ent.Notified {
		if !ent.owes(patrol.NotifyFiring) && !now.Before(a.FiredAt.Add(steps[0].After)) {
			e.owe(ent, patrol.NotifyFiring, 0, steps[0].Receivers, now)
		}
		return
	}
	next := a.EscalationStep + 1
	if next < len(steps) && !a.Deadline.IsZero() && !now.Before(a.Deadline) && !ent.owes(patrol.NotifyEscalation) {
		e.owe(ent, patrol.NotifyEscalation, next, steps[next].Receivers, now)
	}
	if e.cfg.repeat > 0 && !ent.NextReminder.IsZero() && !now.Before(ent.NextReminder) && !ent.owes(patrol.NotifyReminder) {
		e.owe(ent, patrol.NotifyReminder, ent.Reminders+1, a.Told, now)
	}
}

// commit records that receiver was sent the notification (k, seq) of an alert.
func (e *Engine) commit(ent *entry, k patrol.NotificationKind, seq int, receiver string, now time.Time) {
	i := slices.IndexFunc(ent.Owed, func(o Owed) bool { return o.Kind == k && o.Seq == seq })
	if i < 0 {
		return
	}
	o := &ent.Owed[i]
	o.Receivers = slices.DeleteFunc(o.Receivers, func(r string) bool { return r == receiver })
	a := &ent.Alert
	switch {
	case k == patrol.NotifyImpact:
		if seq == impactOpen && !slices.Contains(ent.ImpactTold, receiver) {
			ent.ImpactTold = append(ent.ImpactTold, receiver)
		}
	case !slices.Contains(a.Told, receiver):
		a.Told = append(a.Told, receiver)
	}
	if !o.Sent {
		o.Sent = true
		switch k {
		case patrol.NotifyFiring:
			ent.Notified = true
			a.EscalationStep = 0
			d, ok := e.cfg.nextDelay(ent.Chain, 1, a.Severity)
			if !ok {
				d = e.cfg.deadlines[a.Severity]
			}
			a.Deadline = now.Add(d)
			e.remindFrom(ent, now)
		case patrol.NotifyEscalation:
			if seq < 0 {
				// A raised severity: the chain's step stays, its clock restarts.
				d, ok := e.cfg.nextDelay(ent.Chain, a.EscalationStep+1, a.Severity)
				if !ok {
					d = e.cfg.deadlines[a.Severity]
				}
				a.Deadline = now.Add(d)
				e.remindFrom(ent, now)
				break
			}
			a.EscalationStep = seq
			if d, ok := e.cfg.nextDelay(ent.Chain, seq+1, a.Severity); ok {
				a.Deadline = now.Add(d)
			}
			e.remindFrom(ent, now)
		case patrol.NotifyReminder:
			ent.Reminders = seq
			e.remindFrom(ent, now)
		case patrol.NotifyFlapping:
			ent.FlapNotified = true
		}
	}
	if len(o.Receivers) == 0 {
		ent.Owed = slices.Delete(ent.Owed, i, i+1)
	}
	e.touch(ent)
}

func (e *Engine) remindFrom(ent *entry, now time.Time) {
	if e.cfg.repeat > 0 {
		ent.NextReminder = now.Add(e.cfg.repeat)
	}
}

// resume restarts the clocks of an alert that was muted or flapping: the people it
// pages get a fresh response window rather than an instant escalation.
func (e *Engine) resume(ent *entry, now time.Time) {
	a := &ent.Alert
	if !ent.Notified || ent.base() != patrol.AlertFiring {
		return
	}
	if !a.Deadline.IsZero() && a.Deadline.Before(now) {
		a.Deadline = now.Add(e.cfg.deadlines[a.Severity])
	}
	if !ent.NextReminder.IsZero() && ent.NextReminder.Before(now) {
		e.remindFrom(ent, now)
	}
}

// setFlapping records the scheduler's flap detection on an alert.
func (e *Engine) setFlapping(ent *entry, on bool, now time.Time) {
	if ent.Flapping == on {
		return
	}
	ent.Flapping = on
	if on {
		ent.Owed = slices.DeleteFunc(ent.Owed, func(o Owed) bool { return paging(o.Kind) && o.Kind != patrol.NotifyFlapping })
		e.dropImpact(ent)
	} else {
		ent.Owed = slices.DeleteFunc(ent.Owed, func(o Owed) bool { return o.Kind == patrol.NotifyFlapping })
		e.resume(ent, now)
	}
	e.touch(ent)
}

// recomputeMutes works out which alerts maintenance windows, silences and inhibition
// mute: for every alert after a window or silence started or ended; otherwise for the
// alerts that changed and for the alerts whose inhibiting source changed (the one
// named for their Equal labels is another, or changed itself), which the inhibition
// index (inhibit.go) finds without walking the open alerts. Either way each alert
// ends as working it out for every alert would leave it.
func (e *Engine) recomputeMutes(now time.Time) {
	all := e.muteAll || e.inh == nil
	list := e.muteList
	e.muteList, e.muteAll = nil, false
	for _, ent := range list {
		ent.muteQueued = false
	}
	var windows []*window
	for i := range e.cfg.windows {
		if e.winActive[i] {
			windows = append(windows, &e.cfg.windows[i])
		}
	}
	var silences []*patrol.Silence
	for _, id := range slices.Sorted(maps.Keys(e.silences)) {
		if sl := e.silences[id]; sl.Active(now) {
			silences = append(silences, sl)
		}
	}
	if all {
		e.resetInhibition()
		for _, ent := range list {
			ent.inh, ent.src = nil, false
		}
		for _, ent := range e.byFP {
			e.index(ent, nil)
		}
		for _, ent := range e.byFP {
			e.mute(ent, windows, silences, now)
		}
		return
	}
	// Re-index the changed alerts, noting which source each touched set named before.
	before := map[inhKey]*entry{}
	for _, ent := range list {
		e.unindex(ent, before)
		e.index(ent, before)
	}
	changed := make(map[*entry]bool, len(list))
	done := make(map[*entry]bool, len(list))
	for _, ent := range list {
		changed[ent] = true
		if e.active(ent) && !done[ent] {
			done[ent] = true
			e.mute(ent, windows, silences, now)
		}
	}
	var redo []*entry
	for k, was := range before {
		best := e.bestSource(k.rule, k.key)
		if best == was && (best == nil || !changed[best]) {
			continue // the same source, unchanged, mutes the same alerts
		}
		for ent := range e.inh[k.rule].tgt[k.key] {
			if !done[ent] {
				done[ent] = true
				redo = append(redo, ent)
			}
		}
	}
	// In ID order, so that the order of changes does not depend on map order.
	slices.SortFunc(redo, func(a, b *entry) int { return strings.Compare(a.Alert.ID, b.Alert.ID) })
	for _, ent := range redo {
		e.mute(ent, windows, silences, now)
	}
}

// mute works out what mutes one active alert, given the open windows, the active
// silences and e.sources.
func (e *Engine) mute(ent *entry, windows []*window, silences []*patrol.Silence, now time.Time) {
	get := labelGetter(&ent.Alert)
	why := ""
	for _, w := range windows {
		if w.matchers.Matches(get) {
			why = "maintenance " + w.Name
			break
		}
	}
	for _, sl := range silences {
		if why != "" {
			break
		}
		if sl.Matchers.Matches(get) {
			why = fmt.Sprintf("silence %s by %s", sl.ID, sl.Author)
			if sl.Comment != "" {
				why += ": " + sl.Comment
			}
		}
	}
	if quiet := why != ""; quiet != ent.quiet {
		ent.quiet = quiet
		if quiet {
			e.dropImpact(ent)
		}
		e.markVisit(ent)
	}
	for i, r := range e.cfg.inhibit {
		if why != "" {
			break
		}
		if !r.target.Matches(get) {
			continue
		}
		if src := e.bestSource(i, equalKey(&ent.Alert, r.equal)); src != nil && src != ent {
			why = fmt.Sprintf("inhibited by %s (%s)", src.Alert.ID, src.Alert.Summary)
		}
	}
	if why == ent.Alert.MutedBy {
		return
	}
	was := ent.Alert.MutedBy
	ent.Alert.MutedBy = why
	if was == "" {
		e.dropPaging(ent)
	} else if why == "" {
		e.resume(ent, now)
	}
	e.touch(ent)
}

func equalKey(a *patrol.Alert, names []string) string {
	var b strings.Builder
	get := labelGetter(a)
	for _, n := range names {
		b.WriteString(get(n))
		b.WriteByte(0)
	}
	return b.String()
}

// labelGetter returns a lookup of an alert's labels, with the engine's own labels
// alertname, class, severity and target taking precedence.
func labelGetter(a *patrol.Alert) func(string) string {
	return func(name string) string {
		switch name {
		case "alertname":
			return a.Rule
		case "class":
			return string(a.Class)
		case "severity":
			return a.Severity.String()
		case "target":
			return a.Target
		}
		return a.Labels[name]
	}
}

// alertLabels copies a target's labels and adds host, from the signal or from a
// "host:<name>" subject, unless the labels have one.
func alertLabels(labels map[string]string, host, subject string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	maps.Copy(out, labels)
	host = alertHost(host, subject)
	if _, ok := out["host"]; !ok && host != "" {
		out["host"] = host
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// alertHost is the host an alert names: host, or else the name of a "host:<name>"
// subject.
func alertHost(host, subject string) string {
	if host == "" {
		host, _ = strings.CutPrefix(subject, "host:")
		if host == subject {
			host = ""
		}
	}
	return host
}

// route picks the escalation chain of a new alert.
func (e *Engine) route(a *patrol.Alert) string {
	get := labelGetter(a)
	for _, r := range e.cfg.routes {
		if r.match.Matches(get) {
			return r.chain
		}
	}
	return e.cfg.defaultChain
}

// runbook renders the runbook link of an alert; a template that fails to run gives no
// link rather than a wrong one.
func (e *Engine) runbook(own *template.Template, a *patrol.Alert) string {
	t := own
	if t == nil {
		t = e.cfg.runbook
	}
	if t == nil {
		return ""
	}
	var b strings.Builder
	err := t.Execute(&b, map[string]any{
		"Target": a.Target, "Host": a.Labels["host"], "Rule": a.Rule, "Class": string(a.Class),
		"Severity": a.Severity.String(), "Labels": a.Labels,
	})
	if err != nil {
		return ""
	}
	return b.String()
}

// snapshot returns a copy of an alert for the outside, with its latest evidence.
func (e *Engine) snapshot(ent *entry) patrol.Alert {
	a := ent.Alert
	a.Labels = maps.Clone(a.Labels)
	a.Told = slices.Clone(a.Told)
	a.Evidence = slices.Clone(a.Evidence)
	if a.ResolvedAt.IsZero() {
		if ts := e.targets[a.Target]; ts != nil && ts.evidence.len() > 0 {
			a.Evidence = ts.evidence.results()
		}
	}
	return a
}
