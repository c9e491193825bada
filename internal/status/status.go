// Package status serves portpatrol's public status page: for each service, whether it
// is operational, degraded (a P1) or in a major outage (a P0), its current incidents
// and a bar of the last 30 days, as HTML (no JavaScript) and as JSON. It is meant to be
// served to anyone, so it shows service names, statuses and times only: never a
// target, an address, a port, an alert ID, a rule or an error message.
//
// The page reads alerts through Source and keeps the history of resolved incidents,
// beyond what the alert engine retains, through Store.
package status

import (
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

// Source gives the page the alerts it shows.
type Source interface {
	// Alerts returns the alerts the engine holds, active and resolved ones.
	Alerts(ctx context.Context) []patrol.Alert
	// Services returns the names of the services to list whatever their state: the
	// values of the page's label over the configured targets.
	Services(ctx context.Context) []string
}

// Store keeps each service's incident history as one JSON document, so that history
// outlives the alert engine's retention and restarts. The daemon backs it with the
// learned-values store (namespace "status.history", key = service).
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
	// Location is the zone times and days are shown in; nil means UTC.
	Location *time.Location
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Page is the status page: an http.Handler for the HTML page and, on paths ending in
// ".json", its JSON. Build it with New. It is safe for concurrent use.
type Page struct {
	cfg Config

	mu      sync.Mutex
	history map[string][]record // by service, oldest first
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
	return &Page{cfg: cfg, history: map[string][]record{}}, nil
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
		var rs []record
		if err := json.Unmarshal(docs[svc], &rs); err != nil {
			errs = append(errs, fmt.Errorf("status history of %q: %w", svc, err))
			continue
		}
		p.history[svc] = merge(p.history[svc], rs, time.Time{})
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
	p.mu.Lock()
	changed := map[string][]byte{}
	for _, svc := range slices.Sorted(maps.Keys(p.history)) {
		if _, ok := resolved[svc]; !ok {
			resolved[svc] = nil
		}
	}
	for svc, rs := range resolved {
		old := p.history[svc]
		next := merge(old, rs, cut)
		if slices.Equal(old, next) {
			continue
		}
		if len(next) == 0 {
			delete(p.history, svc)
		} else {
			p.history[svc] = next
		}
		doc, err := json.Marshal(next)
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
