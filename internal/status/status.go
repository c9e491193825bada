// Package status serves portpatrol's public status page: for each service marked
// public, under its public name, whether it is operational, degraded (a P1) or in a
// major outage (a P0), its current incidents, the notes operators posted and a bar of
// the last 30 days ("no data" for the days before the page first observed it), as
// HTML (no JavaScript) and as JSON. It is meant to be
// served to anyone, so it shows service names, statuses and times only: never a
// target, an address, a port, an alert ID, a rule or an error message.
//
// The page reads alerts through Source and keeps the history of resolved incidents,
// beyond what the alert engine retains, through Store.
package status

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Days is how many days of history the page shows and keeps.
const Days = 30

// maxKept bounds the incidents kept per service, whatever happens within Days.
const maxKept = 500

// DefaultLabel is the alert label whose value names a service when Config.Label is
// empty.
const DefaultLabel = "service"

// Source gives the page the alerts it shows and the services it lists.
type Source interface {
	// Alerts returns the alerts the engine holds, active and resolved ones.
	Alerts(ctx context.Context) []patrol.Alert
	// Services returns the services to list, whatever their state, in order: only
	// those marked public (status.services in the configuration, or a check labelled
	// status: public). Alerts of any other service are never shown.
	Services(ctx context.Context) []Listed
}

// Listed is a service the page lists: Key is the value of the page's label on the
// alerts and checks ("payments-api"), Name what the public reads ("Payments").
type Listed struct {
	Key  string
	Name string
}

// Notes gives the page the notes operators posted.
type Notes interface {
	// ListStatusNotes returns every note, newest first.
	ListStatusNotes(ctx context.Context) ([]patrol.StatusNote, error)
}

// Store keeps each service's incident history and the time the page first listed it
// as one JSON document, so that history outlives the alert engine's retention and
// restarts. The daemon backs it with the learned-values store (namespace
// "status.history", key = service).
type Store interface {
	PutHistory(ctx context.Context, service string, doc []byte) error
	// ListHistory returns every service's document.
	ListHistory(ctx context.Context) (map[string][]byte, error)
}

