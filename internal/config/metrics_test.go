package config

import (
	"strings"
	"testing"
)

func TestMetricsPerTarget(t *testing.T) {
	tests := []struct {
		yaml string
		want string // PerTarget, or a substring of the error
		bad  bool
	}{
		{"", "", false},
		{"metrics: {per_target: minimal}\n", "minimal", false},
		{"metrics: {per_target: full}\n", "full", false},
		{"metrics: {per_target: all}\n", `m.yaml:1:23: metrics.per_target: "all": want minimal or full`, true},
		{"metrics: {per_targets: full}\n", `metrics.per_targets: unknown field`, true},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "m.yaml")
			switch {
			case tt.bad && err == nil:
				t.Fatalf("got no error, want %q", tt.want)
			case tt.bad && !strings.Contains(err.Error(), tt.want):
				t.Errorf("error\n  %s\ndoes not contain\n  %s", err, tt.want)
			case !tt.bad && err != nil:
				t.Fatalf("got %v, want per_target %q", err, tt.want)
			case !tt.bad && c.Metrics.PerTarget != tt.want:
				t.Errorf("got per_target %q, want %q", c.Metrics.PerTarget, tt.want)
			}
		})
	}
}
