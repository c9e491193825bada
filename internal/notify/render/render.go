// Package render turns a notification into the title and body a person reads, with
// text/template: defaults in English and Chinese that read well in every channel, and
// per-receiver overrides. Impact notices (customer-facing) use their own wording and
// never show internals such as addresses, ports, evidence or runbooks.
package render

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Languages are the languages the default templates are written in.
var Languages = []string{"en", "zh"}

// Config configures a Templates. The zero value renders the defaults in English
// (unless a notification asks for Chinese) with times in UTC.
type Config struct {
	// Lang is the receiver's language, "en" or "zh". When set it wins over the
	// notification's Lang: it is the language of the people reading the channel.
	Lang string
	// Title and Body are text/template overrides; empty means the default. They see
	// a Data and the functions listed in Funcs.
	Title string
	Body  string
	// Location is the time zone times are shown in; nil means UTC.
	Location *time.Location
}

// Templates renders notifications. Build it with New; it is safe for concurrent use.
type Templates struct {
	lang  string
	loc   *time.Location
	title map[string]*template.Template // by language
	body  map[string]*template.Template
}

// Message is a rendered notification.
type Message struct {
	Title string
	// Body is plain text with one fact per line; providers add their own markup.
	Body string
	// Lang is the language it was rendered in.
	Lang string
	// Severity is the most urgent severity among the alerts (P3 when there are none).
	Severity patrol.Severity
	// Tone is how urgent the message looks: providers map it to a colour.
	Tone Tone
}

// Tone is the visual urgency of a message.
type Tone string

// The tones, from most to least urgent.
const (
	ToneCritical Tone = "critical" // P0 firing
	ToneHigh     Tone = "high"     // P1
	ToneWarning  Tone = "warning"  // P2
	ToneInfo     Tone = "info"     // P3, tests
	ToneOK       Tone = "ok"       // resolved
	ToneMuted    Tone = "muted"    // acknowledged
)

// toneRGB is the colour of each tone as 0xRRGGBB, shared by the providers that colour a
// message (Slack and Mattermost attachments, Discord embeds).
var toneRGB = map[Tone]int{
	ToneCritical: 0xD00000,
	ToneHigh:     0xE8590C,
	ToneWarning:  0xF2C744,
	ToneInfo:     0x439FE0,
	ToneOK:       0x2EB67D,
	ToneMuted:    0x9E9E9E,
}

// RGB returns the tone's colour as 0xRRGGBB; 0 for an unknown tone.
func (t Tone) RGB() int { return toneRGB[t] }

// Hex returns the tone's colour as "#RRGGBB"; "" for an unknown tone.
func (t Tone) Hex() string {
	if c, ok := toneRGB[t]; ok {
		return fmt.Sprintf("#%06X", c)
	}
	return ""
}

// Data is what templates see: the notification's fields plus derived values.
type Data struct {
	patrol.Notification
	// Lang is the language being rendered, "en" or "zh".
	Lang string
	// Severity is the most urgent severity among the alerts.
	Severity patrol.Severity
	// Now is when the notification was made (its CreatedAt); relative times such as
	// "5m ago" are measured from it, so a retried message reads as it was written.
	Now time.Time
}

// Item is one alert with the Data it is rendered in, as the sub-templates
// "alert_en" and "alert_zh" take it.
type Item struct {
	D Data
	A patrol.Alert
}

