package web_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// world is an in-memory portpatrol for the browser tests: targets, their history and
// alerts, behind the interfaces the API reads. It is safe for concurrent use.
type world struct {
	mu       sync.Mutex
	targets  []patrol.TargetState
	index    map[string]int
	alerts   map[string]*api.Incident
	silences []patrol.Silence
	windows  []api.Window
	audits   []api.AuditReport
	acks     []string // "id by"
	notes    []patrol.StatusNote
	learned  []api.LearnedListener

	forgotten []string // addresses forgotten through the API
	forgetAll int      // calls of "forget every gone listener"
}

func newWorld() *world {
	return &world{index: map[string]int{}, alerts: map[string]*api.Incident{}}
}

func (w *world) addTarget(t patrol.TargetState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.index[t.Target] = len(w.targets)
	w.targets = append(w.targets, t)
}

func (w *world) setStatus(id string, st patrol.Status, class patrol.Class, msg string) patrol.TargetState {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := &w.targets[w.index[id]]
	t.Status, t.Since = st, time.Now()
	t.Last = patrol.ResultSummary{Time: time.Now(), Class: class, Duration: 3 * time.Millisecond, Error: msg}
	return *t
}

func (w *world) addAlert(a patrol.Alert, chain string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.alerts[a.ID] = &api.Incident{Alert: a, Chain: chain}
}

func (w *world) ackedBy() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acks)
}

func (w *world) TargetStates(context.Context) ([]patrol.TargetState, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Clone(w.targets)
	slices.SortFunc(out, func(a, b patrol.TargetState) int { return strings.Compare(a.Target, b.Target) })
	return out, nil
}

func (w *world) TargetState(_ context.Context, id string) (patrol.TargetState, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i, ok := w.index[id]
	if !ok {
		return patrol.TargetState{}, fmt.Errorf("target %s: %w", id, api.ErrNotFound)
	}
	return w.targets[i], nil
}

// History makes a plausible series: a few milliseconds with daily swell and noise,
// failures and a latency spike during the first alert of the target.
func (w *world) History(_ context.Context, q patrol.HistoryQuery) (patrol.Series, error) {
	span := q.To.Sub(q.From)
	step := q.Step
	if step == 0 {
		step = max(10*time.Second, (span / 240).Round(time.Second))
	}
	var incidents [][2]time.Time
	w.mu.Lock()
	for _, a := range w.alerts {
		if a.Alert.Target == q.Target {
			end := a.Alert.ResolvedAt
			if end.IsZero() {
				end = q.To
			}
			incidents = append(incidents, [2]time.Time{a.Alert.StartsAt, end})
		}
	}
	w.mu.Unlock()
	r := rand.New(rand.NewPCG(uint64(len(q.Target)), 7))
	s := patrol.Series{Resolution: "raw", Step: step, Quantiles: "exact"}
	for t := q.From.Truncate(step); t.Before(q.To); t = t.Add(step) {
		hour := float64(t.Hour()) + float64(t.Minute())/60
		base := 2.0 + 0.8*math.Sin(hour/24*2*math.Pi) + r.Float64()*0.4
		p := patrol.Point{Time: t, Count: 6, Availability: 1}
		for _, in := range incidents {
			if !t.Before(in[0]) && t.Before(in[1]) {
				base *= 6
				p.Failures = 4
				p.Availability = 2.0 / 6
			}
		}
		ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
		p.P50, p.P95, p.P99 = ms(base), ms(base*1.9+r.Float64()), ms(base*2.6+2*r.Float64())
		p.Min, p.Avg, p.Max = ms(base*0.7), ms(base*1.1), p.P99
		s.Points = append(s.Points, p)
	}
	return s, nil
}

// LatencyBand is the band the history's p50 swells within, for dbID only: the other
// targets are still learning.
func (w *world) LatencyBand(_ context.Context, target string, times []time.Time) ([]api.BandPoint, bool) {
	if target != dbID {
		return nil, false
	}
	out := make([]api.BandPoint, len(times))
	for i, t := range times {
		hour := float64(t.Hour()) + float64(t.Minute())/60
		usual := (2.2 + 0.8*math.Sin(hour/24*2*math.Pi)) / 1e3
		out[i] = api.BandPoint{Time: t, Lower: usual - 0.0006, Expected: usual, Upper: usual + 0.0006}
	}
	return out, true
}

func (w *world) RecentResults(_ context.Context, target string, n int) ([]patrol.Result, error) {
	st, err := w.TargetState(context.Background(), target)
	if err != nil {
		return nil, err
	}
	var out []patrol.Result
	now := time.Now().Truncate(time.Second)
	for i := 0; i < min(n, 12); i++ {
		r := patrol.Result{Target: target, Start: now.Add(-time.Duration(i) * 30 * time.Second), RemoteAddr: "10.0.3.7:5432", Class: patrol.ClassOK}
		if st.Status == patrol.StatusDown && i < 3 {
			r.Class, r.Error = patrol.ClassRefused, "connect 10.0.3.7:5432: connection refused (nothing listens; is the service running?)"
			r.Duration = 400 * time.Microsecond
			r.AddPhase("dns", 150*time.Microsecond)
			r.AddPhase("connect", 250*time.Microsecond)
		} else {
			r.Duration = time.Duration(2400+i*37) * time.Microsecond
			r.AddPhase("dns", 300*time.Microsecond)
			r.AddPhase("connect", 900*time.Microsecond)
			r.AddPhase("tls", 700*time.Microsecond)
			r.AddPhase("first_byte", 500*time.Microsecond)
			r.SetDetail("server_version", "PostgreSQL 16.4")
		}
		out = append(out, r)
	}
	return out, nil
}

