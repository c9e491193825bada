package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// maxHistorySpan bounds one history query.
const maxHistorySpan = 400 * 24 * time.Hour

// minStep is the finest step a history query may ask for: the store keeps raw results
// at probe intervals, which are seconds, and a smaller step only makes empty points.
const minStep = time.Second

// maxPoints bounds the points of one history answer.
const maxPoints = 10000

// openAlerts returns, per target, a summary of its most urgent open alert. Without
// Alerts it returns nil and targets carry no alert.
func (s *Server) openAlerts(ctx context.Context, target string) (map[string]*alertSummary, error) {
	if s.cfg.Alerts == nil {
		return nil, nil
	}
	as, err := s.cfg.Alerts.ListAlerts(ctx, AlertFilter{Target: target})
	if err != nil {
		return nil, err
	}
	out := make(map[string]*alertSummary, len(as))
	for _, a := range as {
		sum := out[a.Target]
		if sum == nil {
			sum = &alertSummary{ID: a.ID, Severity: a.Severity.String(), State: a.State}
			out[a.Target] = sum
		} else if a.Severity.String() < sum.Severity {
			sum.ID, sum.Severity, sum.State = a.ID, a.Severity.String(), a.State
		}
		sum.Count++
	}
	return out, nil
}

type targetList struct {
	Targets     []targetView `json:"targets"`
	Count       int          `json:"count"`
	GeneratedAt time.Time    `json:"generated_at"`
}

