package config

import (
	"fmt"
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultAnomalyThreshold is the anomaly score at or above which the learned-baseline
// detector raises an alert (the detector's own default; see docs/anomaly.md).
const DefaultAnomalyThreshold = 0.995

// Anomaly configures the learned-baseline anomaly detector the daemon feeds with every
// probe result (see docs/anomaly.md). The zero value is on, at the default threshold.
type Anomaly struct {
	// Enabled turns the detector on (the default) or off. While it is on it replaces
	// the p95 rule of alerting.rules.anomaly.
	Enabled *bool `yaml:"enabled"`
	// Threshold is the score (0 < t < 1) at or above which a point is anomalous;
	// zero means DefaultAnomalyThreshold.
	Threshold float64 `yaml:"threshold"`
}

// On reports whether the detector runs: unless enabled is false.
func (a Anomaly) On() bool { return a.Enabled == nil || *a.Enabled }

// ThresholdOrDefault returns Threshold, or DefaultAnomalyThreshold when it is zero.
func (a Anomaly) ThresholdOrDefault() float64 {
	if a.Threshold == 0 {
		return DefaultAnomalyThreshold
	}
	return a.Threshold
}

// WarnThreshold is a target's latency threshold for class slow (and so the P1 slow
// rule): a duration such as 250ms, or "auto" for the threshold learned from the
// target's own seasonal baseline — the upper edge of the anomaly detector's band for
// that time of day and week. The zero value is no threshold.
type WarnThreshold struct {
	Duration time.Duration
	Auto     bool
}

// autoWord is what `warn:` says for a learned threshold.
const autoWord = "auto"

var warnType = reflect.TypeOf(WarnThreshold{})

// UnmarshalYAML reads a duration or "auto".
func (w *WarnThreshold) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: warn: want a duration or %s", n.Line, autoWord)
	}
	if n.Value == autoWord {
		*w = WarnThreshold{Auto: true}
		return nil
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: warn: %q is not a duration or %s", n.Line, n.Value, autoWord)
	}
	*w = WarnThreshold{Duration: d}
	return nil
}

// MarshalYAML writes the threshold as the file would say it.
func (w WarnThreshold) MarshalYAML() (any, error) {
	if w.Auto {
		return autoWord, nil
	}
	return w.Duration.String(), nil
}

// String returns "auto" or the duration.
func (w WarnThreshold) String() string {
	if w.Auto {
		return autoWord
	}
	return w.Duration.String()
}

// resolveAnomaly checks the anomaly section and tells the alert engine whether the
// learned detector replaces its p95 rule.
func (c *Config) resolveAnomaly(at func(path, format string, args ...any)) {
	if t := c.Anomaly.Threshold; t < 0 || t >= 1 || t != t {
		at("anomaly.threshold", "must be between 0 and 1 (exclusive), got %g; the default is %g", t, DefaultAnomalyThreshold)
	}
	if c.Source.Defaults.Warn.Auto && !c.Anomaly.On() {
		at("defaults.warn", "warn: auto learns the threshold with the anomaly detector, which anomaly.enabled turns off; give a duration or enable it")
	}
}
