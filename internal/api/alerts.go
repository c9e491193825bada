package api

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// openStates are the states of an alert that still needs attention.
var openStates = []patrol.AlertState{patrol.AlertPending, patrol.AlertFiring, patrol.AlertAcknowledged,
	patrol.AlertSilenced, patrol.AlertFlapping}

type alertList struct {
	Alerts []alertView `json:"alerts"`
	Count  int         `json:"count"`
}

// listAlerts answers GET /api/v1/alerts[?state=…&severity=…&target=…&limit=…]. state
// may repeat; "open" (the default) means every state but resolved and "all" means every
// state.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.Alerts == nil {
		unavailable(w, "alerts")
		return
	}
	q := r.URL.Query()
	var f AlertFilter
	for _, st := range q["state"] {
		switch st {
		case "open":
			f.States = append(f.States, openStates...)
		case "all":
			f.States = append(f.States, allStates...)
		default:
			if !slices.Contains(allStates, patrol.AlertState(st)) {
				writeBad(w, badField("state", "%q: want open, all, pending, firing, acknowledged, resolved, silenced or flapping", st))
				return
			}
			f.States = append(f.States, patrol.AlertState(st))
		}
	}
	for _, sv := range q["severity"] {
		sev, err := patrol.ParseSeverity(sv)
		if err != nil {
			writeBad(w, badField("severity", "%q: want P0, P1, P2 or P3", sv))
			return
		}
		f.Severities = append(f.Severities, sev)
	}
	f.Target = q.Get("target")
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeBad(w, badField("limit", "%q: want a positive integer", v))
			return
		}
		limit = n
	}
	as, err := s.cfg.Alerts.ListAlerts(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if limit > 0 && len(as) > limit {
		as = as[:limit]
	}
	writeJSON(w, http.StatusOK, alertList{Alerts: newAlertViews(as), Count: len(as)})
}

func (s *Server) incident(w http.ResponseWriter, r *http.Request, id string) (incidentView, bool) {
	inc, err := s.cfg.Alerts.GetAlert(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return incidentView{}, false
	}
	v := incidentView{alertView: newAlertView(inc.Alert), Chain: inc.Chain, Notes: inc.Notes, Hint: inc.Hint}
	if v.Notes == nil {
		v.Notes = []patrol.Note{}
	}
	return v, true
}

// getAlert answers GET /api/v1/alerts/{id}.
func (s *Server) getAlert(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.Alerts == nil {
		unavailable(w, "alerts")
		return
	}
	if v, ok := s.incident(w, r, r.PathValue("id")); ok {
		writeJSON(w, http.StatusOK, v)
	}
}

// actionRequest is the body of ack and resolve; it may be empty.
type actionRequest struct {
	Comment string `json:"comment"`
}

func (s *Server) ackAlert(w http.ResponseWriter, r *http.Request, who Identity) {
	s.alertAction(w, r, who, "acknowledge", func(id, comment string) error {
		return s.cfg.AlertActions.AckAlert(r.Context(), id, who.Name, comment)
	})
}

func (s *Server) resolveAlert(w http.ResponseWriter, r *http.Request, who Identity) {
	s.alertAction(w, r, who, "resolve", func(id, comment string) error {
		return s.cfg.AlertActions.ResolveAlert(r.Context(), id, who.Name, comment)
	})
}

// alertAction runs an ack or resolve, then answers with the incident as it is now and
// tells the event stream.
func (s *Server) alertAction(w http.ResponseWriter, r *http.Request, who Identity, what string, do func(id, comment string) error) {
	if s.cfg.AlertActions == nil || s.cfg.Alerts == nil {
		unavailable(w, "alert actions")
		return
	}
	var req actionRequest
	if bad := s.decodeBody(w, r, &req, true); bad != nil {
		writeBad(w, bad)
		return
	}
	if len(req.Comment) > 1000 {
		writeBad(w, badField("comment", "longer than 1000 characters"))
		return
	}
	id := r.PathValue("id")
	if err := do(id, req.Comment); err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.Info("alert "+what, "alert", id, "by", who.Name, "token", who.TokenID)
	v, ok := s.incident(w, r, id)
	if !ok {
		return
	}
	if s.cfg.Broker != nil {
		s.cfg.Broker.Publish(EventAlert, v.alertView)
	}
	writeJSON(w, http.StatusOK, v)
}

type silenceList struct {
	Silences []patrol.Silence `json:"silences"`
}