func (w *world) ListAlerts(_ context.Context, f api.AlertFilter) ([]patrol.Alert, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []patrol.Alert
	for _, in := range w.alerts {
		a := in.Alert
		switch {
		case len(f.States) == 0 && a.State == patrol.AlertResolved,
			len(f.States) > 0 && !slices.Contains(f.States, a.State),
			f.Target != "" && a.Target != f.Target:
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b patrol.Alert) int {
		if a.Severity != b.Severity {
			return int(a.Severity - b.Severity)
		}
		return a.StartsAt.Compare(b.StartsAt)
	})
	return out, nil
}

func (w *world) GetAlert(_ context.Context, id string) (api.Incident, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	in, ok := w.alerts[id]
	if !ok {
		return api.Incident{}, fmt.Errorf("alert %s: %w", id, api.ErrNotFound)
	}
	return *in, nil
}

func (w *world) AckAlert(_ context.Context, id, by, comment string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	in, ok := w.alerts[id]
	switch {
	case !ok:
		return fmt.Errorf("ack %s: %w", id, api.ErrNotFound)
	case in.Alert.State == patrol.AlertResolved:
		return fmt.Errorf("ack %s: already resolved: %w", id, api.ErrConflict)
	}
	in.Alert.State, in.Alert.AckedBy, in.Alert.AckedAt = patrol.AlertAcknowledged, by, time.Now()
	in.Notes = append(in.Notes, patrol.Note{At: time.Now(), By: by, Action: "acknowledged", Text: comment})
	w.acks = append(w.acks, id+" "+by)
	return nil
}

func (w *world) ResolveAlert(_ context.Context, id, by, comment string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	in, ok := w.alerts[id]
	if !ok {
		return fmt.Errorf("resolve %s: %w", id, api.ErrNotFound)
	}
	in.Alert.State, in.Alert.ResolvedBy, in.Alert.ResolvedAt = patrol.AlertResolved, by, time.Now()
	return nil
}

func (w *world) ListSilences(context.Context) ([]patrol.Silence, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.silences), nil
}

func (w *world) CreateSilence(_ context.Context, s patrol.Silence) (patrol.Silence, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s.ID, s.CreatedAt = fmt.Sprintf("s%d", len(w.silences)+1), time.Now()
	w.silences = append(w.silences, s)
	return s, nil
}

func (w *world) ExpireSilence(_ context.Context, id, by string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.silences {
		if w.silences[i].ID == id {
			w.silences[i].EndsAt, w.silences[i].ExpiredBy = time.Now(), by
			return nil
		}
	}
	return fmt.Errorf("silence %s: %w", id, api.ErrNotFound)
}

func (w *world) MaintenanceWindows(context.Context) ([]api.Window, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.windows), nil
}

func (w *world) ListDeliveries(_ context.Context, f api.DeliveryFilter) ([]api.Delivery, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []api.Delivery
	seq := int64(0)
	for _, in := range w.alerts {
		for _, rcv := range in.Alert.Told {
			seq++
			out = append(out, api.Delivery{Seq: seq, Receiver: rcv, Provider: strings.SplitN(rcv, "-", 2)[0], Key: in.Alert.ID + "/firing",
				Kind: patrol.NotifyFiring, AlertIDs: []string{in.Alert.ID}, State: "delivered", Attempts: 1,
				EnqueuedAt: in.Alert.FiredAt, DoneAt: in.Alert.FiredAt.Add(800 * time.Millisecond)})
		}
	}
	slices.SortFunc(out, func(a, b api.Delivery) int { return a.EnqueuedAt.Compare(b.EnqueuedAt) })
	return out, nil
}

func (w *world) LatestAudits(context.Context) ([]api.AuditReport, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.audits), nil
}

// The status page notes of the world, newest first.

func (w *world) ListStatusNotes(context.Context) ([]patrol.StatusNote, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Clone(w.notes)
	slices.SortFunc(out, func(a, b patrol.StatusNote) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

func (w *world) AddStatusNote(_ context.Context, n patrol.StatusNote) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.notes = append(w.notes, n)
	return nil
}

func (w *world) DeleteStatusNote(_ context.Context, id string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.IndexFunc(w.notes, func(n patrol.StatusNote) bool { return n.ID == id })
	if i < 0 {
		return fmt.Errorf("note %s: %w", id, api.ErrNotFound)
	}
	w.notes = slices.Delete(w.notes, i, i+1)
	return nil
}

// LearnedListeners, ForgetLearned and ForgetGoneLearned are the host watch's learned
// listeners behind /api/v1/learned; the forgotten ones are recorded.
func (w *world) LearnedListeners(context.Context) ([]api.LearnedListener, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.learned), nil
}

func (w *world) ForgetLearned(_ context.Context, addr string) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.IndexFunc(w.learned, func(l api.LearnedListener) bool { return l.Addr == addr })
	if i < 0 || w.learned[i].State == "learning" {
		return nil, fmt.Errorf("forget %s: not a learned listener: %w", addr, api.ErrNotFound)
	}
	w.learned = slices.Delete(w.learned, i, i+1)
	w.forgotten = append(w.forgotten, addr)
	return []string{"tcp://" + addr}, nil
}

func (w *world) ForgetGoneLearned(context.Context) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	w.learned = slices.DeleteFunc(w.learned, func(l api.LearnedListener) bool {
		if l.State != "gone" && l.State != "retired" {
			return false
		}
		w.forgotten = append(w.forgotten, l.Addr)
		out = append(out, "tcp://"+l.Addr)
		return true
	})
	w.forgetAll++
	return out, nil
}

// forgets returns the addresses forgotten so far and how many times all gone ones were.
func (w *world) forgets() ([]string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.forgotten), w.forgetAll
}
