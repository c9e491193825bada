package status

import (
	"bytes"
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// State is a service's condition as the page shows it.
type State string

// The states, from best to worst; NoData is a day before the page observed the
// service, which is neither good nor bad.
const (
	NoData      State = "no_data"
	Operational State = "operational"
	Degraded    State = "degraded"     // a P1 incident
	MajorOutage State = "major_outage" // a P0 incident
)

// Text returns the state in words: "Operational", "Degraded", "Major outage", "No data".
func (s State) Text() string {
	switch s {
	case MajorOutage:
		return "Major outage"
	case Degraded:
		return "Degraded"
	case NoData:
		return "No data"
	}
	return "Operational"
}

func (s State) rank() int {
	switch s {
	case MajorOutage:
		return 2
	case Degraded:
		return 1
	case NoData:
		return -1
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
	Title    string `json:"title"`
	LogoText string `json:"logo_text,omitempty"`
	// State is the worst state of any service.
	State     State     `json:"state"`
	UpdatedAt time.Time `json:"updated_at"`
	// Zone names the time zone of every time and day on the page ("Europe/Berlin").
	Zone string `json:"zone"`
	// Notes are the operators' notes about the page as a whole, newest first.
	Notes    []Note    `json:"notes"`
	Services []Service `json:"services"`
}

// Service is one service on the page, under its public name.
type Service struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	// Since is when the page began to observe the service.
	Since time.Time `json:"observed_since"`
	// Incidents are the current incidents, one per state, worst first, each since
	// the earliest incident of that state.
	Incidents []Incident `json:"incidents"`
	// Notes are the operators' notes about this service, newest first.
	Notes []Note `json:"notes"`
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

// Note is an operator's note as the public sees it: no author, no ID.
type Note struct {
	// State is "investigating", "identified", "monitoring" or "resolved".
	State    string    `json:"state"`
	Text     string    `json:"text"`
	PostedAt time.Time `json:"posted_at"`
}

// Day is the worst state a service was in on one day.
type Day struct {
	// Date is the day in the page's zone, as 2006-01-02.
	Date  string `json:"date"`
	State State  `json:"state"`
}

// maxNotes bounds the notes shown, page-wide and per service.
const maxNotes = 20

// Report builds the page's content now.
func (p *Page) Report(ctx context.Context) Report {
	now := p.cfg.Now()
	loc := p.cfg.Location
	cut := now.AddDate(0, 0, -Days)
	listed := p.cfg.Source.Services(ctx)
	byService := map[string][]record{}
	for _, l := range listed {
		if l.Key != "" {
			byService[l.Key] = nil
		}
	}
	live := p.incidents(ctx)
	since := map[string]time.Time{}
	p.mu.Lock()
	for svc := range byService {
		byService[svc] = slices.Clone(p.history[svc])
		since[svc] = p.firstSeen(svc, now)
	}
	p.mu.Unlock()
	for _, in := range live {
		rs, ok := byService[in.service]
		if !ok {
			// Only services marked public are shown, whatever their state.
			continue
		}
		byService[in.service] = merge(rs, []record{in.rec}, time.Time{})
		if in.rec.Start.Before(since[in.service]) {
			since[in.service] = in.rec.Start
		}
	}

	rep := Report{Title: p.cfg.Title, LogoText: p.cfg.LogoText, State: Operational, UpdatedAt: now.In(loc), Zone: loc.String(),
		Notes: []Note{}, Services: []Service{}}
	notes := p.notes(ctx)
	index := map[string]int{}
	done := map[string]bool{}
	for _, l := range listed {
		if l.Key == "" || done[l.Key] {
			continue
		}
		done[l.Key] = true
		name := cmp.Or(l.Name, l.Key)
		s := Service{Name: name, State: Operational, Since: since[l.Key].In(loc), Incidents: []Incident{}, Notes: []Note{}, Past: []Incident{}}
		rs := slices.DeleteFunc(byService[l.Key], func(r record) bool { return !r.End.IsZero() && r.End.Before(cut) })
		for _, r := range rs {
			in := Incident{State: stateOf(r.Severity), StartedAt: r.Start.In(loc)}
			if r.End.IsZero() {
				s.Incidents = append(s.Incidents, in)
				s.State = worse(s.State, in.State)
				continue
			}
			in.ResolvedAt = r.End.In(loc)
			s.Past = append(s.Past, in)
		}
		slices.Reverse(s.Past)
		s.Incidents = ongoing(s.Incidents)
		s.History = p.days(rs, since[l.Key], now)
		rep.State = worse(rep.State, s.State)
		index[l.Key], index[name] = len(rep.Services), len(rep.Services)
		rep.Services = append(rep.Services, s)
	}
	// A note names a service by its key or its public name; a note about a service
	// not listed is shown for the page as a whole, without the name.
	for _, n := range notes {
		pn := Note{State: n.State, Text: n.Text, PostedAt: n.CreatedAt.In(loc)}
		if i, ok := index[n.Service]; ok && n.Service != "" {
			if len(rep.Services[i].Notes) < maxNotes {
				rep.Services[i].Notes = append(rep.Services[i].Notes, pn)
			}
		} else if len(rep.Notes) < maxNotes {
			rep.Notes = append(rep.Notes, pn)
		}
	}
	return rep
}

// ongoing folds the current incidents of one service into one per state, worst first,
// each since the earliest of its kind: five targets of a service down are one outage
// to its customers.
func ongoing(in []Incident) []Incident {
	var out []Incident
	for _, st := range []State{MajorOutage, Degraded} {
		var first time.Time
		for _, i := range in {
			if i.State == st && (first.IsZero() || i.StartedAt.Before(first)) {
				first = i.StartedAt
			}
		}
		if !first.IsZero() {
			out = append(out, Incident{State: st, StartedAt: first})
		}
	}
	if out == nil {
		out = []Incident{}
	}
	return out
}

// notes returns the operators' notes, newest first; a store that fails shows none.
func (p *Page) notes(ctx context.Context) []patrol.StatusNote {
	if p.cfg.Notes == nil {
		return nil
	}
	ns, err := p.cfg.Notes.ListStatusNotes(ctx)
	if err != nil {
		return nil
	}
	slices.SortStableFunc(ns, func(a, b patrol.StatusNote) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return ns
}

// days returns the worst state of each of the last Days days, today last; the days
// that ended before since have no data.
func (p *Page) days(rs []record, since, now time.Time) []Day {
	loc := p.cfg.Location
	today := now.In(loc)
	out := make([]Day, Days)
	for i := range out {
		from := time.Date(today.Year(), today.Month(), today.Day()-(Days-1-i), 0, 0, 0, 0, loc)
		to := time.Date(from.Year(), from.Month(), from.Day()+1, 0, 0, 0, 0, loc)
		d := Day{Date: from.Format("2006-01-02"), State: Operational}
		if !to.After(since) {
			d.State = NoData
		}
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
		"noteState": func(s string) string {
			if s == "" {
				return ""
			}
			return strings.ToUpper(s[:1]) + s[1:]
		},
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

// Standalone returns a handler that serves the page alone, for a listener of its own:
// the page at / and /status, its JSON at /status.json, and 404 for anything else, so
// that no API, dashboard or metrics are reachable there.
func (p *Page) Standalone() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", p)
	mux.Handle("GET /status", p)
	mux.Handle("GET /status.json", p)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		http.Error(w, "not found: this address serves the status page only, at /", http.StatusNotFound)
	})
	return mux
}

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
