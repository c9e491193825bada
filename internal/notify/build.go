package notify

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
)

// New builds the receivers of cfg and a Dispatcher over store. Every problem in cfg is
// reported, each as a *FieldError naming the field ("notify.receivers[1].url: …"),
// joined with errors.Join. clock nil means the system clock.
func New(cfg Config, store Store, clock Clock) (*Dispatcher, error) {
	if clock == nil {
		clock = systemClock{}
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	var errs []error
	if err := cfg.Outbox.withDefaults().validate("outbox"); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, fieldErrors("", receiver.URL("external_url", cfg.ExternalURL))...)
	env := receiver.Env{Dir: cfg.Dir, Client: client, ExternalURL: cfg.ExternalURL, Now: clock.Now}
	seen := map[string]int{}
	var receivers []Receiver
	for i, rc := range cfg.Receivers {
		path := fmt.Sprintf("receivers[%d]", i)
		var nameErr error
		if rc.Name == "" {
			nameErr = receiver.Errorf("name", "missing")
		} else if j, dup := seen[rc.Name]; dup {
			nameErr = receiver.Errorf("name", "%q is already used by receivers[%d]", rc.Name, j)
		} else {
			seen[rc.Name] = i
		}
		r, err := buildReceiver(rc, env)
		if err := errors.Join(nameErr, err); err != nil {
			errs = append(errs, fieldErrors(path, err)...)
			continue
		}
		receivers = append(receivers, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return NewDispatcher(cfg.Outbox, store, clock, receivers...)
}

// resendNotifier is a Notifier whose active alerts must be sent again until they resolve
// (Alertmanager forgets an alert that is not re-sent before its endsAt).
type resendNotifier interface {
	ResendInterval() time.Duration
}

// buildReceiver checks rc against its type and makes its Receiver. Its errors are
// *receiver.FieldErrors where a field is to blame.
func buildReceiver(rc ReceiverConfig, env receiver.Env) (Receiver, error) {
	p, ok := providers[rc.Type]
	switch {
	case !ok && rc.Type == "":
		return Receiver{}, receiver.Errorf("type", "missing; want one of %s", strings.Join(TypeNames(), ", "))
	case !ok:
		return Receiver{}, receiver.Errorf("type", "unknown type %q; want one of %s", rc.Type, strings.Join(TypeNames(), ", "))
	}
	s, ok := p.own(rc.Settings)
	if !ok {
		return Receiver{}, receiver.Errorf("type", "settings of type %T do not belong to type %s", rc.Settings, rc.Type)
	}
	var errs []error
	for _, k := range rc.unknown {
		errs = append(errs, unknownField(rc.Type, k, s))
	}
	errs = append(errs, s.Validate())
	tp, err := templates(rc)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return Receiver{}, err
	}
	env.Templates = tp
	n, err := p.build(s, env)
	if err != nil {
		return Receiver{}, err
	}
	r := Receiver{Name: rc.Name, Provider: rc.Type, Notifier: n}
	if rs, ok := n.(resendNotifier); ok {
		r.Resend = rs.ResendInterval()
	}
	return r, nil
}

// unknownField names a key of a receiver's mapping that its type's settings s do not
// declare: a field of another type ("not used by type slack"), or a typo, answered
// with the fields that are valid.
func unknownField(typ, key string, s Settings) error {
	for _, name := range TypeNames() {
		if name != typ && slices.Contains(yamlFields(reflect.TypeOf(providers[name].settings())), key) {
			return receiver.Errorf(key, "not used by type %s", typ)
		}
	}
	valid := append(slices.Clone(commonFields), yamlFields(reflect.TypeOf(s))...)
	slices.Sort(valid)
	return receiver.Errorf(key, "unknown field %q; valid fields for type %s: %s", key, typ, strings.Join(valid, ", "))
}

// templates checks the fields every receiver has (lang, timezone, templates) and
// makes its templates.
func templates(rc ReceiverConfig) (*render.Templates, error) {
	var errs []error
	tc := render.Config{Lang: rc.Lang}
	if rc.Lang != "" && !slices.Contains(render.Languages, rc.Lang) {
		errs = append(errs, receiver.Errorf("lang", "unknown language %q; want one of %s", rc.Lang, strings.Join(render.Languages, ", ")))
		tc.Lang = ""
	}
	if rc.Timezone != "" {
		loc, err := time.LoadLocation(rc.Timezone)
		if err != nil {
			errs = append(errs, receiver.Errorf("timezone", "%v", err))
		}
		tc.Location = loc
	}
	if rc.Templates != nil {
		tc.Title, tc.Body = rc.Templates.Title, rc.Templates.Body
	}
	tp, err := render.New(tc)
	if err != nil {
		field := "templates"
		var te *render.TemplateError
		if errors.As(err, &te) {
			field += "." + te.Template
		}
		errs = append(errs, receiver.Errorf(field, "%v", err))
	}
	return tp, errors.Join(errs...)
}

// fieldErrors turns errors about a receiver's fields into *FieldErrors below path; an
// error that names no field is put at path itself.
func fieldErrors(path string, err error) []error {
	var out []error
	for _, e := range unjoin(err) {
		var fe *receiver.FieldError
		if errors.As(e, &fe) {
			p := fe.Field
			if path != "" {
				p = path + "." + p
			}
			out = append(out, &FieldError{Path: p, Msg: fe.Msg})
		} else {
			out = append(out, &FieldError{Path: path, Msg: e.Error()})
		}
	}
	return out
}

// unjoin flattens an errors.Join tree; nil gives nothing.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