// New parses the templates. A template that does not parse is a *TemplateError.
func New(cfg Config) (*Templates, error) {
	if cfg.Lang != "" && !slices.Contains(Languages, cfg.Lang) {
		return nil, fmt.Errorf("unknown language %q: want one of %s", cfg.Lang, strings.Join(Languages, ", "))
	}
	t := &Templates{lang: cfg.Lang, loc: cfg.Location, title: map[string]*template.Template{}, body: map[string]*template.Template{}}
	if t.loc == nil {
		t.loc = time.UTC
	}
	for _, lang := range Languages {
		title, body := defaultTitle[lang], defaultBody[lang]
		if cfg.Title != "" {
			title = cfg.Title
		}
		if cfg.Body != "" {
			body = cfg.Body
		}
		var err error
		if t.title[lang], err = t.parse("title", title); err != nil {
			return nil, err
		}
		if t.body[lang], err = t.parse("body", body); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// OrDefault returns t, or the default templates (any language, UTC) when t is nil.
func OrDefault(t *Templates) *Templates {
	if t != nil {
		return t
	}
	t, _ = New(Config{}) // the defaults always parse (TestDefaultsGolden)
	return t
}

// TemplateError is a title or body template that does not parse. Configuration points
// at the field by Template.
type TemplateError struct {
	// Template is "title" or "body".
	Template string
	Err      error
}

// Error returns "title template: reason".
func (e *TemplateError) Error() string { return e.Template + " template: " + e.Err.Error() }

func (e *TemplateError) Unwrap() error { return e.Err }

func (t *Templates) parse(name, text string) (*template.Template, error) {
	tp, err := template.New(name).Option("missingkey=error").Funcs(t.funcs()).Parse(partials + text)
	if err != nil {
		return nil, &TemplateError{Template: name, Err: err}
	}
	return tp, nil
}

// Lang returns the language a notification is rendered in: the receiver's language
// when configured, else the notification's, else English.
func (t *Templates) Lang(n patrol.Notification) string {
	switch {
	case t.lang != "":
		return t.lang
	case slices.Contains(Languages, n.Lang):
		return n.Lang
	default:
		return "en"
	}
}

// Render renders n.
func (t *Templates) Render(n patrol.Notification) (Message, error) {
	lang := t.Lang(n)
	d := Data{Notification: n, Lang: lang, Severity: TopSeverity(n.Alerts), Now: n.CreatedAt}
	var title, body bytes.Buffer
	if err := t.title[lang].Execute(&title, d); err != nil {
		return Message{}, fmt.Errorf("render title: %w", err)
	}
	if err := t.body[lang].Execute(&body, d); err != nil {
		return Message{}, fmt.Errorf("render body: %w", err)
	}
	return Message{
		Title:    strings.Join(strings.Fields(title.String()), " "),
		Body:     strings.TrimSpace(body.String()),
		Lang:     lang,
		Severity: d.Severity,
		Tone:     ToneOf(n),
	}, nil
}

// TopSeverity returns the most urgent severity among alerts, P3 when there are none.
func TopSeverity(alerts []patrol.Alert) patrol.Severity {
	s := patrol.P3
	for _, a := range alerts {
		if a.Severity < s {
			s = a.Severity
		}
	}
	return s
}

// ToneOf returns how urgent n should look.
func ToneOf(n patrol.Notification) Tone {
	switch n.Kind {
	case patrol.NotifyResolved:
		return ToneOK
	case patrol.NotifyAck:
		return ToneMuted
	case patrol.NotifyTest:
		return ToneInfo
	case patrol.NotifyImpact:
		if allResolved(n.Alerts) {
			return ToneOK
		}
	}
	switch TopSeverity(n.Alerts) {
	case patrol.P0:
		return ToneCritical
	case patrol.P1:
		return ToneHigh
	case patrol.P2:
		return ToneWarning
	default:
		return ToneInfo
	}
}

func allResolved(alerts []patrol.Alert) bool {
	for _, a := range alerts {
		if a.State != patrol.AlertResolved {
			return false
		}
	}
	return len(alerts) > 0
}

// Funcs lists the functions templates may call, with what they return:
//
//	time T         "2026-03-01 10:00:00 UTC" in the configured zone
//	clock T        "10:00:00 UTC"
//	ago T          "5m ago" / "5分钟前", measured from .Now
//	until T        "in 3m" / "3分钟后", or "overdue by 2m" / "已超时2分钟"
//	dur D          "1h12m" / "1小时12分钟"
//	since A B      the time from A to B as dur
//	word K         the kind's word for titles: "FIRING" / "告警"
//	what A         the class of alert A in words: "unreachable" / "不可达"
//	subject .      the title's subject: "tcp://10.0.0.5:6379 unreachable", "3 alerts: host=…"
//	labels M       "env=prod, service=cache" (sorted)
//	evidence A     a one-line summary of A's evidence
//	service A      the customer-facing name of A's service (label service, app or customer)
//	services .     the customer-facing names of every alert's service, joined
//	impact A       the customer-facing status of A: "outage" / "服务中断"
//	allResolved .  whether every alert is resolved
//	join L SEP     strings.Join
//	pair . A       an Item{D: ., A: A}, to hand one alert to a sub-template
func (t *Templates) funcs() template.FuncMap {
	return template.FuncMap{
		"time":  func(ts time.Time) string { return ts.In(t.loc).Format("2006-01-02 15:04:05 MST") },
		"clock": func(ts time.Time) string { return ts.In(t.loc).Format("15:04:05 MST") },
		"ago": func(d Data, ts time.Time) string {
			return ago(d.Lang, d.Now.Sub(ts))
		},
		"until": func(d Data, ts time.Time) string {
			return until(d.Lang, ts.Sub(d.Now))
		},
		"dur":         func(d Data, x time.Duration) string { return human(d.Lang, x) },
		"since":       func(d Data, a, b time.Time) string { return human(d.Lang, b.Sub(a)) },
		"word":        func(d Data) string { return kindWord[d.Lang][d.Kind] },
		"what":        func(d Data, a patrol.Alert) string { return classWord(d.Lang, a) },
		"subject":     subject,
		"labels":      labels,
		"evidence":    func(d Data, a patrol.Alert) string { return evidence(d.Lang, a, t.loc) },
		"service":     func(d Data, a patrol.Alert) string { return service(d.Lang, a) },
		"services":    services,
		"impact":      func(d Data, a patrol.Alert) string { return impactWord[d.Lang][impactOf(a)] },
		"allResolved": func(d Data) bool { return allResolved(d.Alerts) },
		"join":        func(l []string, sep string) string { return strings.Join(l, sep) },
		"pair":        func(d Data, a patrol.Alert) Item { return Item{D: d, A: a} },
	}
}

var kindWord = map[string]map[patrol.NotificationKind]string{
	"en": {
		patrol.NotifyFiring: "FIRING", patrol.NotifyEscalation: "ESCALATED", patrol.NotifyReminder: "REMINDER",
		patrol.NotifyAck: "ACKED", patrol.NotifyResolved: "RESOLVED", patrol.NotifyTest: "TEST", patrol.NotifyImpact: "NOTICE",
	},
	"zh": {
		patrol.NotifyFiring: "告警", patrol.NotifyEscalation: "升级", patrol.NotifyReminder: "提醒",
		patrol.NotifyAck: "已确认", patrol.NotifyResolved: "已恢复", patrol.NotifyTest: "测试", patrol.NotifyImpact: "通知",
	},
}

var classWords = map[string]map[patrol.AlertClass]string{
	"en": {
		patrol.AlertUnreachable: "unreachable", patrol.AlertSlow: "slow", patrol.AlertCapacity: "near its connection limit",
		patrol.AlertAnomaly: "anomalous", patrol.AlertSecurity: "security finding", patrol.AlertConfig: "configuration fault",
		patrol.AlertCertExpiry: "certificate expiring", patrol.AlertSelf: "portpatrol self-check failed",
	},
	"zh": {
		patrol.AlertUnreachable: "不可达", patrol.AlertSlow: "响应慢", patrol.AlertCapacity: "连接数接近上限",
		patrol.AlertAnomaly: "异常", patrol.AlertSecurity: "安全告警", patrol.AlertConfig: "配置错误",
		patrol.AlertCertExpiry: "证书即将过期", patrol.AlertSelf: "portpatrol 自检失败",
	},
}

func classWord(lang string, a patrol.Alert) string {
	if w, ok := classWords[lang][a.Class]; ok {
		return w
	}
	return string(a.Class)
}

// subject names what a title is about.
func subject(d Data) string {
	switch len(d.Alerts) {
	case 0:
		return d.Group
	case 1:
		a := d.Alerts[0]
		if a.Target == "" {
			return a.Summary
		}
		if w := classWord(d.Lang, a); w != "" {
			return a.Target + " " + w
		}
		return a.Target
	}
	var s string
	if d.Lang == "zh" {
		s = fmt.Sprintf("%d 条告警", len(d.Alerts))
		if d.Group != "" {
			s += "：" + d.Group
		}
		return s
	}
	s = fmt.Sprintf("%d alerts", len(d.Alerts))
	if d.Group != "" {
		s += ": " + d.Group
	}
	return s
}

func labels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ", ")
}

