package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/audit"
	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/schedule"
	"github.com/portpatrol/portpatrol/internal/store"
)

// apiAdapter gives the API the daemon's live state: targets from the scheduler,
// history and tokens from the store, alerts and silences from the alert engine,
// deliveries from the outbox.
type apiAdapter struct {
	d *Daemon

	touchMu sync.Mutex
	touched map[string]time.Time // token ID → last TouchToken
}

var (
	_ api.Targets      = (*apiAdapter)(nil)
	_ api.History      = (*apiAdapter)(nil)
	_ api.Alerts       = (*apiAdapter)(nil)
	_ api.AlertActions = (*apiAdapter)(nil)
	_ api.Silences     = (*apiAdapter)(nil)
	_ api.Windows      = (*apiAdapter)(nil)
	_ api.Deliveries   = (*apiAdapter)(nil)
	_ api.Audits       = (*apiAdapter)(nil)
	_ api.Tokens       = (*apiAdapter)(nil)
	_ api.TokenAdmin   = (*apiAdapter)(nil)
)

func (a *apiAdapter) names() map[string]string {
	cfg := a.d.cfg()
	m := make(map[string]string, len(cfg.Checks))
	for id, name := range a.d.hostTargetNames() {
		m[id] = name
	}
	for _, c := range cfg.Checks {
		if c.Name != "" {
			m[c.Target.ID] = c.Name
		}
	}
	return m
}

func targetState(js schedule.JobState, name string) patrol.TargetState {
	ts := js.TargetState()
	ts.Name = name
	return ts
}

func (a *apiAdapter) TargetStates(context.Context) ([]patrol.TargetState, error) {
	snap := a.d.sched.Snapshot()
	names := a.names()
	out := make([]patrol.TargetState, len(snap))
	for i, js := range snap {
		out[i] = targetState(js, names[js.Job.ID])
	}
	return out, nil
}

func (a *apiAdapter) TargetState(_ context.Context, id string) (patrol.TargetState, error) {
	snap := a.d.sched.Snapshot()
	i := sort.Search(len(snap), func(i int) bool { return snap[i].Job.ID >= id })
	if i == len(snap) || snap[i].Job.ID != id {
		return patrol.TargetState{}, fmt.Errorf("target %q: %w", id, api.ErrNotFound)
	}
	return targetState(snap[i], a.names()[id]), nil
}

func (a *apiAdapter) History(ctx context.Context, q patrol.HistoryQuery) (patrol.Series, error) {
	return a.d.db.History(ctx, q)
}

func (a *apiAdapter) RecentResults(ctx context.Context, target string, n int) ([]patrol.Result, error) {
	return a.d.db.RecentResults(ctx, target, n)
}

func (a *apiAdapter) ListAlerts(_ context.Context, f api.AlertFilter) ([]patrol.Alert, error) {
	return a.d.engine().List(alert.Filter{States: f.States, Severities: f.Severities, Target: f.Target}), nil
}

func (a *apiAdapter) GetAlert(_ context.Context, id string) (api.Incident, error) {
	r, ok := a.d.engine().Get(id)
	if !ok {
		return api.Incident{}, fmt.Errorf("alert %q: %w", id, api.ErrNotFound)
	}
	return api.Incident{Alert: r.Alert, Chain: r.Chain, Notes: r.Notes, Hint: a.d.learnedHint(r.Alert)}, nil
}

// alertErr maps the alert engine's errors onto the API's.
func alertErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, alert.ErrNotFound):
		return fmt.Errorf("%w: %v", api.ErrNotFound, err)
	case errors.Is(err, alert.ErrResolved), errors.Is(err, alert.ErrPending):
		return fmt.Errorf("%w: %v", api.ErrConflict, err)
	}
	return err
}

func (a *apiAdapter) AckAlert(ctx context.Context, id, by, comment string) error {
	return alertErr(a.d.withEngine(func(e *alert.Engine) error { return e.Ack(ctx, id, by, comment) }))
}

func (a *apiAdapter) ResolveAlert(ctx context.Context, id, by, comment string) error {
	r, _ := a.d.engine().Get(id)
	if err := alertErr(a.d.withEngine(func(e *alert.Engine) error { return e.Resolve(ctx, id, by, comment) })); err != nil {
		return err
	}
	a.d.learnedResolved(ctx, r.Alert.Target)
	return nil
}

func (a *apiAdapter) ListSilences(context.Context) ([]patrol.Silence, error) {
	return a.d.engine().Silences(), nil
}

func (a *apiAdapter) CreateSilence(ctx context.Context, s patrol.Silence) (patrol.Silence, error) {
	var out patrol.Silence
	err := a.d.withEngine(func(e *alert.Engine) (err error) {
		out, err = e.CreateSilence(ctx, s)
		return err
	})
	if err != nil {
		if errors.Is(err, alert.ErrNotFound) {
			return patrol.Silence{}, alertErr(err)
		}
		// %w twice: the API reads the *patrol.SilenceError's field.
		return patrol.Silence{}, fmt.Errorf("%w: %w", api.ErrInvalid, err)
	}
	return out, nil
}

func (a *apiAdapter) ExpireSilence(ctx context.Context, id, by string) error {
	return alertErr(a.d.withEngine(func(e *alert.Engine) error { return e.ExpireSilence(ctx, id, by) }))
}

func (a *apiAdapter) MaintenanceWindows(context.Context) ([]api.Window, error) {
	ws := a.d.engine().Windows()
	out := make([]api.Window, len(ws))
	for i, w := range ws {
		out[i] = api.Window{Name: w.Name, Schedule: w.Schedule, Start: w.Start, End: w.End, Matchers: w.Matchers, Active: w.Active, From: w.From, Until: w.Until}
	}
	return out, nil
}

