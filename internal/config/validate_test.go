package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOneRunReportsEveryProblem: a field the decoder cannot read no longer hides the
// semantic errors of the rest of the file, and does not add errors of its own about
// the zero value it was read as.
func TestOneRunReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // the whole error, line by line
	}{
		{"type error and semantic error", "listen: nowhere\ntargets:\n  - url: 127.0.0.1:1\n    timeout: 5x\n", []string{
			`bad.yaml:1:9: listen: "nowhere" is not host:port (e.g. 127.0.0.1:9115)`,
			`bad.yaml:4:14: targets[0].timeout: "5x" is not a duration; write e.g. 500ms, 5s, 1m30s`,
		}},
		{"semantic error in the same target", "targets:\n  - url: tcp://127.0.0.1:99999\n    timeout: 5x\n", []string{
			`bad.yaml:2:10: targets[0].url: port "99999" out of range 1-65535`,
			`bad.yaml:3:14: targets[0].timeout: "5x" is not a duration; write e.g. 500ms, 5s, 1m30s`,
		}},
		{"section of the wrong kind", "defaults: 5\nlisten: 127.0.0.1:99999\n", []string{
			`bad.yaml:1:11: defaults: want a mapping of fields (failure_threshold, interval, labels, success_threshold, timeout, warn), got "5"`,
			`bad.yaml:2:9: listen: "127.0.0.1:99999": port "99999" is not a number from 0 to 65535`,
		}},
		{"unknown field and a negative interval", "targets:\n  - url: 127.0.0.1:1\n    intervall: 5s\n  - url: 127.0.0.1:2\n    interval: -1s\n", []string{
			`bad.yaml:3:5: targets[0].intervall: unknown field "intervall"; valid fields here: failure_threshold, interval, labels, locations, module, name, password, password_file, quorum, success_threshold, timeout, url, username, warn`,
			`bad.yaml:5:15: targets[1].interval: must not be negative, got -1s`,
		}},
		{"field given twice and a bad label", "scheduler:\n  concurrency: 1\n  concurrency: 2\ndefaults:\n  labels: {job: x}\n", []string{
			`bad.yaml:3:3: scheduler.concurrency: field "concurrency" given twice`,
			`bad.yaml:5:17: defaults.labels.job: label "job" is reserved for portpatrol's own use; pick another name`,
		}},
		{"unset variable and an unknown module", "targets:\n  - url: 127.0.0.1:1\n    password: ${PORTPATROL_TEST_UNSET_VAR}\n    module: nope\n", []string{
			`bad.yaml:3:15: targets[0].password: environment variable PORTPATROL_TEST_UNSET_VAR is not set`,
			`bad.yaml:4:13: targets[0].module: unknown module "nope"; defined: `,
		}},
		{"a bool, an int and a list, each wrong", "scheduler: {fast_confirm: maybe, per_host: many}\nmodules_files: x.yml\nhost_watch: {interval: 1ms}\n", []string{
			`bad.yaml:1:27: scheduler.fast_confirm: "maybe" is not true or false`,
			`bad.yaml:1:44: scheduler.per_host: "many" is not a whole number`,
			`bad.yaml:2:16: modules_files: want a list, got "x.yml"`,
			`bad.yaml:3:24: host_watch.interval: must be at least 50ms, got 1ms`,
		}},
		{"a bad url does not hide the target's other fields", "targets:\n  - url: gopher://h:70\n    interval: 500us\n    labels: {job: x}\n", []string{
			`bad.yaml:2:10: targets[0].url: unknown scheme "gopher"`,
			`bad.yaml:3:15: targets[0].interval: must be at least 1ms, got 500µs`,
			`bad.yaml:4:19: targets[0].labels.job: label "job" is reserved`,
		}},
		{"a url that is not a string is not also missing", "targets:\n  - url: [a]\n", []string{
			`bad.yaml:2:10: targets[0].url: want a single value, got a list`,
		}},
		{"a prober that is not a string is not also missing", "modules:\n  m: {prober: {x: 1}}\n", []string{
			`bad.yaml:2:15: modules.m.prober: want a single value, got a mapping`,
		}},
		{"an unreadable interval is not compared with the timeout", "targets:\n  - url: 127.0.0.1:1\n    interval: 5x\n    timeout: 40s\n", []string{
			`bad.yaml:3:15: targets[0].interval: "5x" is not a duration; write e.g. 500ms, 5s, 1m30s`,
		}},
		{"a map key given twice", "defaults:\n  labels: {a: x, a: y}\nlisten: nowhere\n", []string{
			`bad.yaml:2:18: defaults.labels.a: key "a" given twice`,
			`bad.yaml:3:9: listen: "nowhere" is not host:port (e.g. 127.0.0.1:9115)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "bad.yaml")
			if err == nil {
				t.Fatal("got no error")
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(tt.want), err)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("error %d:\n  got  %s\n  want %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestRefusesWhatServeRefuses covers the values the scheduler, the listener, the
// Kubernetes discovery and the TLS listener used to refuse only once serve ran them.
func TestRefusesWhatServeRefuses(t *testing.T) {
	target := func(field string) string { return "targets:\n  - url: 127.0.0.1:1\n    " + field + "\n" }
	tests := []struct{ name, yaml, want string }{
		{"listen port out of range", "listen: 127.0.0.1:99999\n", `bad.yaml:1:9: listen: "127.0.0.1:99999": port "99999" is not a number from 0 to 65535`},
		{"listen port a name", "listen: 127.0.0.1:http\n", `bad.yaml:1:9: listen: "127.0.0.1:http": port "http" is not a number from 0 to 65535`},
		{"listen host not an address", "listen: 999.1.1.1:9115\n", `bad.yaml:1:9: listen: "999.1.1.1:9115": host "999.1.1.1" is not an IP address or a host name`},
		{"listen host with a space", "listen: 'my host:9115'\n", `bad.yaml:1:9: listen: "my host:9115": host "my host" is not an IP address or a host name`},
		{"negative interval", target("interval: -1s"), "bad.yaml:3:15: targets[0].interval: must not be negative, got -1s"},
		{"sub-millisecond interval", target("interval: 500us"), "bad.yaml:3:15: targets[0].interval: must be at least 1ms, got 500µs"},
		{"sub-millisecond timeout", target("timeout: 0.5ms"), "bad.yaml:3:14: targets[0].timeout: must be at least 1ms, got 500µs"},
		{"negative timeout", target("timeout: -1s"), "bad.yaml:3:14: targets[0].timeout: must not be negative, got -1s"},
		{"negative warn", target("warn: -1ms"), "bad.yaml:3:11: targets[0].warn: must not be negative, got -1ms"},
		{"negative failure threshold", target("failure_threshold: -1"), "bad.yaml:3:24: targets[0].failure_threshold: must not be negative, got -1"},
		{"negative success threshold", target("success_threshold: -2"), "bad.yaml:3:24: targets[0].success_threshold: must not be negative, got -2"},
		{"negative default interval", "defaults:\n  interval: -30s\n", "bad.yaml:2:13: defaults.interval: must not be negative, got -30s"},
		{"sub-millisecond default timeout", "defaults:\n  timeout: 10us\n", "bad.yaml:2:12: defaults.timeout: must be at least 1ms, got 10µs"},
		{"negative default warn", "defaults:\n  warn: -1s\n", "bad.yaml:2:9: defaults.warn: must not be negative, got -1s"},
		{"negative module timeout", "modules:\n  m: {prober: tcp, timeout: -1s}\n", "bad.yaml:2:29: modules.m.timeout: must not be negative, got -1s"},
		{"negative flap window", "scheduler:\n  flap_window: -1m\n", "bad.yaml:2:16: scheduler.flap_window: must not be negative, got -1m0s"},
		{"concurrency too high", "scheduler:\n  concurrency: 1000000000\n", "bad.yaml:2:16: scheduler.concurrency: must be at most 65536, got 1000000000"},
		{"bad kubernetes selector", "kubernetes:\n  selector: 'a in ('\n", `bad.yaml:2:13: kubernetes.selector: "a in (": `},
		{"missing TLS files", "api:\n  tls_cert_file: /nonexistent/cert.pem\n  tls_key_file: /nonexistent/key.pem\n",
			"bad.yaml:2:18: api.tls_cert_file: open /nonexistent/cert.pem: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "bad.yaml")
			if err == nil {
				t.Fatalf("got no error, want %s", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got\n  %s\nwant\n  %s", err, tt.want)
			}
		})
	}
}

func TestAcceptsWhatServeAccepts(t *testing.T) {
	tests := []struct{ name, yaml string }{
		{"every address", "listen: ':9115'\n"},
		{"any free port", "listen: 127.0.0.1:0\n"},
		{"a host name", "listen: localhost:9115\n"},
		{"a qualified host name", "listen: mon-1.example.com.:9115\n"},
		{"IPv6", "listen: '[::1]:9115'\n"},
		{"IPv6 with a zone", "listen: '[fe80::1%eth0]:9115'\n"},
		{"the shortest interval and timeout", "targets:\n  - url: 127.0.0.1:1\n    interval: 1ms\n    timeout: 1ms\n"},
		{"zero means the default", "defaults: {interval: 0s, timeout: 0s, warn: 0s}\nscheduler: {flap_window: 0s, concurrency: 65536}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.yaml), "good.yaml"); err != nil {
				t.Errorf("got %v, want no error", err)
			}
		})
	}
}

func TestTLSKeyPairIsLoaded(t *testing.T) {
	dir := t.TempDir()
	certA, keyA := writeKeyPair(t, dir, "a")
	_, keyB := writeKeyPair(t, dir, "b")
	good := "api:\n  tls_cert_file: " + certA + "\n  tls_key_file: " + keyA + "\n"
	if _, err := Parse([]byte(good), "good.yaml"); err != nil {
		t.Errorf("matching pair: got %v, want no error", err)
	}
	mismatched := "api:\n  tls_cert_file: " + certA + "\n  tls_key_file: " + keyB + "\n"
	_, err := Parse([]byte(mismatched), "bad.yaml")
	if want := "bad.yaml:2:18: api.tls_cert_file: with tls_key_file " + keyB + ": tls: private key does not match public key"; err == nil || err.Error() != want {
		t.Errorf("mismatched pair: got %v, want %s", err, want)
	}
}

// writeKeyPair writes a self-signed certificate and its key as name.crt and name.key.
func writeKeyPair(t *testing.T, dir, name string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestAliasesDoNotMultiplyTheWork: nine anchors, each a list of nine aliases of the one
// before, name 9^10 values; the check must walk each anchor once, not every value.
func TestAliasesDoNotMultiplyTheWork(t *testing.T) {
	parts := []string{"&l0 [x, x, x, x, x, x, x, x, x]"}
	for i := 1; i < 10; i++ {
		parts = append(parts, fmt.Sprintf("&l%d [%s]", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 9), ", ")))
	}
	laughs := "[" + strings.Join(parts, ", ") + "]"
	tests := []struct{ name, yaml string }{
		{"field no type declares", "notify:\n  receivers:\n    - {name: default, type: webhook, url: 'http://127.0.0.1:1/', junk: " + laughs + "}\n"},
		{"typed list", "targets:\n  - url: 127.0.0.1:1\n    labels: {a: x}\nmodules_files: " + laughs + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := Parse([]byte(tt.yaml), "bad.yaml")
				done <- err
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Parse still running after 20s")
			}
		})
	}
}
