package config

import (
	"strings"
	"testing"
	"time"
)

func TestAnomalySection(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string // the whole error; empty for none
	}{
		{"threshold over 1", "anomaly: {threshold: 1.5}\n",
			`bad.yaml:1:22: anomaly.threshold: must be between 0 and 1 (exclusive), got 1.5; the default is 0.995`},
		{"negative threshold", "anomaly:\n  threshold: -0.1\n",
			`bad.yaml:2:14: anomaly.threshold: must be between 0 and 1 (exclusive), got -0.1; the default is 0.995`},
		{"enabled not a bool", "anomaly: {enabled: maybe}\n", `bad.yaml:1:`},
		{"unknown field", "anomaly: {treshold: 0.9}\n",
			`bad.yaml:1:11: anomaly.treshold: unknown field "treshold"; valid fields here: enabled, threshold`},
		{"warn neither duration nor auto", "targets:\n  - url: tcp://127.0.0.1:1\n    warn: automatic\n",
			`bad.yaml:3:11: targets[0].warn: "automatic" is not a duration or auto; write e.g. 500ms, 2s, or auto for the threshold learned from the target's baseline`},
		{"warn auto with the detector off", "anomaly: {enabled: false}\ntargets:\n  - url: tcp://127.0.0.1:1\n    warn: auto\n",
			`bad.yaml:4:11: targets[0].warn: warn: auto learns the threshold with the anomaly detector, which anomaly.enabled turns off; give a duration or enable it`},
		{"default warn auto with the detector off", "anomaly: {enabled: false}\ndefaults: {warn: auto}\n",
			`bad.yaml:2:18: defaults.warn: warn: auto learns the threshold with the anomaly detector, which anomaly.enabled turns off; give a duration or enable it`},
		{"valid", "anomaly: {enabled: true, threshold: 0.99}\ndefaults: {warn: 300ms}\ntargets:\n  - url: tcp://127.0.0.1:1\n    warn: auto\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "bad.yaml")
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.want != "" && err == nil:
				t.Fatalf("got no error, want %s", tt.want)
			case tt.want != "" && !strings.HasPrefix(err.Error(), tt.want):
				t.Fatalf("got\n%v\nwant\n%s", err, tt.want)
			}
		})
	}
}

func TestAnomalyResolved(t *testing.T) {
	cfg, err := Parse([]byte("defaults: {warn: 300ms}\ntargets:\n  - url: tcp://127.0.0.1:1\n    warn: auto\n  - url: tcp://127.0.0.1:2\n  - url: tcp://127.0.0.1:3\n    warn: 1s\n"), "ok.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		auto bool
		warn time.Duration
	}
	want := []got{{true, 0}, {false, 300 * time.Millisecond}, {false, time.Second}}
	for i, c := range cfg.Checks {
		if g := (got{c.AutoWarn, c.Target.Warn}); g != want[i] {
			t.Errorf("targets[%d]: got auto %v, warn %s; want %v, %s", i, g.auto, g.warn, want[i].auto, want[i].warn)
		}
	}
	if !cfg.Anomaly.On() || cfg.Anomaly.ThresholdOrDefault() != DefaultAnomalyThreshold || !cfg.Alerting.Rules.Anomaly.Learned {
		t.Errorf("defaults: on %v, threshold %g, p95 rule replaced %v; want on, %g, replaced",
			cfg.Anomaly.On(), cfg.Anomaly.ThresholdOrDefault(), cfg.Alerting.Rules.Anomaly.Learned, DefaultAnomalyThreshold)
	}
	if !Default().Alerting.Rules.Anomaly.Learned {
		t.Error("Default(): the p95 rule is not replaced by the learned detector")
	}
	off, err := Parse([]byte("anomaly: {enabled: false}\n"), "off.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if off.Anomaly.On() || off.Alerting.Rules.Anomaly.Learned {
		t.Error("anomaly.enabled false: the detector is on or the p95 rule is off")
	}
}
