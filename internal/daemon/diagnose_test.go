package daemon

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// webhookAlert is the part of a webhook payload these tests read.
type webhookAlert struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Alerts  []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

// waitAnnotation waits until the receiver got a firing payload whose alert of target
// has annotation key, and returns it with the payload's message.
func waitAnnotation(t *testing.T, r *pageReceiver, target, key string) (string, string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, b := range r.about(`"` + key + `"`) {
			var m webhookAlert
			if err := json.Unmarshal([]byte(b), &m); err != nil {
				t.Fatalf("payload %s: %v", b, err)
			}
			for _, a := range m.Alerts {
				if a.Labels["target"] == target && a.Status == "firing" && a.Annotations[key] != "" {
					return a.Annotations[key], m.Message
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("no firing payload with annotation %q; got %q", key, r.bodies)
	return "", ""
}

// A service listens on 127.0.0.1 only and the target dials 127.0.0.2: the P0 that
// opens carries doctor's verdict, in the webhook payload's annotations and message.
func TestP0CarriesDoctorsDiagnosis(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	recv := newPageReceiver(t)
	path := filepath.Join(t.TempDir(), "pp.yaml")
	testsvc.WriteFile(t, path, fmt.Sprintf(`host_watch: {disabled: true}
defaults: {interval: 200ms, timeout: 200ms}
api: {anonymous_read: true}
alerting:
  grouping: {group_wait: 2s, group_interval: 1s}
notify:
  receivers: [{name: default, type: webhook, url: %s}]
targets: [{url: "tcp://127.0.0.2:%d"}]
`, recv.URL, port))
	_, base := startDaemon(t, path)

	diag, msg := waitAnnotation(t, recv, fmt.Sprintf("tcp://127.0.0.2:%d", port), "diagnosis")
	want := "the service listens on 127.0.0.1 only, and you dialled 127.0.0.2"
	if !strings.Contains(diag, want) || !strings.Contains(diag, fmt.Sprintf("dial 127.0.0.1:%d instead", port)) {
		t.Errorf("got diagnosis %q, want it to say %q and the next step", diag, want)
	}
	if !strings.Contains(msg, "Diagnosis: "+want) {
		t.Errorf("got message %q, want a Diagnosis line", msg)
	}
	// The API, and with it the dashboard, shows it too.
	waitFor(t, base+"/api/v1/alerts", `"diagnosis":"`+want)
}

// A listener with 40 established clients from two addresses fails: the P0 says that
// 40 clients were connected just before, from 2 addresses, as the host watch saw them.
func TestP0CarriesClientsImpact(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	addr := ln.Addr().String()
	// Keep the test's clients (from 127.0.0.3 and 127.0.0.4); close anything else (the daemon's probes) at once.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if ip := c.RemoteAddr().(*net.TCPAddr).IP.String(); ip != "127.0.0.3" && ip != "127.0.0.4" {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	// 40 clients from two addresses.
	for i := range 40 {
		dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(3+i%2))}}
		c, err := dialer.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	recv := newPageReceiver(t)
	path := filepath.Join(t.TempDir(), "pp.yaml")
	testsvc.WriteFile(t, path, fmt.Sprintf(`host_watch: {interval: 100ms, learn_after: 1h}
defaults: {interval: 1s, timeout: 500ms}
alerting:
  grouping: {group_wait: 2s, group_interval: 1s}
notify:
  receivers: [{name: default, type: webhook, url: %s}]
targets: [{url: "tcp://%s"}, {url: "tcp://127.0.0.1:1"}]
`, recv.URL, addr))
	d, _ := startDaemon(t, path)
	target := "tcp://" + addr

	// Wait for a detail dump that saw the 40 clients, then fail the listener.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, ok := d.watch.Clients(target); ok && c.Established == 40 {
			break
		}
		if time.Now().After(deadline) {
			c, _ := d.watch.Clients(target)
			t.Fatalf("the host watch never saw 40 clients of %s; last %+v", target, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ln.Close()

	impact, msg := waitAnnotation(t, recv, target, "impact")
	if !strings.HasPrefix(impact, "40 clients connected at ") {
		t.Errorf("got impact %q, want it to start with %q", impact, "40 clients connected at ")
	}
	if !strings.Contains(impact, "; 2 distinct client addresses over the last 5m") {
		t.Errorf("got impact %q, want the two client addresses (127.0.0.3 and .4) counted", impact)
	}
	// The other configured target, and what the host watch probes, share 127.0.0.1.
	if !regexp.MustCompile(`; \d+ other targets? (is|are) on 127\.0\.0\.1 \(\d+ down\)$`).MatchString(impact) {
		t.Errorf("got impact %q, want it to count the other targets on 127.0.0.1", impact)
	}
	if !strings.Contains(msg, "Impact: 40 clients connected") {
		t.Errorf("got message %q, want an Impact line", msg)
	}
}

func TestSharedHostSaysOtherTargetsAndDown(t *testing.T) {
	for _, tc := range []struct {
		host         string
		others, down int
		want         string
	}{
		{"db1", 2, 1, "2 other targets are on db1 (1 down)"},
		{"db1", 1, 1, "1 other target is on db1 (1 down)"},
		{"web", 0, 0, "no other target is on web"},
	} {
		if got := sharedHost(tc.host, tc.others, tc.down); got != tc.want {
			t.Errorf("%s, %d others, %d down: got %q, want %q", tc.host, tc.others, tc.down, got, tc.want)
		}
	}
}
