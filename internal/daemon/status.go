package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/status"
	"github.com/portpatrol/portpatrol/internal/store"
)

// statusHistoryNamespace is where the status page keeps its history in the store.
const statusHistoryNamespace = "status.history"

// newStatusPage builds the public status page over the daemon's alert engine and
// store and loads its history; a history that does not load is logged, and the page
// starts from what did.
func newStatusPage(ctx context.Context, d *Daemon) (*status.Page, error) {
	cfg := d.cfg()
	p, err := status.New(status.Config{Source: statusSource{d}, Store: statusStore{d.db}, Notes: d.db,
		Title: cfg.Status.Title, LogoText: cfg.Status.LogoText, Location: cfg.StatusLocation})
	if err != nil {
		return nil, err
	}
	if err := p.Load(ctx); err != nil {
		d.logger.Warn("status page history", "err", err)
	}
	return p, nil
}

// statusSource feeds the status page from the alert engine and the configured targets.
type statusSource struct{ d *Daemon }

var _ status.Source = statusSource{}

func (s statusSource) Alerts(context.Context) []patrol.Alert {
	return s.d.engine().List(alert.Filter{States: patrol.AlertStates})
}

// Services lists the services marked public: status.services, then those of checks
// labelled status: public.
func (s statusSource) Services(context.Context) []status.Listed {
	var out []status.Listed
	for _, l := range s.d.cfg().StatusServiceNames() {
		out = append(out, status.Listed{Key: l.Service, Name: l.Name})
	}
	return out
}

// statusStore keeps the status page's history as learned values, one per service.
type statusStore struct{ db store.LearnedStore }

var _ status.Store = statusStore{}

func (s statusStore) PutHistory(ctx context.Context, service string, doc []byte) error {
	return s.db.PutLearned(ctx, store.Learned{Namespace: statusHistoryNamespace, Key: service, Value: json.RawMessage(doc)})
}

func (s statusStore) ListHistory(ctx context.Context) (map[string][]byte, error) {
	ls, err := s.db.ListLearned(ctx, statusHistoryNamespace)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(ls))
	for _, l := range ls {
		out[l.Key] = l.Value
	}
	return out, nil
}

// statusNotes gives the API the store's status page notes, with the API's errors.
type statusNotes struct{ db store.StatusNoteStore }

var _ api.StatusNotes = statusNotes{}

func (n statusNotes) ListStatusNotes(ctx context.Context) ([]patrol.StatusNote, error) {
	return n.db.ListStatusNotes(ctx)
}

func (n statusNotes) AddStatusNote(ctx context.Context, note patrol.StatusNote) error {
	if err := n.db.AddStatusNote(ctx, note); errors.Is(err, store.ErrExists) {
		return fmt.Errorf("%w: %v", api.ErrConflict, err)
	} else if err != nil {
		return err
	}
	return nil
}

func (n statusNotes) DeleteStatusNote(ctx context.Context, id string) error {
	if err := n.db.DeleteStatusNote(ctx, id); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: status note %q", api.ErrNotFound, id)
	} else if err != nil {
		return err
	}
	return nil
}

// listenStatus opens status.listen, when set, and returns the server that serves the
// status page alone on it: no API, dashboard or metrics. The page is public and read
// only, so no Host allowlist guards it; nil when the page stays on the main listener
// only.
func (d *Daemon) listenStatus(cfg *config.Config) (*http.Server, net.Listener, error) {
	if cfg.Status.Listen == "" {
		return nil, nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Status.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("status.listen: %w", err)
	}
	lim := d.httpLimits
	srv := &http.Server{
		Handler:           d.status.Standalone(),
		ReadHeaderTimeout: lim.readHeader,
		ReadTimeout:       lim.read,
		WriteTimeout:      lim.write,
		IdleTimeout:       lim.idle,
		MaxHeaderBytes:    lim.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(d.logger.Handler(), slog.LevelWarn),
	}
	return srv, ln, nil
}
