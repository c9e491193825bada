package notify

import "time"

// ReceiverConfig is one receiver: a named destination of one type. Which fields a
// type needs is in Types; a field a type does not use is an error, to catch typos.
// Secrets may be given inline (prefer ${ENV}) or in a file (*_file), not both.
type ReceiverConfig struct {
	Name string `yaml:"name"`
	// Type is one of Types.
	Type string `yaml:"type"`
	// URL is the webhook or API address; for pagerduty, opsgenie and telegram it
	// overrides the public API's base URL.
	URL string `yaml:"url"`
	// Secret signs requests (webhook, dingtalk, feishu).
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// Token is a bearer token (webhook, alertmanager) or the Telegram bot token.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// RoutingKey is the PagerDuty Events v2 integration key.
	RoutingKey     string `yaml:"routing_key"`
	RoutingKeyFile string `yaml:"routing_key_file"`
	// APIKey is the Opsgenie API integration key.
	APIKey     string `yaml:"api_key"`
	APIKeyFile string `yaml:"api_key_file"`
	// ChatID is the Telegram chat.
	ChatID string      `yaml:"chat_id"`
	SMTP   *SMTPConfig `yaml:"smtp"`
	// Lang is the language of rendered text, "en" or "zh"; empty means the
	// notification's language, or English.
	Lang string `yaml:"lang"`
	// Timezone is the IANA zone times are shown in; empty means UTC.
	Timezone  string          `yaml:"timezone"`
	Templates *TemplateConfig `yaml:"templates"`
	// ResendInterval is how often an alertmanager receiver is sent its active alerts
	// again (1m); Alertmanager drops an alert not re-sent before its endsAt.
	ResendInterval time.Duration `yaml:"resend_interval"`
}

// SMTPConfig is an email receiver's mail server and addresses.
type SMTPConfig struct {
	Host string `yaml:"host"`
	// Port defaults to 587.
	Port int    `yaml:"port"`
	From string `yaml:"from"`
	// To lists the recipients; at least one.
	To           []string `yaml:"to"`
	Username     string   `yaml:"username"`
	Password     string   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"`
	// StartTLS requires STARTTLS before anything is sent; nil means true. Set it to
	// false only for a relay on the same host.
	StartTLS *bool `yaml:"starttls"`
}

// TemplateConfig overrides a receiver's templates (text/template; see package render
// for the data and functions). Empty means the default.
type TemplateConfig struct {
	Title string `yaml:"title"`
	Body  string `yaml:"body"`
}
