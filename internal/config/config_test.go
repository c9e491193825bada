package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigLoads(t *testing.T) {
	c, err := Load("../../docs/examples/portpatrol.yaml")
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if got, want := len(c.Checks), 6; got != want {
		t.Fatalf("got %d checks, want %d", got, want)
	}
	db := c.Checks[2]
	if db.Target.ID != "tcp://127.0.0.1:5432" || db.Target.Interval != 10*time.Second ||
		db.Target.Timeout != 2*time.Second || db.Target.Warn != 100*time.Millisecond || db.FailureThreshold != 3 {
		t.Errorf("db check = %+v", db)
	}
	if got := db.Target.Labels; got["env"] != "dev" || got["service"] != "db" {
		t.Errorf("labels = %v, want defaults merged with the target's", got)
	}
	if c.Checks[0].Target.Timeout != 5*time.Second || c.Checks[0].SuccessThreshold != 1 {
		t.Errorf("defaults not applied: %+v", c.Checks[0])
	}
	if m := ModuleOf(c.Checks[1].Module); m.Prober != "tcp" || len(m.TCP.QueryResponse) != 2 {
		t.Errorf("module redis_ping = %+v", m)
	}
	if _, ok := c.Modules["http_2xx"]; !ok {
		t.Error("built-in module http_2xx missing")
	}
}

func TestEmptyConfigIsValid(t *testing.T) {
	c, err := Parse(nil, "empty.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != DefaultListen || len(c.Checks) != 0 {
		t.Errorf("got listen %q and %d checks", c.Listen, len(c.Checks))
	}
}

func TestErrorsNamePositionAndField(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"unknown top-level field", "listne: x\n", []string{"bad.yaml:1:1: listne: unknown field \"listne\"; valid fields here:", "listen"}},
		{"unknown target field", "targets:\n  - url: 127.0.0.1:1\n    intervall: 5s\n", []string{"bad.yaml:3:5: targets[0].intervall: unknown field", "interval"}},
		{"bad duration", "targets:\n  - url: 127.0.0.1:1\n    timeout: 5x\n", []string{"bad.yaml:3:14: targets[0].timeout: \"5x\" is not a duration"}},
		{"bad url", "targets:\n  - url: tcp://127.0.0.1:99999\n", []string{"bad.yaml:2:10: targets[0].url: port \"99999\" out of range"}},
		{"missing url", "targets:\n  - name: x\n", []string{"bad.yaml:2:5: targets[0]: missing url"}},
		{"unknown scheme", "targets:\n  - url: gopher://h:70\n", []string{"targets[0].url: unknown scheme \"gopher\""}},
		{"timeout over interval", "targets:\n  - url: 127.0.0.1:1\n    interval: 1s\n    timeout: 2s\n", []string{"targets[0].timeout: timeout 2s is longer than the interval 1s"}},
		{"duplicate target", "targets:\n  - url: 127.0.0.1:1\n  - url: tcp://127.0.0.1:1\n", []string{"bad.yaml:3:10: targets[1].url: target tcp://127.0.0.1:1 is already defined at targets[0]"}},
		{"unknown module", "targets:\n  - url: 127.0.0.1:1\n    module: nope\n", []string{"bad.yaml:3:13: targets[0].module: unknown module \"nope\"; defined:", "tcp_connect"}},
		{"bad regexp in module", "modules:\n  m:\n    prober: tcp\n    tcp:\n      query_response:\n        - expect: \"(\"\ntargets:\n  - url: 127.0.0.1:1\n    module: m\n", []string{"bad.yaml:8:5: targets[0]: tcp://127.0.0.1:1#m: tcp.query_response[0].expect: error parsing regexp"}},
		{"unknown prober", "modules:\n  m:\n    prober: gopher\n", []string{"bad.yaml:3:13: modules.m.prober: prober \"gopher\" is not supported"}},
		{"bad setting in a module no target uses", "modules:\n  m:\n    prober: tcp\n    tcp:\n      handshake: sideways\n", []string{"bad.yaml:3:5: modules.m: tcp.handshake \"sideways\": want auto, half or full"}},
		{"wrong kind", "targets: 5\n", []string{"bad.yaml:1:10: targets: want a list, got \"5\""}},
		{"bad label", "targets:\n  - url: 127.0.0.1:1\n    labels: {\"bad-name\": x}\n", []string{"targets[0].labels.bad-name: \"bad-name\" is not a valid label name"}},
		{"reserved label", "defaults:\n  labels: {target: x}\n", []string{"defaults.labels.target: label \"target\" is reserved"}},
		{"unset env", "targets:\n  - url: 127.0.0.1:1\n    password: ${PORTPATROL_TEST_UNSET_VAR}\n", []string{"bad.yaml:3:15: targets[0].password: environment variable PORTPATROL_TEST_UNSET_VAR is not set"}},
		{"syntax error", "targets: [\n", []string{"bad.yaml:"}},
		{"bad listen", "listen: nowhere\n", []string{"bad.yaml:1:9: listen: \"nowhere\" is not host:port"}},
		{"bad option", "targets:\n  - url: tcp://127.0.0.1:1?tiemout=1s\n", []string{"unknown option tiemout; valid for tcp:", "timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "bad.yaml")
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n  %s\ndoes not contain\n  %s", err, w)
				}
			}
		})
	}
}

func TestSecretsFromEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PORTPATROL_TEST_PW", "fromenv")
	y := `targets:
  - url: tcp://127.0.0.1:1
    username: alice
    password_file: pw
  - url: tcp://127.0.0.1:2
    username: bob
    password: ${PORTPATROL_TEST_PW}
`
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"s3cret", "fromenv"} {
		tg := c.Checks[i].Target
		if pw, _ := tg.Password(); pw != want {
			t.Errorf("check %d: got password %q, want %q", i, pw, want)
		}
		if strings.Contains(tg.ID, want) {
			t.Errorf("ID %q contains the password", tg.ID)
		}
	}
	if got, want := c.Checks[0].Target.ID, "tcp://alice@127.0.0.1:1"; got != want {
		t.Errorf("got ID %q, want %q", got, want)
	}
}

func TestBlackboxModulesFile(t *testing.T) {
	dir := t.TempDir()
	bb := `modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      valid_http_versions: ["HTTP/1.1", "HTTP/2.0"]
      valid_status_codes: []
      method: GET
      preferred_ip_protocol: "ip4"
  tcp_banner:
    prober: tcp
    tcp:
      query_response:
        - expect: "^SSH-2.0-"
`
	if err := os.WriteFile(filepath.Join(dir, "blackbox.yml"), []byte(bb), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "pp.yaml")
	if err := os.WriteFile(cfgPath, []byte("modules_files: [blackbox.yml]\ntargets:\n  - url: 127.0.0.1:22\n    module: tcp_banner\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Modules["http_2xx"]; m.HTTP.IPProtocol != "ip4" || m.Timeout != 5*time.Second {
		t.Errorf("http_2xx from blackbox.yml = %+v", m)
	}
	if c.Checks[0].ModuleName != "tcp_banner" {
		t.Errorf("got module %q", c.Checks[0].ModuleName)
	}

	_, _, err = ParseBlackboxModules([]byte("modules:\n  x:\n    prober: icmp\n    icmpp: {}\n"), "bb.yml")
	if err == nil || !strings.Contains(err.Error(), "bb.yml:4:5: modules.x.icmpp: unknown field \"icmpp\"") {
		t.Errorf("got %v, want the unknown section named with its position", err)
	}
}

func FuzzParse(f *testing.F) {
	seed, _ := os.ReadFile("../../docs/examples/portpatrol.yaml")
	f.Add(seed)
	f.Add([]byte("targets:\n  - url: 127.0.0.1:1\n    timeout: 5x\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("targets: [{url: ${X}}]"))
	// Refused values are nulled and checking goes on: several kinds in one file.
	f.Add([]byte("listen: x\ndefaults: 5\ntargets:\n  - {url: [a], timeout: 5x, interval: -1s, interval: 2s}\n  - {url: 127.0.0.1:1, labels: {a: 1, a: 2}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}

func TestAlertingExampleLoads(t *testing.T) {
	for _, v := range []string{"PG_MONITOR_PASSWORD", "SLACK_WEBHOOK_URL", "DINGTALK_WEBHOOK_URL", "DINGTALK_SECRET",
		"FEISHU_WEBHOOK_URL", "FEISHU_SECRET", "WECOM_WEBHOOK_URL", "TELEGRAM_BOT_TOKEN", "PAGERDUTY_ROUTING_KEY",
		"OPSGENIE_API_KEY", "SMTP_PASSWORD"} {
		val := "secret-" + strings.ToLower(v)
		if strings.HasSuffix(v, "_URL") {
			val = "https://hooks.example.com/" + strings.ToLower(v)
		}
		t.Setenv(v, val)
	}
	c, err := Load("../../docs/examples/alerting.yaml")
	if err != nil {
		t.Fatalf("alerting example: %v", err)
	}
	if got, want := len(c.Notify.Receivers), 10; got != want {
		t.Errorf("got %d receivers, want %d", got, want)
	}
	types := map[string]bool{}
	for _, r := range c.Notify.Receivers {
		types[r.Type] = true
	}
	for _, ty := range []string{"webhook", "slack", "email", "pagerduty", "opsgenie", "alertmanager", "dingtalk", "feishu", "wecom", "telegram"} {
		if !types[ty] {
			t.Errorf("the example has no %s receiver", ty)
		}
	}
}

func TestAlertingErrorsNameTheField(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown receiver in escalation", "notify:\n  receivers: [{name: default, type: webhook, url: http://127.0.0.1:1/}]\nalerting:\n  escalations:\n    noc:\n      - receivers: [nobody]\n",
			`bad.yaml:6:21: alerting.escalations.noc[0].receivers[0]: no receiver named "nobody" under notify.receivers; defined: default`},
		{"receiver missing a field", "notify:\n  receivers:\n    - {name: pd, type: pagerduty}\n",
			"notify.receivers[0].routing_key: required for type pagerduty"},
		{"field of another receiver type", "notify:\n  receivers:\n    - name: default\n      type: slack\n      url: https://h/x\n      chat_id: '1'\n",
			"bad.yaml:6:7: notify.receivers[0].chat_id: not used by type slack"},
		{"unknown receiver field", "notify:\n  receivers:\n    - name: default\n      type: slack\n      urll: https://h/x\n",
			`bad.yaml:5:7: notify.receivers[0].urll: unknown field "urll"; valid fields for type slack: buttons, lang, name, templates, timezone, type, url`},
		{"receiver field of the wrong kind", "notify:\n  receivers:\n    - {name: default, type: alertmanager, url: 'http://am', resend_interval: soon}\n",
			`bad.yaml:3:78: notify.receivers[0].resend_interval: "soon" is not a duration`},
		{"unknown field in a receiver's nested settings", "notify:\n  receivers:\n    - {name: default, type: email, smtp: {host: mx, from: a@b.c, to: [d@e.f], bogus: 1}}\n",
			`notify.receivers[0].smtp.bogus: unknown field "bogus"; valid fields here: from, host, password, password_file, port, starttls, to, username`},
		{"unset env in a receiver's secret", "notify:\n  receivers:\n    - {name: default, type: webhook, url: 'http://127.0.0.1:1/', token: '${PORTPATROL_TEST_UNSET_VAR}'}\n",
			"notify.receivers[0].token: environment variable PORTPATROL_TEST_UNSET_VAR is not set"},
		{"no default receiver", "notify:\n  receivers: [{name: x, type: webhook, url: http://127.0.0.1:1/}]\n",
			`notify.receivers: with no alerting.escalations, alerts go to the receiver named "default"`},
		{"bad severity", "alerting:\n  rules:\n    slow: {severity: P7}\n", "alerting.rules.slow.severity"},
		{"cert_expiry critical not under warn", "alerting:\n  rules:\n    cert_expiry: {warn: 72h, critical: 168h}\n",
			"bad.yaml:3:40: alerting.rules.cert_expiry.critical: 168h0m0s is not shorter than warn 72h0m0s"},
		{"cert_expiry unknown field", "alerting:\n  rules:\n    cert_expiry: {warning: 72h}\n", `alerting.rules.cert_expiry.warning: unknown field "warning"`},
		{"bad window time", "alerting:\n  maintenance:\n    - {name: m, start: tomorrow}\n", `bad.yaml:3:24: alerting.maintenance[0].start: "tomorrow" is not a time`},
		{"unknown impact receiver", "notify:\n  receivers: [{name: default, type: webhook, url: http://127.0.0.1:1/}]\nalerting:\n  impact:\n    receivers: {acme: [default, acme-mail]}\n",
			`alerting.impact.receivers.acme[1]: no receiver named "acme-mail" under notify.receivers; defined: default`},
		{"bad impact severity", "alerting:\n  impact:\n    severities: [P0, P5]\n    receivers: {\"*\": [default]}\n", "alerting.impact.severities[1]"},
		{"negative max_silence", "alerting:\n  max_silence: -1h\n", "alerting.max_silence: must not be negative, got -1h0m0s"},
		{"bad schedule", "alerting:\n  maintenance:\n    - {name: m, schedule: \"Funday 25:00-26:00 Mars/Base\"}\n", "alerting.maintenance[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "bad.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error\n  %v\nwant one containing\n  %s", err, tt.want)
			}
		})
	}
}

func TestProbeSection(t *testing.T) {
	tests := []struct {
		name, yaml string
		allow      string // the parsed networks, space-separated
		err        string // a substring of the error; empty for none
		allowOpts  bool   // modules.m.allow_target_options as loaded
	}{
		{"absent", "", "", "", false},
		{"networks", "probe:\n  allow: [10.0.0.0/8, 192.0.2.7, \"::1\"]\n", "10.0.0.0/8 192.0.2.7/32 ::1/128", "", false},
		{"bad network", "probe:\n  allow: [10.0.0.0/33]\n", "", "bad.yaml:2:10: probe.allow: allow \"10.0.0.0/33\": not a CIDR", false},
		{"listen", "probe:\n  listen: 0.0.0.0:9116\n", "", "", false},
		{"bad listen", "probe:\n  listen: nine\n", "", "probe.listen: \"nine\" is not host:port", false},
		{"listen on the main address", "probe:\n  listen: 127.0.0.1:9115\n", "", "probe.listen: \"127.0.0.1:9115\" is the main listen address", false},
		{"module switch", "modules:\n  m: {prober: tcp, allow_target_options: true}\n", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "bad.yaml")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range c.ProbeAllow {
				got = append(got, p.String())
			}
			if strings.Join(got, " ") != tt.allow {
				t.Errorf("got probe allow %q, want %q", strings.Join(got, " "), tt.allow)
			}
			if got := c.Modules["m"].AllowTargetOptions; got != tt.allowOpts {
				t.Errorf("got allow_target_options %v, want %v", got, tt.allowOpts)
			}
		})
	}
}

// TestErrorsHidePasswords: no config error shows a URL's password, whether the URL is
// broken by it, wrong elsewhere, or given where something else belongs.
func TestErrorsHidePasswords(t *testing.T) {
	for _, yaml := range []string{
		"targets:\n  - url: 'redis://u:zq#xv@127.0.0.1:6379'\n",
		"targets:\n  - url: 'redis://u:zq/xv@127.0.0.1:6379'\n",
		"targets:\n  - url: 'redis://u:zqxv@127.0.0.1:99999'\n",
		"targets: 'redis://u:zqxv@127.0.0.1:6379'\n",
		"targets:\n  - url: 127.0.0.1:1\n    interval: 'redis://u:zqxv@h'\n",
	} {
		_, err := Parse([]byte(yaml), "bad.yaml")
		if err == nil {
			t.Errorf("%s: got no error", yaml)
			continue
		}
		if strings.Contains(err.Error(), "zq") || strings.Contains(err.Error(), "xv") {
			t.Errorf("%s: got error %q, which shows the password", yaml, err)
		}
	}
}
