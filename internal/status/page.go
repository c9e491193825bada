package status

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// State is a service's condition as the page shows it.
type State string

// The states, from best to worst.
const (
	Operational State = "operational"
	Degraded    State = "degraded"     // a P1 incident
	MajorOutage State = "major_outage" // a P0 incident
)

// Text returns the state in words: "Operational", "Degraded", "Major outage".
func (s State) Text() string {
	switch s {
	case MajorOutage:
		return "Major outage"
	case Degraded:
		return "Degraded"
	}
	return "Operational"
}

func (s State) rank() int {
	switch s {
	case MajorOutage:
		return 2
	case Degraded:
		return 1
	}
	return 0
}

func worse(a, b State) State {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

func stateOf(severity string) State {
	if severity == "P0" {
		return MajorOutage
	}
	return Degraded
}

// Report is what the page shows; /status.json serves it as it is.
type Report struct {
	Title string `json:"title"`
	// State is the worst state of any service.
	State     State     `json:"state"`
	UpdatedAt time.Time `json:"updated_at"`
	Services  []Service `json:"services"`
}

// Service is one service on the page.
type Service struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	// Incidents are the current incidents, oldest first.
	Incidents []Incident `json:"incidents"`
	// Past are the incidents resolved within the last Days days, newest first.
	Past []Incident `json:"past_incidents"`
	// History has one entry per day for the last Days days, today last.
	History []Day `json:"history"`
}

// Incident is one disruption of a service.
type Incident struct {
	State      State     `json:"state"`
	StartedAt  time.Time `json:"started_at"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
}

// Day is the worst state a service was in on one day.
type Day struct {
	// Date is the day in the page's zone, as 2006-01-02.
	Date  string `json:"date"`
	State State  `json:"state"`
}

// Report builds the page's content now.
func (p *Page) Report(ctx context.Context) Report {
	now := p.cfg.Now()
	cut := now.AddDate(0, 0, -Days)
	byService := map[string][]record{}
	for _, svc := range p.cfg.Source.Services(ctx) {
		if svc != "" {
			byService[svc] = nil
		}
	}
	live := p.incidents(ctx)
	p.mu.Lock()
	for svc := range byService {
		byService[svc] = slices.Clone(p.history[svc])
	}
	p.mu.Unlock()
	for _, in := range live {
		rs, listed := byService[in.service]
		if !listed && !in.rec.End.IsZero() {
			// A service no longer configured shows only while it is in trouble.
			continue
		}
		byService[in.service] = merge(rs, []record{in.rec}, time.Time{})
	}

	rep := Report{Title: p.cfg.Title, State: Operational, UpdatedAt: now.In(p.cfg.Location), Services: []Service{}}
	names := make([]string, 0, len(byService))
	for svc := range byService {
		names = append(names, svc)
	}
	slices.Sort(names)
	for _, svc := range names {
		s := Service{Name: svc, State: Operational, Incidents: []Incident{}, Past: []Incident{}}
		rs := slices.DeleteFunc(byService[svc], func(r record) bool { return !r.End.IsZero() && r.End.Before(cut) })
		for _, r := range rs {
			in := Incident{State: stateOf(r.Severity), StartedAt: r.Start.In(p.cfg.Location)}
			if r.End.IsZero() {
				s.Incidents = append(s.Incidents, in)
				s.State = worse(s.State, in.State)
				continue
			}
			in.ResolvedAt = r.End.In(p.cfg.Location)
			s.Past = append(s.Past, in)
		}
		slices.Reverse(s.Past)
		s.History = p.days(rs, now)
		rep.State = worse(rep.State, s.State)
		rep.Services = append(rep.Services, s)
	}
	return rep
}

// days returns the worst state of each of the last Days days, today last.
func (p *Page) days(rs []record, now time.Time) []Day {
	loc := p.cfg.Location
	today := now.In(loc)
	out := make([]Day, Days)
	for i := range out {
		from := time.Date(today.Year(), today.Month(), today.Day()-(Days-1-i), 0, 0, 0, 0, loc)
		to := time.Date(from.Year(), from.Month(), from.Day()+1, 0, 0, 0, 0, loc)
		d := Day{Date: from.Format("2006-01-02"), State: Operational}
		for _, r := range rs {
			end := r.End
			if end.IsZero() {
				end = now
			}
			if r.Start.Before(to) && !end.Before(from) {
				d.State = worse(d.State, stateOf(r.Severity))
			}
		}
		out[i] = d
	}
	return out
}

//go:embed page.html
var pageHTML string

// pageTemplate is parsed on first use, not at start-up: every portpatrol command links
// this package, few serve the page.
var pageTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("status").Funcs(template.FuncMap{
		"time": func(t time.Time) string { return t.Format("2006-01-02 15:04 MST") },
		"dur": func(a, b time.Time) string {
			d := b.Sub(a).Round(time.Minute)
			if d < time.Minute {
				return "under a minute"
			}
			return strings.TrimSuffix(d.String(), "0s")
		},
		"first": func(n int, in []Incident) []Incident { return in[:min(n, len(in))] },
	}).Parse(pageHTML))
})

// ServeHTTP serves the HTML page, or the Report as JSON when the path ends in ".json".
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rep := p.Report(r.Context())
	h := w.Header()
	h.Set("Cache-Control", "public, max-age=30")
	h.Set("X-Content-Type-Options", "nosniff")
	if strings.HasSuffix(r.URL.Path, ".json") {
		h.Set("Content-Type", "application/json")
		h.Set("Access-Control-Allow-Origin", "*")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return
	}
	var b bytes.Buffer
	if err := pageTemplate().Execute(&b, rep); err != nil {
		http.Error(w, "the status page could not be drawn", http.StatusInternalServerError)
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = w.Write(b.Bytes())
}
