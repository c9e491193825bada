package render_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

func dump(m render.Message) []byte {
	return []byte(fmt.Sprintf("title: %s\ntone: %s\n\n%s\n", m.Title, m.Tone, m.Body))
}

func TestDefaultsGolden(t *testing.T) {
	for _, lang := range render.Languages {
		tp, err := render.New(render.Config{Lang: lang})
		if err != nil {
			t.Fatal(err)
		}
		cases := map[string]patrol.Notification{"group": notifytest.Group()}
		for _, k := range notifytest.Kinds {
			cases[string(k)] = notifytest.Notification(k)
		}
		for name, n := range cases {
			t.Run(lang+"/"+name, func(t *testing.T) {
				m, err := tp.Render(n)
				if err != nil {
					t.Fatal(err)
				}
				if m.Lang != lang {
					t.Errorf("got lang %q, want %q", m.Lang, lang)
				}
				notifytest.Golden(t, lang+"_"+name+".golden", dump(m))
			})
		}
	}
}

func TestTitleExamples(t *testing.T) {
	n := notifytest.Notification(patrol.NotifyFiring)
	for lang, want := range map[string]string{
		"en": "[P0 FIRING] tcp://10.0.0.5:6379 unreachable",
		"zh": "[P0 告警] tcp://10.0.0.5:6379 不可达",
	} {
		tp, err := render.New(render.Config{Lang: lang})
		if err != nil {
			t.Fatal(err)
		}
		m, err := tp.Render(n)
		if err != nil {
			t.Fatal(err)
		}
		if m.Title != want {
			t.Errorf("%s: got %q, want %q", lang, m.Title, want)
		}
	}
}

// Impact notices go to customers: no address, port, target, evidence, runbook or
// internal receiver may show, whatever the alert holds.
func TestImpactShowsNoInternals(t *testing.T) {
	n := notifytest.Notification(patrol.NotifyImpact)
	resolved := notifytest.Notification(patrol.NotifyResolved)
	resolved.Kind = patrol.NotifyImpact
	noService := notifytest.Notification(patrol.NotifyImpact)
	noService.Alerts[0].Labels = nil
	for _, lang := range render.Languages {
		tp, err := render.New(render.Config{Lang: lang})
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range []patrol.Notification{n, resolved, noService} {
			m, err := tp.Render(n)
			if err != nil {
				t.Fatal(err)
			}
			text := m.Title + "\n" + m.Body
			for _, secret := range []string{"10.0.0.5", "6379", "tcp://", "refused", "runbooks.example.com", "noc-slack", "P0", "port_unreachable"} {
				if strings.Contains(text, secret) {
					t.Errorf("%s case %d: impact notice shows %q:\n%s", lang, i, secret, text)
				}
			}
		}
	}
}

func TestLanguageChoice(t *testing.T) {
	n := notifytest.Notification(patrol.NotifyFiring)
	cases := []struct{ receiver, notification, want string }{
		{"", "", "en"}, {"", "zh", "zh"}, {"en", "zh", "en"}, {"zh", "", "zh"}, {"", "fr", "en"},
	}
	for _, c := range cases {
		tp, err := render.New(render.Config{Lang: c.receiver})
		if err != nil {
			t.Fatal(err)
		}
		n.Lang = c.notification
		if got := tp.Lang(n); got != c.want {
			t.Errorf("receiver %q, notification %q: got %q, want %q", c.receiver, c.notification, got, c.want)
		}
	}
}

func TestOverrides(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	tp, err := render.New(render.Config{
		Title:    `{{.Severity}} {{range .Alerts}}{{.Labels.service}}{{end}} {{word .}}`,
		Body:     `{{range .Alerts}}{{time .StartsAt}} {{ago $ .StartsAt}}{{end}}`,
		Location: loc,
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := tp.Render(notifytest.Notification(patrol.NotifyFiring))
	if err != nil {
		t.Fatal(err)
	}
	if want := "P0 cache FIRING"; m.Title != want {
		t.Errorf("got title %q, want %q", m.Title, want)
	}
	if want := "2026-03-01 18:00:00 CST 2m ago"; m.Body != want {
		t.Errorf("got body %q, want %q", m.Body, want)
	}
}

func TestBadTemplates(t *testing.T) {
	for _, tt := range []struct {
		cfg      render.Config
		template string // the TemplateError's, "" for another error
	}{
		{render.Config{Title: "{{.Nope"}, "title"},
		{render.Config{Body: "{{if}}"}, "body"},
		{render.Config{Title: "{{.Severity}}", Body: "{{end}}"}, "body"},
		{render.Config{Lang: "fr"}, ""},
	} {
		_, err := render.New(tt.cfg)
		if err == nil {
			t.Errorf("%+v: got no error", tt.cfg)
			continue
		}
		var te *render.TemplateError
		got := ""
		if errors.As(err, &te) {
			got = te.Template
		}
		if got != tt.template {
			t.Errorf("%+v: got TemplateError of %q (%v), want %q", tt.cfg, got, err, tt.template)
		}
	}
	tp, err := render.New(render.Config{Body: "{{.NoSuchField}}"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Render(notifytest.Notification(patrol.NotifyFiring)); err == nil {
		t.Error("rendering an unknown field: got no error")
	}
}
