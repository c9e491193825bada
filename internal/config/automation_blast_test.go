package config

import (
	"strings"
	"testing"
)

// The blast radius parses, and its bad values are refused with file:line.
func TestAutomationBlastRadius(t *testing.T) {
	c, err := Parse([]byte("automation:\n  blast_radius: {pool_label: cluster, max_pool_percent: 10, window: 30m}\n"), "good.yaml")
	if err != nil {
		t.Fatalf("good blast_radius refused: %v", err)
	}
	if br := c.Automation.BlastRadius; br.PoolLabel != "cluster" || br.MaxPoolPercent != 10 || br.Window.Minutes() != 30 {
		t.Errorf("got %+v", br)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"automation:\n  blast_radius:\n    max_pool_percent: 150\n",
			`bad.yaml:3:23: automation.blast_radius.max_pool_percent: want a share of the pool from 1 to 100 (percent), got 150`},
		{"automation:\n  blast_radius: {window: -1m}\n", `bad.yaml:2:26: automation.blast_radius.window: must not be negative`},
		{"automation:\n  blast_radius: {pool_label: \"my pool\"}\n", `bad.yaml:2:30: automation.blast_radius.pool_label: "my pool" is not a label name`},
		{"automation:\n  blast_radius: {pools: 3}\n", `bad.yaml:2:18: automation.blast_radius.pools: unknown field "pools"`},
	} {
		_, err := Parse([]byte(tt.yaml), "bad.yaml")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want it to contain %q", tt.yaml, err, tt.want)
		}
	}
}
