package notify

import (
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portpatrol/portpatrol/internal/notify/alertmanager"
	"github.com/portpatrol/portpatrol/internal/notify/dingtalk"
	"github.com/portpatrol/portpatrol/internal/notify/email"
	"github.com/portpatrol/portpatrol/internal/notify/feishu"
	"github.com/portpatrol/portpatrol/internal/notify/opsgenie"
	"github.com/portpatrol/portpatrol/internal/notify/pagerduty"
	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/slack"
	"github.com/portpatrol/portpatrol/internal/notify/telegram"
	"github.com/portpatrol/portpatrol/internal/notify/webhook"
	"github.com/portpatrol/portpatrol/internal/notify/wecom"

	"github.com/portpatrol/portpatrol/internal/notify/discord"
	"github.com/portpatrol/portpatrol/internal/notify/googlechat"
	"github.com/portpatrol/portpatrol/internal/notify/mattermost"
	"github.com/portpatrol/portpatrol/internal/notify/ntfy"
	"github.com/portpatrol/portpatrol/internal/notify/pushover"
	"github.com/portpatrol/portpatrol/internal/notify/teams"
	"github.com/portpatrol/portpatrol/internal/notify/zulip"
)

// providers are the receiver types, by the name a receiver's type field gives. A
// provider is its own package (its ReceiverConfig, Validate and Build) and a line here.
var providers = map[string]provider{
	alertmanager.Type: provide(alertmanager.ReceiverConfig.Build),
	dingtalk.Type:     provide(dingtalk.ReceiverConfig.Build),
	email.Type:        provide(email.ReceiverConfig.Build),
	feishu.Type:       provide(feishu.ReceiverConfig.Build),
	opsgenie.Type:     provide(opsgenie.ReceiverConfig.Build),
	pagerduty.Type:    provide(pagerduty.ReceiverConfig.Build),
	slack.Type:        provide(slack.ReceiverConfig.Build),
	telegram.Type:     provide(telegram.ReceiverConfig.Build),
	webhook.Type:      provide(webhook.ReceiverConfig.Build),
	wecom.Type:        provide(wecom.ReceiverConfig.Build),
	discord.Type:      provide(discord.ReceiverConfig.Build),
	googlechat.Type:   provide(googlechat.ReceiverConfig.Build),
	mattermost.Type:   provide(mattermost.ReceiverConfig.Build),
	ntfy.Type:         provide(ntfy.ReceiverConfig.Build),
	pushover.Type:     provide(pushover.ReceiverConfig.Build),
	teams.Type:        provide(teams.ReceiverConfig.Build),
	zulip.Type:        provide(zulip.ReceiverConfig.Build),
}

// TypeNames returns the receiver types, sorted.
func TypeNames() []string {
	names := make([]string, 0, len(providers))
	for t := range providers {
		names = append(names, t)
	}
	slices.Sort(names)
	return names
}

// Settings are a receiver type's own fields, a provider package's ReceiverConfig such
// as *slack.ReceiverConfig (or the value itself).
type Settings interface {
	// Validate returns every problem of the fields, each a *receiver.FieldError,
	// joined.
	Validate() error
}

// provider is one receiver type.
type provider struct {
	// settings returns new zero settings of the type, a pointer to decode into.
	settings func() Settings
	// own returns s as a pointer to the type's settings, false when s is of another
	// type; nil s means the zero settings.
	own func(s Settings) (Settings, bool)
	// build makes the Notifier of settings that own accepted.
	build func(s Settings, env receiver.Env) (Notifier, error)
}

// provide makes the provider whose settings are S (P is *S), built by build.
func provide[S any, P interface {
	*S
	Settings
}, N Notifier](build func(S, receiver.Env) (N, error)) provider {
	return provider{
		settings: func() Settings { return P(new(S)) },
		own: func(s Settings) (Settings, bool) {
			switch v := s.(type) {
			case nil:
				return P(new(S)), true
			case P:
				if v == nil {
					return P(new(S)), true
				}
				return v, true
			case S:
				return P(&v), true
			}
			return nil, false
		},
		build: func(s Settings, env receiver.Env) (Notifier, error) {
			n, err := build(*s.(P), env)
			if err != nil {
				return nil, err // not a nil *N inside a non-nil Notifier
			}
			return n, nil
		},
	}
}

// ReceiverConfig is one receiver: a named destination of one type. The fields every
// receiver has are here; those of its type are in Settings, which in YAML sit beside
// them in the same mapping. A field its type does not declare is an error, to catch
// typos.
type ReceiverConfig struct {
	Name string `yaml:"name"`
	// Type is one of TypeNames.
	Type string `yaml:"type"`
	// Lang is the language of rendered text, "en" or "zh"; empty means the
	// notification's language, or English.
	Lang string `yaml:"lang"`
	// Timezone is the IANA zone times are shown in; empty means UTC.
	Timezone  string          `yaml:"timezone"`
	Templates *TemplateConfig `yaml:"templates"`
	// Settings are the type's own fields: a *slack.ReceiverConfig for type slack, and
	// so on. nil means the type's zero settings (which usually lack a required field).
	Settings Settings `yaml:"-"`

	// unknown are the keys of the YAML mapping that neither the common fields nor the
	// type's settings declare; New reports them.
	unknown []string
}

// TemplateConfig overrides a receiver's templates (text/template; see package render
// for the data and functions). Empty means the default.
type TemplateConfig struct {
	Title string `yaml:"title"`
	Body  string `yaml:"body"`
}

// commonFields are the YAML keys every receiver has.
var commonFields = yamlFields(reflect.TypeFor[ReceiverConfig]())

// UnmarshalYAML decodes the common fields, then the others into the settings of the
// receiver's type. A key neither declares is kept for New to report; with an unknown
// type nothing more is decoded (New reports the type).
func (r *ReceiverConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain ReceiverConfig // without this method
	if err := n.Decode((*plain)(r)); err != nil {
		return err
	}
	p, ok := providers[r.Type]
	if !ok || n.Kind != yaml.MappingNode {
		return nil
	}
	s := p.settings()
	own := yamlFields(reflect.TypeOf(s))
	rest := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		switch {
		case slices.Contains(commonFields, k):
		case slices.Contains(own, k):
			rest.Content = append(rest.Content, n.Content[i], n.Content[i+1])
		default:
			r.unknown = append(r.unknown, k)
		}
	}
	if err := rest.Decode(s); err != nil {
		return err
	}
	r.Settings = s
	return nil
}

// YAMLVariant returns new settings of the type that a receiver's YAML mapping names,
// nil when it names none that is known. It lets a checker that walks YAML against Go
// types (the config loader's) check a receiver's fields against its type's settings.
func (ReceiverConfig) YAMLVariant(n *yaml.Node) any {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "type" {
			if p, ok := providers[n.Content[i+1].Value]; ok {
				return p.settings()
			}
		}
	}
	return nil
}

// yamlFields returns the YAML keys of struct type t (or a pointer to one), following
// inline fields.
func yamlFields(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-":
		case strings.Contains(opts, "inline"):
			names = append(names, yamlFields(f.Type)...)
		case name == "":
			names = append(names, strings.ToLower(f.Name))
		default:
			names = append(names, name)
		}
	}
	return names
}