func (a *apiAdapter) ListDeliveries(ctx context.Context, f api.DeliveryFilter) ([]api.Delivery, error) {
	nf := notify.Filter{Receiver: f.Receiver, Since: f.Since, AfterSeq: f.AfterSeq, Limit: f.Limit}
	for _, s := range f.States {
		nf.States = append(nf.States, notify.State(s))
	}
	ds, err := a.d.db.List(ctx, nf)
	if err != nil {
		return nil, err
	}
	out := make([]api.Delivery, len(ds))
	for i, d := range ds {
		ids := make([]string, len(d.Notification.Alerts))
		for j, al := range d.Notification.Alerts {
			ids[j] = al.ID
		}
		out[i] = api.Delivery{Seq: d.Seq, Receiver: d.Receiver, Provider: d.Provider, Key: d.Key, Kind: d.Notification.Kind,
			AlertIDs: ids, State: string(d.State), Attempts: d.Attempts, EnqueuedAt: d.EnqueuedAt, NextAttempt: d.NextAttempt,
			LastAttempt: d.LastAttempt, LastError: d.LastError, DoneAt: d.DoneAt}
	}
	return out, nil
}

// LookupToken checks a token by its hash, and records its use at most once a minute.
func (a *apiAdapter) LookupToken(ctx context.Context, hash api.TokenHash) (api.Identity, error) {
	t, err := a.d.db.LookupToken(ctx, store.TokenHash(hash))
	switch {
	case errors.Is(err, store.ErrRevoked):
		return api.Identity{}, api.ErrRevoked
	case errors.Is(err, store.ErrNotFound):
		return api.Identity{}, api.ErrNotFound
	case err != nil:
		return api.Identity{}, err
	}
	now := time.Now()
	a.touchMu.Lock()
	if a.touched == nil {
		a.touched = map[string]time.Time{}
	}
	stale := now.Sub(a.touched[t.ID]) > time.Minute
	if stale {
		a.touched[t.ID] = now
	}
	a.touchMu.Unlock()
	if stale {
		if err := a.d.db.TouchToken(ctx, t.ID, now); err != nil {
			a.d.logger.Warn("record token use", "token", t.Name, "err", err)
		}
	}
	return api.Identity{TokenID: t.ID, Name: t.Name, Role: api.Role(t.Role)}, nil
}

func tokenInfo(t store.Token) api.TokenInfo {
	return api.TokenInfo{ID: t.ID, Name: t.Name, Role: api.Role(t.Role), CreatedAt: t.CreatedAt, CreatedBy: t.CreatedBy, LastUsed: t.LastUsed, RevokedAt: t.RevokedAt}
}

func (a *apiAdapter) ListTokens(ctx context.Context) ([]api.TokenInfo, error) {
	ts, err := a.d.db.ListTokens(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.TokenInfo, len(ts))
	for i, t := range ts {
		out[i] = tokenInfo(t)
	}
	return out, nil
}

func (a *apiAdapter) CreateToken(ctx context.Context, name string, role api.Role, by string) (api.TokenInfo, string, error) {
	t, secret, err := store.NewToken(name, store.Role(role), by, time.Now())
	if err != nil {
		return api.TokenInfo{}, "", fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	if err := a.d.db.CreateToken(ctx, t); err != nil {
		return api.TokenInfo{}, "", err
	}
	return tokenInfo(t), secret, nil
}

func (a *apiAdapter) RevokeToken(ctx context.Context, id, _ string) error {
	err := a.d.db.RevokeToken(ctx, id, time.Now())
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("token %q: %w", id, api.ErrNotFound)
	}
	return err
}

// LatestAudits returns each scheduled audit's latest report, in configuration order.
func (a *apiAdapter) LatestAudits(context.Context) ([]api.AuditReport, error) {
	audits := a.d.gen.Load().audits
	out := make([]api.AuditReport, 0, len(audits))
	for _, r := range audits {
		ar := api.AuditReport{Name: r.cfg.Name, Policy: r.cfg.PolicyFile}
		if rep := r.latest(); rep != nil {
			ar = auditReport(r.cfg.Name, rep)
		}
		out = append(out, ar)
	}
	return out, nil
}

func auditReport(name string, rep *audit.Report) api.AuditReport {
	addr := func(a netip.Addr) string {
		if !a.IsValid() {
			return ""
		}
		return a.String()
	}
	ar := api.AuditReport{Name: name, Policy: rep.Policy, Time: rep.Time,
		Hosts: make([]api.AuditHost, len(rep.Hosts)), Findings: make([]api.AuditFinding, len(rep.Findings))}
	for i, h := range rep.Hosts {
		ah := api.AuditHost{Host: h.Host, Addr: addr(h.Addr), Inventory: h.Inventory, PortsScanned: h.Scanned,
			Open: make([]api.AuditOpenPort, len(h.Open)), Required: h.Required, Notes: h.Notes}
		for j, op := range h.Open {
			ao := api.AuditOpenPort{Port: op.Port, Verdict: op.Verdict, Rule: op.Rule}
			for _, l := range op.Listeners {
				al := api.AuditListener{Process: l.Process, PID: l.PID, User: l.User}
				if l.Addr.IsValid() {
					al.Bind = netip.AddrPortFrom(l.Addr, l.Port).String()
				}
				ao.Listeners = append(ao.Listeners, al)
			}
			ah.Open[j] = ao
		}
		ar.Hosts[i] = ah
	}
	for i, f := range rep.Findings {
		ar.Findings[i] = api.AuditFinding{Kind: string(f.Kind), Severity: f.Severity.String(), Host: f.Host, Addr: addr(f.Addr),
			Port: f.Port, Message: f.Message, Process: f.Process, User: f.User, Bind: f.Bind, Rule: f.Rule}
	}
	return ar
}