func (s *Server) listSilences(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.Silences == nil {
		unavailable(w, "silences")
		return
	}
	ss, err := s.cfg.Silences.ListSilences(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ss == nil {
		ss = []patrol.Silence{}
	}
	writeJSON(w, http.StatusOK, silenceList{Silences: ss})
}

// silenceRequest is the body of POST /api/v1/silences. Times are strings so that a
// bad one is reported with its field name.
type silenceRequest struct {
	Matchers []matcherRequest `json:"matchers"`
	Comment  string           `json:"comment"`
	StartsAt string           `json:"starts_at"`
	EndsAt   string           `json:"ends_at"`
	Duration string           `json:"duration"`
}

// matcherRequest is a matcher as a request gives it, checked field by field before it
// becomes a patrol.Matcher, so that a bad one is reported with its field name.
type matcherRequest struct {
	Name  string `json:"name"`
	Op    string `json:"op"`
	Value string `json:"value"`
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// maxSilenceInput bounds a silence's duration as the API reads it, so that no time
// arithmetic overflows; the alert engine applies the configured maximum
// (alerting.max_silence) and the API reports its refusal.
const maxSilenceInput = 100 * 365 * 24 * time.Hour

// validate checks the request and returns the silence it asks for.
func (req *silenceRequest) validate(now time.Time, author string) (patrol.Silence, *badRequest) {
	sl := patrol.Silence{Author: author, Comment: req.Comment}
	if len(req.Matchers) == 0 {
		return sl, badField("matchers", "at least one matcher is required, e.g. {\"name\":\"target\",\"op\":\"=\",\"value\":\"tcp://db:5432\"}")
	}
	for i, m := range req.Matchers {
		field := fmt.Sprintf("matchers[%d]", i)
		if !labelName.MatchString(m.Name) {
			return sl, badField(field+".name", "%q is not a label name", m.Name)
		}
		switch m.Op {
		case "=", "!=":
		case "=~", "!~":
			if _, err := regexp.Compile(m.Value); err != nil {
				return sl, badField(field+".value", "invalid regular expression: %v", err)
			}
		default:
			return sl, badField(field+".op", "%q: want =, !=, =~ or !~", m.Op)
		}
		pm, err := patrol.NewMatcher(m.Name, patrol.MatchOp(m.Op), m.Value)
		if err != nil {
			return sl, badField(field, "%v", err)
		}
		sl.Matchers = append(sl.Matchers, pm)
	}
	if sl.Matchers.MatchEverything() {
		// As in Alertmanager; the alert engine refuses it too.
		return sl, badField("matchers", "%s all match the empty string, so the silence would mute nearly every alert; "+
			"add one that does not, e.g. target=tcp://db:5432", sl.Matchers)
	}
	if req.Comment == "" {
		return sl, badField("comment", "required: say why the alerts are silenced")
	}
	if len(req.Comment) > 1000 {
		return sl, badField("comment", "longer than 1000 characters")
	}
	sl.StartsAt = now
	if req.StartsAt != "" {
		t, bad := parseTime("starts_at", req.StartsAt)
		if bad != nil {
			return sl, bad
		}
		sl.StartsAt = t
	}
	switch {
	case req.EndsAt != "" && req.Duration != "":
		return sl, badField("duration", "give ends_at or duration, not both")
	case req.EndsAt != "":
		t, bad := parseTime("ends_at", req.EndsAt)
		if bad != nil {
			return sl, bad
		}
		sl.EndsAt = t
	case req.Duration != "":
		d, bad := parseDuration("duration", req.Duration, time.Second, maxSilenceInput)
		if bad != nil {
			return sl, bad
		}
		sl.EndsAt = sl.StartsAt.Add(d)
	default:
		return sl, badField("ends_at", "required: give ends_at or duration")
	}
	switch {
	case !sl.EndsAt.After(sl.StartsAt):
		return sl, badField("ends_at", "%s is not after starts_at %s", sl.EndsAt.Format(time.RFC3339), sl.StartsAt.Format(time.RFC3339))
	case !sl.EndsAt.After(now):
		return sl, badField("ends_at", "%s is in the past", sl.EndsAt.Format(time.RFC3339))
	}
	return sl, nil
}

func (s *Server) createSilence(w http.ResponseWriter, r *http.Request, who Identity) {
	if s.cfg.Silences == nil {
		unavailable(w, "silences")
		return
	}
	var req silenceRequest
	if bad := s.decodeBody(w, r, &req, false); bad != nil {
		writeBad(w, bad)
		return
	}
	sl, bad := req.validate(s.cfg.Now(), who.Name)
	if bad != nil {
		writeBad(w, bad)
		return
	}
	out, err := s.cfg.Silences.CreateSilence(r.Context(), sl)
	var se *patrol.SilenceError
	if errors.As(err, &se) {
		// The engine names the silence's field; a request that gave a duration
		// rather than an end is told about its duration.
		field := se.Field
		if field == "ends_at" && req.Duration != "" {
			field = "duration"
		}
		writeBad(w, badField(field, "%s", se.Reason))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.Info("silence created", "silence", out.ID, "by", who.Name, "token", who.TokenID)
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) expireSilence(w http.ResponseWriter, r *http.Request, who Identity) {
	if s.cfg.Silences == nil {
		unavailable(w, "silences")
		return
	}
	id := r.PathValue("id")
	if err := s.cfg.Silences.ExpireSilence(r.Context(), id, who.Name); err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.Info("silence expired", "silence", id, "by", who.Name, "token", who.TokenID)
	writeJSON(w, http.StatusOK, map[string]string{"id": id, "expired_by": who.Name})
}