// human renders a duration the way people say it, to the minute above an hour and
// to the second below a minute.
func human(lang string, d time.Duration) string {
	if d < 0 {
		d = -d
	}
	u, ok := units[lang]
	if !ok {
		u = units["en"]
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d%s", int(d.Round(time.Second)/time.Second), u[0])
	case d < time.Hour:
		return fmt.Sprintf("%d%s", int(d.Round(time.Minute)/time.Minute), u[1])
	case d < 24*time.Hour:
		d = d.Round(time.Minute)
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%d%s", h, u[2])
		}
		return fmt.Sprintf("%d%s%d%s", h, u[2], m, u[1])
	default:
		d = d.Round(time.Hour)
		days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		if h == 0 {
			return fmt.Sprintf("%d%s", days, u[3])
		}
		return fmt.Sprintf("%d%s%d%s", days, u[3], h, u[2])
	}
}

var units = map[string][4]string{
	"en": {"s", "m", "h", "d"},
	"zh": {"秒", "分钟", "小时", "天"},
}

func ago(lang string, d time.Duration) string {
	if lang == "zh" {
		return human(lang, d) + "前"
	}
	return human(lang, d) + " ago"
}

func until(lang string, d time.Duration) string {
	switch {
	case d.Abs() < time.Second && lang == "zh":
		return "现在"
	case d.Abs() < time.Second:
		return "now"
	case lang == "zh" && d >= 0:
		return human(lang, d) + "后"
	case lang == "zh":
		return "已超时" + human(lang, d)
	case d >= 0:
		return "in " + human(lang, d)
	default:
		return "overdue by " + human(lang, d)
	}
}

