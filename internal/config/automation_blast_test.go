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

// A kube step's bad kind, operation and bounds are refused with file:line.
func TestAutomationKubeStep(t *testing.T) {
	head := "automation:\n  playbooks:\n    - name: x\n      steps:\n        - action: kube\n          risk: R1\n          params: "
	if _, err := Parse([]byte(head+"{kind: Deployment, name: web, operation: scale, replicas: 3, min_replicas: 1, max_replicas: 4}\n"), "good.yaml"); err != nil {
		t.Fatalf("good kube step refused: %v", err)
	}
	for _, tt := range []struct{ params, want string }{
		{"{kind: Pod, name: web}", `bad.yaml:7:26: automation.playbooks[0].steps[0].params.kind: "Pod": want Deployment, StatefulSet or DaemonSet`},
		{"{kind: Deployment, name: web, operation: scale, replicas: 3}", `automation.playbooks[0].steps[0].params.max_replicas: required for scale`},
		{"{kind: Deployment, name: web, operation: scale, replicas: 9, max_replicas: 4}", `params.replicas: 9 is outside min_replicas..max_replicas (0..4)`},
		{"{kind: DaemonSet, name: agent, operation: scale, replicas: 1, max_replicas: 2}", `params.operation: a DaemonSet runs one pod per node and cannot be scaled`},
		{"{kind: Deployment, name: web, unit: web.service}", `params.unit: action kube has no parameter "unit"`},
	} {
		_, err := Parse([]byte(head+tt.params+"\n"), "bad.yaml")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want it to contain %q", tt.params, err, tt.want)
		}
	}
}
