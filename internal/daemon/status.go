package daemon

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/portpatrol/portpatrol/internal/alert"
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
	p, err := status.New(status.Config{Source: statusSource{d}, Store: statusStore{d.db}})
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

func (s statusSource) Services(context.Context) []string {
	var out []string
	for _, c := range s.d.cfg().Checks {
		if v := c.Target.Labels[status.DefaultLabel]; v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
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
