package notify

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify/alertmanager"
	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/slack"
)

// Every provider's settings decode beside the common fields without shadowing one, and
// name their type the way the registry does.
func TestProviders(t *testing.T) {
	want := []string{"alertmanager", "dingtalk", "discord", "email", "feishu", "googlechat", "mattermost", "ntfy", "opsgenie", "pagerduty", "pushover", "slack", "teams", "telegram", "webhook", "wecom", "zulip"}
	if got := TypeNames(); !slices.Equal(got, want) {
		t.Fatalf("got types %v, want %v", got, want)
	}
	for _, name := range TypeNames() {
		s := providers[name].settings()
		if rt := reflect.TypeOf(s); rt.Kind() != reflect.Pointer || rt.Elem().Kind() != reflect.Struct {
			t.Errorf("%s: settings are a %s, want a pointer to a struct (YAML decodes into it)", name, rt)
		}
		fields := yamlFields(reflect.TypeOf(s))
		if len(fields) == 0 {
			t.Errorf("%s: settings declare no fields", name)
		}
		for _, f := range fields {
			if slices.Contains(commonFields, f) {
				t.Errorf("%s: field %q is also a field of every receiver", name, f)
			}
		}
		// The zero settings lack a required field, and the error names the type by the
		// registry's name for it.
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "required for type "+name) {
			t.Errorf("%s: zero settings: got %v, want a field required for type %s", name, err, name)
		}
	}
}

// A provider whose notifier re-sends (Alertmanager) sets the receiver's Resend.
func TestResendFromProvider(t *testing.T) {
	tests := []struct {
		name string
		rc   ReceiverConfig
		want time.Duration
	}{
		{"alertmanager", ReceiverConfig{Type: "alertmanager", Settings: &alertmanager.ReceiverConfig{URL: "http://am", ResendInterval: 2 * time.Minute}}, 2 * time.Minute},
		{"alertmanager default", ReceiverConfig{Type: "alertmanager", Settings: &alertmanager.ReceiverConfig{URL: "http://am"}}, alertmanager.DefaultResendInterval},
		{"slack", ReceiverConfig{Type: "slack", Settings: &slack.ReceiverConfig{URL: "https://h"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := buildReceiver(tt.rc, receiver.Env{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Resend != tt.want {
				t.Errorf("got Resend %s, want %s", r.Resend, tt.want)
			}
		})
	}
}
