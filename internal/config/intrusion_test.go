package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestIntrusionSection(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string // the start of the error; empty for none
	}{
		{"malformed CIDR", "intrusion:\n  enabled: true\n  allowlist:\n    - 10.0.0.0/8\n    - 10.300.0.0/16\n",
			`bad.yaml:5:7: intrusion.allowlist[1]: "10.300.0.0/16" is not an address or a network (want e.g. 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32)`},
		{"fast score too high", "intrusion: {fast_score: 99}\n",
			`bad.yaml:1:25: intrusion.fast_score: must be between 1 and 24`},
		{"negative window", "intrusion:\n  slow_window: -1h\n", `bad.yaml:2:16: intrusion.slow_window: must not be negative, got -1h0m0s`},
		{"cap under ban time", "intrusion: {ban_time: 1h, max_ban_time: 10m}\n", `bad.yaml:1:41: intrusion.max_ban_time: 10m0s is shorter than ban_time 1h0m0s`},
		{"relative netns", "intrusion: {netns: victim}\n", `bad.yaml:1:20: intrusion.netns: "victim": want the path`},
		{"unknown field", "intrusion: {dryrun: false}\n", `bad.yaml:1:13: intrusion.dryrun: unknown field "dryrun"`},
		{"valid", "intrusion:\n  enabled: true\n  dry_run: false\n  auth_ports: [22, 2222]\n  allowlist: [10.9.0.0/16, 192.0.2.7, \"2001:db8::/32\"]\n", ""},
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

func TestIntrusionDefaultsAndRules(t *testing.T) {
	cfg, err := Parse([]byte("intrusion:\n  enabled: true\n  allowlist:\n    - 10.9.0.0/16\n    - 192.0.2.7\n"), "pp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Intrusion.Enabled || !cfg.Intrusion.IsDryRun() {
		t.Fatalf("got enabled %v, dry run %v; want on, in dry run", cfg.Intrusion.Enabled, cfg.Intrusion.IsDryRun())
	}
	rules := cfg.IntrusionAllow()
	if len(rules) != 2 || rules[1].Prefix != netip.MustParsePrefix("192.0.2.7/32") || rules[1].Rule != "intrusion.allowlist[1] 192.0.2.7/32 at pp.yaml:5" {
		t.Fatalf("got %+v", rules)
	}
	off, err := Parse(nil, "empty.yaml")
	if err != nil || off.Intrusion.Enabled {
		t.Fatalf("empty config: enabled %v, %v; want off", off.Intrusion.Enabled, err)
	}
}
