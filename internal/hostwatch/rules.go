package hostwatch

import (
	"fmt"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// outcome is what one dump brings: events to raise or clear, listeners to store, and
// whether the expected set changed.
type outcome struct {
	events  []patrol.Finding
	learned []learnedValue
	changed bool
}

// judge compares a dump with what the watch knows and runs the rules. The caller
// holds w.mu.
func (w *Watch) judge(now time.Time, socks []inventory.Socket, ctrs inventory.Counters, ctrsOK, detail bool, res map[int]inventory.Resources) outcome {
	var o outcome
	for _, l := range w.ls {
		l.socks = l.socks[:0]
	}
	for n := range socks {
		s := &socks[n]
		if s.Local.Port() == 0 || s.Proto == inventory.UDP && !w.cfg.UDP {
			continue
		}
		k := key{s.Proto, s.Local}
		l := w.ls[k]
		if l == nil {
			l = &listener{key: k}
			w.ls[k] = l
		}
		l.socks = append(l.socks, *s)
	}

	// Overflows go to the listeners whose queue is full now or was at the last dump.
	var overflows, drops int64
	if ctrsOK {
		if w.ctrsOK {
			overflows = ctrs.ListenOverflows - w.ctrs.ListenOverflows
			drops = ctrs.ListenDrops - w.ctrs.ListenDrops
		}
		w.ctrs, w.ctrsOK = ctrs, true
	}
	culprits := 0
	for _, l := range w.ls {
		full := false
		for n := range l.socks {
			full = full || l.socks[n].QueueFull()
		}
		l.overflow = 0
		if overflows > 0 && (full || l.full) {
			l.overflow = overflows
			culprits++
		}
		l.full = full
	}
	w.judgeHost(now, overflows, drops, culprits, &o.events)

	for k, l := range w.ls {
		if len(l.socks) == 0 {
			w.clearConditions(l, now, "the listener is gone", &o.events)
			if !l.expected {
				w.ephemeral++
				delete(w.ls, k)
				o.changed = o.changed || l.ignore == "" // no longer probed
				continue
			}
			if l.retired {
				continue
			}
			if l.gone.IsZero() {
				l.gone = now
			}
			l.missed++
			if l.missed >= w.cfg.ConfirmTicks && !l.vanished {
				l.vanished = true
				w.judgeFate(l, now)
				if !l.muted {
					o.events = append(o.events, w.vanishedEvent(l, now))
				}
				o.changed = true
				o.learned = append(o.learned, l.value())
			} else if l.vanished && detail && w.judgeFate(l, now) {
				// The alert says what became of the process now.
				if !l.muted {
					o.events = append(o.events, w.vanishedEvent(l, now))
				}
				o.learned = append(o.learned, l.value())
			}
			if l.vanished && !l.forgetAt.IsZero() && !now.Before(l.forgetAt) {
				w.retire(l, now, &o.events)
				o.changed = true
				o.learned = append(o.learned, l.value())
			}
			continue
		}
		if l.since.IsZero() || l.missed > 0 || l.retired {
			l.since = now
		}
		fresh := l.firstSeen.IsZero()
		if fresh {
			l.firstSeen = now
		}
		for n := range l.socks {
			if l.socks[n].Owner != nil {
				l.owner = l.socks[n].Owner
				break
			}
		}
		if l.retired {
			// Back after it was retired: learned afresh.
			*l = listener{key: l.key, socks: l.socks, owner: l.owner, firstSeen: now, since: now}
			o.changed = true
		}
		wasGone := l.vanished || l.muted || !l.gone.IsZero()
		if l.vanished {
			l.vanished = false
			if !l.muted {
				o.events = append(o.events, w.backEvent(l, now))
			}
		}
		if wasGone {
			if l.muted {
				o.changed = true // probed again
			}
			l.gone, l.fate, l.forgetAt, l.muted = time.Time{}, "", time.Time{}, false
			if l.expected {
				o.learned = append(o.learned, l.value())
			}
		}
		l.missed = 0
		if !l.expected {
			// A listener being learned is probed at once: the set of targets changes
			// when one appears, or when its owner, found later, turns out ignored.
			was := l.ignore
			l.ignore = w.ignored(l)
			o.changed = o.changed || fresh && l.ignore == "" || !fresh && l.ignore != was
		}
		if l.expected && l.owner != nil && l.owner.PID != 0 && l.owner.PID != l.identPID {
			w.readIdent(l)
			o.learned = append(o.learned, l.value())
		}
		switch {
		case !l.expected && l.ignore == "" && now.Sub(l.since) >= w.learnAfter(l):
			l.expected, l.learnedAt = true, now
			w.readIdent(l)
			o.changed = true
			o.learned = append(o.learned, l.value())
		case detail && l.expected && !l.persisted && w.cfg.Store != nil:
			o.learned = append(o.learned, l.value())
		}
		// An ignored listener raises no capacity alert; a public bind of an internal
		// service is still reported.
		quiet := l.ignore != "" && !l.expected
		if !quiet {
			w.judgeQueue(l, now, &o.events)
		}
		w.judgePublic(l)
		if detail {
			l.established, l.bytesIn, l.bytesOut = 0, 0, 0
			for n := range l.socks {
				l.established += l.socks[n].Established
				l.bytesIn += l.socks[n].BytesIn
				l.bytesOut += l.socks[n].BytesOut
			}
			w.sampleClients(l, now)
			l.res, l.resOK = inventory.Resources{}, false
			if l.owner != nil && l.owner.PID != 0 {
				l.res, l.resOK = res[l.owner.PID]
			}
			if !quiet {
				w.judgeFiles(l, now, &o.events)
			}
		}
	}
	w.judgePublicGroups(now, &o.events)
	return o
}

// judgeQueue runs the accept-queue rule: a queue over QueueRatio of its backlog for
// QueueTicks dumps, or overflows while it is full, raise it; QueueTicks calm dumps
// clear it.
func (w *Watch) judgeQueue(l *listener, now time.Time, evs *[]patrol.Finding) {
	var worst *inventory.Socket
	for n := range l.socks {
		s := &l.socks[n]
		if s.Proto == inventory.TCP && s.SendQ > 0 && float64(s.RecvQ) > w.cfg.QueueRatio*float64(s.SendQ) {
			if worst == nil || s.RecvQ*worst.SendQ > worst.RecvQ*s.SendQ {
				worst = s
			}
		}
	}
	if worst != nil || l.overflow > 0 {
		l.queueHigh++
		l.queueCalm = 0
	} else {
		l.queueCalm++
		l.queueHigh = 0
	}
	q, b := l.queueLen()
	switch {
	case !l.queue && (l.queueHigh >= w.cfg.QueueTicks || l.overflow > 0):
		l.queue = true
		e := w.event(l, patrol.AlertCapacity, RuleAcceptQueue, l.key.target(), "P2", now, true)
		e.Summary = fmt.Sprintf("Accept queue of %s near its backlog: %d of %d", w.name(l), q, b)
		d := ""
		if worst != nil {
			d = fmt.Sprintf("The accept queue holds %d connections against a backlog of %d, over %.0f %%, for %d dumps in a row (%s).",
				worst.RecvQ, worst.SendQ, w.cfg.QueueRatio*100, l.queueHigh, time.Duration(l.queueHigh)*w.cfg.Interval)
		}
		if l.overflow > 0 {
			d += fmt.Sprintf(" The kernel's ListenOverflows counter grew by %d while this queue was full: new connections are being dropped.", l.overflow)
		}
		e.Description = strings.TrimSpace(d + " " + w.owned(l, true) + " does not accept connections as fast as they arrive: check whether it is stuck or overloaded; a larger backlog (listen(), net.core.somaxconn) only buys time.")
		*evs = append(*evs, e)
	case l.queue && l.queueCalm >= w.cfg.QueueTicks:
		l.queue = false
		e := w.event(l, patrol.AlertCapacity, RuleAcceptQueue, l.key.target(), "P2", now, false)
		e.Summary = fmt.Sprintf("Accept queue of %s has drained: %d of %d", w.name(l), q, b)
		e.Description = fmt.Sprintf("The accept queue has stayed under %.0f %% of its backlog, without overflows, for %d dumps.", w.cfg.QueueRatio*100, l.queueCalm)
		*evs = append(*evs, e)
	}
}

// queueLen sums the accept queues and backlogs of the listener's sockets.
func (l *listener) queueLen() (q, b uint32) {
	for n := range l.socks {
		q += l.socks[n].RecvQ
		b += l.socks[n].SendQ
	}
	return q, b
}

// judgeFiles runs the open-files rule on a detail dump: the owner's open files, or the
// listener's established connections, over FDRatio of its RLIMIT_NOFILE.
func (w *Watch) judgeFiles(l *listener, now time.Time, evs *[]patrol.Finding) {
	if !l.resOK || l.res.MaxOpenFiles <= 0 {
		return
	}
	used := max(l.res.OpenFiles, l.established)
	over := float64(used) > w.cfg.FDRatio*float64(l.res.MaxOpenFiles)
	switch {
	case over && !l.files:
		l.files = true
		e := w.event(l, patrol.AlertCapacity, RuleOpenFiles, l.key.target(), "P2", now, true)
		e.Summary = fmt.Sprintf("%s near its open-files limit: %d of %d", w.name(l), used, l.res.MaxOpenFiles)
		e.Description = fmt.Sprintf("%s holds %d open files against its limit of %d (RLIMIT_NOFILE, ulimit -n), over %.0f %%; %d connections to %s are established. At the limit accept() fails with EMFILE and new connections wait in the accept queue or are dropped. Raise the limit (LimitNOFILE= in a systemd unit) or find what holds the descriptors.",
			w.owned(l, true), l.res.OpenFiles, l.res.MaxOpenFiles, w.cfg.FDRatio*100, l.established, l.key.bind)
		*evs = append(*evs, e)
	case !over && l.files:
		l.files = false
		e := w.event(l, patrol.AlertCapacity, RuleOpenFiles, l.key.target(), "P2", now, false)
		e.Summary = fmt.Sprintf("%s back under its open-files limit: %d of %d", w.name(l), used, l.res.MaxOpenFiles)
		e.Description = fmt.Sprintf("%s holds %d open files against its limit of %d; %d connections are established.",
			w.owned(l, true), l.res.OpenFiles, l.res.MaxOpenFiles, l.established)
		*evs = append(*evs, e)
	}
}

// judgePublic notes whether l is a service usually meant to be internal listening on
// every address. The alerts are raised per process by judgePublicGroups.
func (w *Watch) judgePublic(l *listener) {
	l.public = ""
	for n := range l.socks {
		if svc, ok := inventory.Exposed(&l.socks[n]); ok {
			l.public = svc
			break
		}
	}
}

// judgeHost runs the host-level overflow rule: overflows that no full queue explains.
func (w *Watch) judgeHost(now time.Time, overflows, drops int64, culprits int, evs *[]patrol.Finding) {
	h := &w.host
	unexplained := overflows > 0 && culprits == 0
	if unexplained {
		h.calm = 0
	} else {
		h.calm++
	}
	subject := "host:" + w.cfg.Host
	e := patrol.Finding{Class: patrol.AlertCapacity, Rule: RuleListenOverflows, Subject: subject, Severity: "P2", At: now,
		Labels: map[string]string{"source": "hostwatch"}}
	if w.cfg.Host != "" {
		e.Labels["host"] = w.cfg.Host
	}
	switch {
	case unexplained && !h.active:
		h.active = true
		e.Active = true
		e.Summary = fmt.Sprintf("Listen queues overflow on %s: %d connections dropped", w.cfg.Host, overflows)
		e.Description = fmt.Sprintf("The kernel's ListenOverflows counter grew by %d (ListenDrops by %d) within %s, but no listener's accept queue was full at the last two dumps: a queue fills and drains between them. Compare portpatrol_listener_accept_queue with portpatrol_listener_backlog to find it.",
			overflows, drops, w.cfg.Interval)
		*evs = append(*evs, e)
	case h.active && h.calm >= w.cfg.QueueTicks:
		h.active = false
		e.Summary = fmt.Sprintf("Listen queues on %s no longer overflow", w.cfg.Host)
		e.Description = fmt.Sprintf("ListenOverflows has not grown for %d dumps.", h.calm)
		*evs = append(*evs, e)
	}
}

// clearConditions clears the queue and open-files alerts of l, because of why, and
// takes it out of its process's public-bind alert.
func (w *Watch) clearConditions(l *listener, now time.Time, why string, evs *[]patrol.Finding) {
	if l.queue {
		l.queue = false
		e := w.event(l, patrol.AlertCapacity, RuleAcceptQueue, l.key.target(), "P2", now, false)
		e.Summary = fmt.Sprintf("Accept queue alert of %s cleared", w.name(l))
		e.Description = "The accept-queue alert is cleared because " + why + "."
		*evs = append(*evs, e)
	}
	l.queueHigh, l.queueCalm = 0, 0
	if l.files {
		l.files = false
		e := w.event(l, patrol.AlertCapacity, RuleOpenFiles, l.key.target(), "P2", now, false)
		e.Summary = fmt.Sprintf("Open-files alert of %s cleared", w.name(l))
		e.Description = "The open-files alert is cleared because " + why + "."
		*evs = append(*evs, e)
	}
	l.public = "" // its process's public-bind alert follows at the next judgePublicGroups
}

// clearAlerts clears every alert of l, the vanished one included.
func (w *Watch) clearAlerts(l *listener, now time.Time, why string, evs *[]patrol.Finding) {
	w.clearConditions(l, now, why, evs)
	if l.vanished {
		l.vanished = false
		e := w.event(l, patrol.AlertUnreachable, "", l.key.target(), "P0", now, false)
		e.Summary = fmt.Sprintf("Listener %s no longer watched", w.name(l))
		e.Description = "The vanished-listener alert is cleared because " + why + "."
		*evs = append(*evs, e)
	}
}

// readIdent reads the identity of l's owner, to recognise it restarted later.
func (w *Watch) readIdent(l *listener) {
	pid := l.pid()
	if pid == 0 {
		return
	}
	l.identPID = pid
	if id, err := w.cfg.Procs.Identity(pid); err == nil {
		l.ident = id
	} else {
		w.log.Debug("process identity", "pid", pid, "err", err)
	}
}

// judgeFate looks at what became of the process of l, which is gone: still running,
// restarted, or exited; and sets or cancels its retirement. It reports whether the fate
// changed.
func (w *Watch) judgeFate(l *listener, now time.Time) bool {
	fate := FateExited
	if pid := l.pid(); pid != 0 {
		id, err := w.cfg.Procs.Identity(pid)
		if err == nil && (l.ident == (ProcID{}) || l.ident.same(id) && l.ident.sameStart(id)) {
			fate = FateRunning
		}
	}
	if fate == FateExited && l.ident != (ProcID{}) {
		pids, err := w.cfg.Procs.Find(l.ident)
		if err != nil {
			w.log.Debug("find restarted process", "err", err)
			return false // undecided: look again at the next detail dump
		}
		for _, pid := range pids {
			// A process started before the listener went cannot be its restart.
			if id, err := w.cfg.Procs.Identity(pid); err == nil && pid != l.pid() && !id.Start.Before(l.gone.Add(-restartSlack)) {
				fate = FateRestarting
				break
			}
		}
	}
	if fate == l.fate {
		return false
	}
	// Found exited when it went: forget_after counts from then; exited after a
	// time of restarts or of running on without its listener: from now.
	since := now
	if l.fate == "" && !l.gone.IsZero() {
		since = l.gone
	}
	l.fate = fate
	if fate == FateExited {
		l.forgetAt = since.Add(w.cfg.ForgetAfter)
	} else {
		l.forgetAt = time.Time{}
	}
	return true
}

// restartSlack allows for the clock tick of process start times.
const restartSlack = time.Second

// retire clears the alerts of l, gone for ForgetAfter with its process exited, and
// marks it retired: it is no longer probed and never pages again.
func (w *Watch) retire(l *listener, now time.Time, evs *[]patrol.Finding) {
	if l.muted {
		w.clearConditions(l, now, "it was retired", evs)
		l.vanished = false
	} else {
		w.clearAlerts(l, now, fmt.Sprintf("it was retired: gone since %s, and its process exited and was not restarted for %s",
			stamp(l.gone), w.cfg.ForgetAfter), evs)
	}
	l.retired, l.forgetAt = true, time.Time{}
}

func (w *Watch) vanishedEvent(l *listener, now time.Time) patrol.Finding {
	e := w.event(l, patrol.AlertUnreachable, "", l.key.target(), "P0", now, true)
	e.Summary = fmt.Sprintf("Listener %s is gone", w.name(l))
	var d string
	if l.since.IsZero() {
		d = fmt.Sprintf("Nothing listens on %s (%s). It has been expected since %s (learned before this watch started) and has not been seen listening since the watch started;",
			l.key.bind, l.key.proto, stamp(l.learnedAt))
	} else {
		d = fmt.Sprintf("Nothing listens on %s (%s) any more. %s had listened there since %s and it has been expected since %s;",
			l.key.bind, l.key.proto, w.owned(l, true), stamp(l.since), stamp(l.learnedAt))
	}
	e.Description = d + fmt.Sprintf(" it was missing from %d socket dumps in a row, the first at %s. Clients are refused.",
		l.missed, stamp(l.gone))
	switch l.fate {
	case FateRunning:
		e.Description += fmt.Sprintf(" %s still runs but no longer listens there: check its logs and configuration.", w.owned(l, true))
	case FateRestarting:
		e.Description += " Its program has been started again (same executable and cgroup) but does not listen yet: it may be crashing in a loop; check its logs."
	case FateExited:
		e.Description += fmt.Sprintf(" Its process exited and was not restarted. If the service was stopped for good, this is the only page: the listener is retired at %s (host_watch.forget_after), or forget it now with portpatrol learned forget %s.",
			stamp(l.forgetAt), l.key.addr())
	default:
		e.Description += " Check whether the process has crashed or been stopped, and its logs."
	}
	return e
}

func (w *Watch) backEvent(l *listener, now time.Time) patrol.Finding {
	e := w.event(l, patrol.AlertUnreachable, "", l.key.target(), "P0", now, false)
	e.Summary = fmt.Sprintf("Listener %s is back", w.name(l))
	e.Description = fmt.Sprintf("%s listens on %s (%s) again", w.owned(l, true), l.key.bind, l.key.proto)
	if !l.gone.IsZero() {
		e.Description += fmt.Sprintf(", after %s missing", now.Sub(l.gone).Round(time.Millisecond))
	}
	e.Description += "."
	return e
}

// event starts an event about l with its labels.
func (w *Watch) event(l *listener, class patrol.AlertClass, rule, subject, sev string, now time.Time, active bool) patrol.Finding {
	labels := map[string]string{
		"source": "hostwatch",
		"proto":  string(l.key.proto),
		"bind":   l.key.bind.String(),
	}
	if w.cfg.Host != "" {
		labels["host"] = w.cfg.Host
	}
	if p := l.process(); p != "" {
		labels["process"] = p
	}
	return patrol.Finding{Class: class, Rule: rule, Subject: subject, Severity: sev, Labels: labels, Active: active, At: now}
}

// name is "tcp 127.0.0.1:6379 (redis-server)".
func (w *Watch) name(l *listener) string {
	s := string(l.key.proto) + " " + l.key.bind.String()
	if p := l.process(); p != "" {
		s += " (" + p + ")"
	}
	return s
}

// owned is "redis-server (pid 123)", or "its process" ("Its process" at the start of a
// sentence) when unknown.
func (w *Watch) owned(l *listener, start bool) string {
	switch {
	case (l.owner == nil || l.owner.Command == "") && start:
		return "Its process"
	case l.owner == nil || l.owner.Command == "":
		return "its process"
	case l.owner.PID == 0:
		return l.owner.Command
	}
	return fmt.Sprintf("%s (pid %d)", l.owner.Command, l.owner.PID)
}

func stamp(t time.Time) string { return t.Format(time.RFC3339) }