// listTargets answers GET /api/v1/targets[?status=down&q=text&label=k=v].
func (s *Server) listTargets(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.Targets == nil {
		unavailable(w, "target state")
		return
	}
	q := r.URL.Query()
	statuses := q["status"]
	for _, st := range statuses {
		if st != string(patrol.StatusUp) && st != string(patrol.StatusDown) && st != string(patrol.StatusUnknown) {
			writeBad(w, badField("status", "%q: want up, down or unknown", st))
			return
		}
	}
	labels := map[string]string{}
	for _, kv := range q["label"] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			writeBad(w, badField("label", "%q: want name=value", kv))
			return
		}
		labels[k] = v
	}
	search := strings.ToLower(q.Get("q"))

	states, err := s.cfg.Targets.TargetStates(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	alerts, err := s.openAlerts(r.Context(), "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := targetList{Targets: make([]targetView, 0, len(states)), GeneratedAt: s.cfg.Now().UTC()}
	for _, t := range states {
		if !keepTarget(t, statuses, labels, search) {
			continue
		}
		out.Targets = append(out.Targets, newTargetView(t, alerts[t.Target]))
	}
	out.Count = len(out.Targets)
	writeJSON(w, http.StatusOK, out)
}

func keepTarget(t patrol.TargetState, statuses []string, labels map[string]string, search string) bool {
	if len(statuses) > 0 {
		st := string(t.Status)
		if st == "" {
			st = string(patrol.StatusUnknown)
		}
		found := false
		for _, s := range statuses {
			found = found || s == st
		}
		if !found {
			return false
		}
	}
	for k, v := range labels {
		if t.Labels[k] != v {
			return false
		}
	}
	if search == "" {
		return true
	}
	if strings.Contains(strings.ToLower(t.Target), search) || strings.Contains(strings.ToLower(t.Name), search) {
		return true
	}
	for _, v := range t.Labels {
		if strings.Contains(strings.ToLower(v), search) {
			return true
		}
	}
	return false
}

type targetDetail struct {
	Target targetView      `json:"target"`
	Recent []patrol.Result `json:"recent"`
	Alerts []alertView     `json:"alerts"`
}

// getTarget answers GET /api/v1/targets/{id}, where id is the target ID escaped as
// one path segment (encodeURIComponent).
func (s *Server) getTarget(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.Targets == nil {
		unavailable(w, "target state")
		return
	}
	id := r.PathValue("id")
	t, err := s.cfg.Targets.TargetState(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := targetDetail{Recent: []patrol.Result{}, Alerts: []alertView{}}
	if s.cfg.Alerts != nil {
		as, err := s.cfg.Alerts.ListAlerts(r.Context(), AlertFilter{Target: id})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out.Alerts = newAlertViews(as)
	}
	var sum *alertSummary
	for _, a := range out.Alerts {
		if sum == nil || a.Severity < sum.Severity {
			sum = &alertSummary{ID: a.ID, Severity: a.Severity, State: a.State}
		}
	}
	if sum != nil {
		sum.Count = len(out.Alerts)
	}
	out.Target = newTargetView(t, sum)
	if s.cfg.History != nil {
		rs, err := s.cfg.History.RecentResults(r.Context(), id, s.cfg.RecentResults)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if rs != nil {
			out.Recent = rs
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// allStates selects every alert, resolved ones included.
var allStates = []patrol.AlertState{patrol.AlertPending, patrol.AlertFiring, patrol.AlertAcknowledged,
	patrol.AlertResolved, patrol.AlertSilenced, patrol.AlertFlapping}

// history answers GET /api/v1/targets/history?id=&from=&to=&step=.
func (s *Server) history(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.History == nil {
		unavailable(w, "history")
		return
	}
	q := r.URL.Query()
	hq := patrol.HistoryQuery{Target: q.Get("id")}
	if hq.Target == "" {
		writeBad(w, badField("id", "required: the target ID"))
		return
	}
	now := s.cfg.Now()
	hq.To = now
	if v := q.Get("to"); v != "" {
		t, bad := parseTime("to", v)
		if bad != nil {
			writeBad(w, bad)
			return
		}
		hq.To = t
	}
	hq.From = hq.To.Add(-time.Hour)
	if v := q.Get("from"); v != "" {
		t, bad := parseTime("from", v)
		if bad != nil {
			writeBad(w, bad)
			return
		}
		hq.From = t
	}
	if !hq.To.After(hq.From) {
		writeBad(w, badField("from", "%s is not before to (%s)", hq.From.Format(time.RFC3339), hq.To.Format(time.RFC3339)))
		return
	}
	if hq.To.Sub(hq.From) > maxHistorySpan {
		writeBad(w, badField("from", "span %s is longer than the limit of %s", hq.To.Sub(hq.From), maxHistorySpan))
		return
	}
	if v := q.Get("step"); v != "" {
		d, bad := parseDuration("step", v, minStep, maxHistorySpan)
		if bad != nil {
			writeBad(w, bad)
			return
		}
		if hq.To.Sub(hq.From)/d > maxPoints {
			writeBad(w, badField("step", "%s makes more than %d points over %s", d, maxPoints, hq.To.Sub(hq.From)))
			return
		}
		hq.Step = d
	}
	if s.cfg.Targets != nil {
		if _, err := s.cfg.Targets.TargetState(r.Context(), hq.Target); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	series, err := s.cfg.History.History(r.Context(), hq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := historyView{
		Target: hq.Target, From: hq.From.UTC(), To: hq.To.UTC(), Resolution: string(series.Resolution),
		StepSeconds: series.Step.Seconds(), Quantiles: string(series.Quantiles),
		Points: make([]pointView, len(series.Points)), Incidents: []markerView{},
	}
	for i, p := range series.Points {
		out.Points[i] = pointView{Time: p.Time.UTC(), Count: p.Count, Failures: p.Failures, Availability: p.Availability,
			Min: p.Min.Seconds(), Avg: p.Avg.Seconds(), Max: p.Max.Seconds(),
			P50: p.P50.Seconds(), P95: p.P95.Seconds(), P99: p.P99.Seconds()}
	}
	if s.cfg.Bands != nil && len(series.Points) > 0 {
		times := make([]time.Time, len(series.Points))
		for i, p := range series.Points {
			times[i] = p.Time.Add(series.Step / 2)
		}
		if band, ok := s.cfg.Bands.LatencyBand(r.Context(), hq.Target, times); ok {
			out.Band = band
		}
	}
	if s.cfg.Alerts != nil {
		as, err := s.cfg.Alerts.ListAlerts(r.Context(), AlertFilter{Target: hq.Target, States: allStates})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, a := range as {
			end := a.ResolvedAt
			if a.StartsAt.After(hq.To) || (!end.IsZero() && end.Before(hq.From)) {
				continue
			}
			out.Incidents = append(out.Incidents, markerView{ID: a.ID, Severity: a.Severity.String(), Class: a.Class,
				State: a.State, Summary: a.Summary, StartsAt: a.StartsAt, ResolvedAt: a.ResolvedAt})
		}
	}
	writeJSON(w, http.StatusOK, out)
}