// evidence summarises an alert's evidence in one line: the classes seen, and the
// latest result's error, latency or capacity reading.
func evidence(lang string, a patrol.Alert, loc *time.Location) string {
	if len(a.Evidence) == 0 {
		return ""
	}
	var order []patrol.Class
	count := map[patrol.Class]int{}
	for _, r := range a.Evidence {
		if count[r.Class] == 0 {
			order = append(order, r.Class)
		}
		count[r.Class]++
	}
	parts := make([]string, len(order))
	for i, c := range order {
		parts[i] = fmt.Sprintf("%s ×%d", c, count[c])
	}
	last := a.Evidence[len(a.Evidence)-1]
	var detail []string
	if last.Error != "" {
		detail = append(detail, last.Error)
	}
	if last.Class == patrol.ClassSlow || (last.Error == "" && last.Duration > 0) {
		detail = append(detail, fmt.Sprintf("%s %s", map[string]string{"en": "took", "zh": "耗时"}[lang], last.Duration.Round(time.Millisecond)))
	}
	if c := last.Capacity; c != nil && c.Limit > 0 {
		detail = append(detail, fmt.Sprintf("%s %d/%d", c.What, c.Used, c.Limit))
	}
	at := last.Start.In(loc).Format("15:04:05 MST")
	if lang == "zh" {
		s := strings.Join(parts, "，") + "；最近一次 " + at
		if len(detail) > 0 {
			s += "：" + strings.Join(detail, "，")
		}
		return s
	}
	s := strings.Join(parts, ", ") + "; last at " + at
	if len(detail) > 0 {
		s += ": " + strings.Join(detail, ", ")
	}
	return s
}

// service is the customer-facing name of an alert's service. It never falls back to
// the target, which would show an address.
func service(lang string, a patrol.Alert) string {
	for _, k := range []string{"service", "app", "customer"} {
		if v := a.Labels[k]; v != "" {
			return v
		}
	}
	if lang == "zh" {
		return "一项服务"
	}
	return "a service"
}

func services(d Data) string {
	var names []string
	for _, a := range d.Alerts {
		if s := service(d.Lang, a); !slices.Contains(names, s) {
			names = append(names, s)
		}
	}
	sep := ", "
	if d.Lang == "zh" {
		sep = "、"
	}
	return strings.Join(names, sep)
}

type impactLevel int

const (
	impactOutage impactLevel = iota
	impactSlow
	impactDegraded
	impactResolved
)

func impactOf(a patrol.Alert) impactLevel {
	switch {
	case a.State == patrol.AlertResolved:
		return impactResolved
	case a.Class == patrol.AlertUnreachable:
		return impactOutage
	case a.Class == patrol.AlertSlow:
		return impactSlow
	default:
		return impactDegraded
	}
}

var impactWord = map[string]map[impactLevel]string{
	"en": {impactOutage: "outage", impactSlow: "slow responses", impactDegraded: "degraded performance", impactResolved: "resolved"},
	"zh": {impactOutage: "服务中断", impactSlow: "响应变慢", impactDegraded: "性能下降", impactResolved: "已恢复"},
}

// Truncate shortens s to at most max bytes of valid UTF-8, ending in "…" when it
// cut; providers use it for their field limits.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ell = "…"
	cut := max - len(ell)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}