// Config configures a Page. Source is required; the zero values of the other fields
// mean the defaults given.
type Config struct {
	Source Source
	// Store keeps history across restarts; nil keeps it in memory only.
	Store Store
	// Label is the alert label whose value names a service; empty means "service".
	// Alerts without it are not shown.
	Label string
	// Title heads the page; empty means "Service status".
	Title string
	// LogoText is shown as the page's logo; empty shows none.
	LogoText string
	// Notes are the operators' notes the page shows; nil shows none.
	Notes Notes
	// Location is the zone times and days are shown in; nil means UTC.
	Location *time.Location
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Page is the status page: an http.Handler for the HTML page and, on paths ending in
// ".json", its JSON. Build it with New. It is safe for concurrent use.
type Page struct {
	cfg Config

	start time.Time // when New ran: the first observation of a service never synced

	mu      sync.Mutex
	history map[string][]record  // by service, oldest first
	since   map[string]time.Time // by service: when the page first listed it
}

// document is what Store keeps per service. Older versions stored the incidents
// alone, as a JSON array; Load reads both.
type document struct {
	Since     time.Time `json:"since"`
	Incidents []record  `json:"incidents"`
}

// record is one incident as history keeps it. ID is an opaque hash of the alert's ID.
type record struct {
	ID       string    `json:"id"`
	Severity string    `json:"severity"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
}

// New returns a Page with no history; call Load to read the stored history.
func New(cfg Config) (*Page, error) {
	if cfg.Source == nil {
		return nil, errors.New("status page: no source")
	}
	if cfg.Label == "" {
		cfg.Label = DefaultLabel
	}
	if cfg.Title == "" {
		cfg.Title = "Service status"
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Page{cfg: cfg, start: cfg.Now(), history: map[string][]record{}, since: map[string]time.Time{}}, nil
}

// Load reads the stored history. A service whose document does not decode is
// skipped and reported; the others load.
func (p *Page) Load(ctx context.Context) error {
	if p.cfg.Store == nil {
		return nil
	}
	docs, err := p.cfg.Store.ListHistory(ctx)
	if err != nil {
		return fmt.Errorf("load status history: %w", err)
	}
	var errs []error
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, svc := range slices.Sorted(maps.Keys(docs)) {
		var doc document
		raw := bytes.TrimSpace(docs[svc])
		var err error
		if len(raw) > 0 && raw[0] == '[' {
			err = json.Unmarshal(raw, &doc.Incidents)
		} else {
			err = json.Unmarshal(raw, &doc)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("status history of %q: %w", svc, err))
			continue
		}
		p.history[svc] = merge(p.history[svc], doc.Incidents, time.Time{})
		if !doc.Since.IsZero() {
			p.since[svc] = doc.Since
		}
	}
	return errors.Join(errs...)
}

// Sync moves the resolved incidents of the source into the history, forgets those
// older than Days, and saves the services whose history changed. The daemon calls it
// every minute or so; the page shows recent resolutions before Sync has seen them.
func (p *Page) Sync(ctx context.Context, now time.Time) error {
	resolved := map[string][]record{}
	for _, in := range p.incidents(ctx) {
		if !in.rec.End.IsZero() {
			resolved[in.service] = append(resolved[in.service], in.rec)
		}
	}
	cut := now.AddDate(0, 0, -Days)
	listed := p.cfg.Source.Services(ctx)
	p.mu.Lock()
	changed := map[string][]byte{}
	for _, svc := range slices.Sorted(maps.Keys(p.history)) {
		if _, ok := resolved[svc]; !ok {
			resolved[svc] = nil
		}
	}
	// A service listed for the first time is observed from now on (or from its
	// oldest incident kept): the days before show "no data".
	fresh := map[string]bool{}
	for _, l := range listed {
		if _, ok := p.since[l.Key]; !ok && l.Key != "" {
			fresh[l.Key] = true
			if _, ok := resolved[l.Key]; !ok {
				resolved[l.Key] = nil
			}
		}
	}
	for svc, rs := range resolved {
		old := p.history[svc]
		next := merge(old, rs, cut)
		if slices.Equal(old, next) && !fresh[svc] {
			continue
		}
		if len(next) == 0 {
			delete(p.history, svc)
		} else {
			p.history[svc] = next
		}
		if fresh[svc] {
			p.since[svc] = p.firstSeen(svc, now)
		}
		doc, err := json.Marshal(document{Since: p.since[svc], Incidents: next})
		if err != nil {
			p.mu.Unlock()
			return fmt.Errorf("encode status history of %q: %w", svc, err)
		}
		changed[svc] = doc
	}
	p.mu.Unlock()
	if p.cfg.Store == nil {
		return nil
	}
	var errs []error
	for _, svc := range slices.Sorted(maps.Keys(changed)) {
		if err := p.cfg.Store.PutHistory(ctx, svc, changed[svc]); err != nil {
			errs = append(errs, fmt.Errorf("save status history of %q: %w", svc, err))
		}
	}
	return errors.Join(errs...)
}

// firstSeen is when the page began to observe svc: its stored first observation, else
// the earlier of when the page started and the oldest incident it keeps; at most now.
// The caller holds p.mu.
func (p *Page) firstSeen(svc string, now time.Time) time.Time {
	if t, ok := p.since[svc]; ok {
		return t
	}
	t := p.start
	if rs := p.history[svc]; len(rs) > 0 && rs[0].Start.Before(t) {
		t = rs[0].Start
	}
	if now.Before(t) {
		t = now
	}
	return t
}

// merge adds the records of add to old, by ID, drops those that ended before cut and
// keeps the newest maxKept, oldest first.
func merge(old, add []record, cut time.Time) []record {
	out := slices.Clone(old)
	for _, r := range add {
		if i := slices.IndexFunc(out, func(o record) bool { return o.ID == r.ID }); i >= 0 {
			out[i] = r
		} else {
			out = append(out, r)
		}
	}
	out = slices.DeleteFunc(out, func(r record) bool { return !r.End.IsZero() && r.End.Before(cut) })
	slices.SortFunc(out, func(a, b record) int { return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.ID, b.ID)) })
	if len(out) > maxKept {
		out = out[len(out)-maxKept:]
	}
	return out
}

// incident is an alert as the page sees it.
type incident struct {
	service string
	rec     record
}

// shown reports whether an alert is a public incident: fired, of severity P0 or P1,
// about availability or performance (security and configuration findings are not for
// the public), and not muted on purpose by a silence or a maintenance window (in the
// alert engine's wording of MutedBy), as with impact notices. Inhibited alerts show.
func shown(a *patrol.Alert) bool {
	switch {
	case a.FiredAt.IsZero(), a.Severity > patrol.P1,
		a.Class == patrol.AlertSecurity, a.Class == patrol.AlertConfig,
		strings.HasPrefix(a.MutedBy, "silence "), strings.HasPrefix(a.MutedBy, "maintenance "):
		return false
	}
	return true
}

// incidents returns the source's alerts that are public incidents.
func (p *Page) incidents(ctx context.Context) []incident {
	var out []incident
	for _, a := range p.cfg.Source.Alerts(ctx) {
		svc := a.Labels[p.cfg.Label]
		if svc == "" || !shown(&a) {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(a.ID))
		r := record{ID: fmt.Sprintf("%016x", h.Sum64()), Severity: a.Severity.String(), Start: a.StartsAt}
		if a.State == patrol.AlertResolved {
			r.End = a.ResolvedAt
		}
		out = append(out, incident{service: svc, rec: r})
	}
	return out
}
