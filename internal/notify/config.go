package notify

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Config is the `notify:` section of portpatrol's configuration. The zero value has
// no receivers and the default outbox.
type Config struct {
	Receivers []ReceiverConfig `yaml:"receivers"`
	Outbox    OutboxConfig     `yaml:"outbox"`
	// ExternalURL is portpatrol's own address, for links back from notifications
	// (webhook externalURL and generatorURL, PagerDuty client_url).
	ExternalURL string `yaml:"external_url"`

	// Dir is where relative *_file paths are read from; empty means the working
	// directory. The config loader sets it to the config file's directory.
	Dir string `yaml:"-"`
	// HTTPClient sends every provider's requests; nil means a client with a 30s
	// timeout. Tests pass one that trusts their servers.
	HTTPClient *http.Client `yaml:"-"`
}

// OutboxConfig tunes the outbox. Zero fields take the defaults shown.
type OutboxConfig struct {
	// MaxAge is how long a delivery is tried before it expires (24h).
	MaxAge time.Duration `yaml:"max_age"`
	// BackoffMin and BackoffMax bound the wait between attempts (5s, 10m): it doubles
	// from BackoffMin per attempt up to BackoffMax, jittered into its upper half.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// Concurrency is how many receivers are sent to at once (4).
	Concurrency int `yaml:"concurrency"`
	// SendTimeout bounds one attempt (30s).
	SendTimeout time.Duration `yaml:"send_timeout"`
	// PollInterval is how often the outbox is checked for retries and for deliveries
	// other processes wrote (1s).
	PollInterval time.Duration `yaml:"poll_interval"`
	// Batch is how many of one receiver's deliveries are read per round (100).
	Batch int `yaml:"batch"`

	// Logger receives retries and store errors; nil discards them.
	Logger *slog.Logger `yaml:"-"`
	// Rand returns a number in [0, 1) for jitter; nil means math/rand/v2.
	Rand func() float64 `yaml:"-"`
}

// DefaultMaxAge is how long the outbox keeps trying a delivery when max_age is unset.
const DefaultMaxAge = 24 * time.Hour

func (o OutboxConfig) withDefaults() OutboxConfig {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.MaxAge, DefaultMaxAge)
	def(&o.BackoffMin, 5*time.Second)
	def(&o.BackoffMax, 10*time.Minute)
	def(&o.SendTimeout, 30*time.Second)
	def(&o.PollInterval, time.Second)
	if o.Concurrency == 0 {
		o.Concurrency = 4
	}
	if o.Batch == 0 {
		o.Batch = 100
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Rand == nil {
		o.Rand = defaultRand
	}
	return o
}

// validate checks defaulted settings; path is the section's name in errors.
func (o OutboxConfig) validate(path string) error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"max_age", o.MaxAge}, {"backoff_min", o.BackoffMin}, {"backoff_max", o.BackoffMax}, {"send_timeout", o.SendTimeout}, {"poll_interval", o.PollInterval}} {
		if d.v < 0 {
			return &FieldError{Path: path + "." + d.name, Msg: fmt.Sprintf("must not be negative, got %s", d.v)}
		}
	}
	if o.BackoffMax < o.BackoffMin {
		return &FieldError{Path: path + ".backoff_max", Msg: fmt.Sprintf("%s is less than backoff_min %s", o.BackoffMax, o.BackoffMin)}
	}
	if o.Concurrency < 0 {
		return &FieldError{Path: path + ".concurrency", Msg: "must not be negative"}
	}
	if o.Batch < 0 {
		return &FieldError{Path: path + ".batch", Msg: "must not be negative"}
	}
	return nil
}

// FieldError is a configuration error at a field, named by its path from the notify
// section ("receivers[2].routing_key").
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return "notify." + e.Path + ": " + e.Msg }
