package faults_test

import (
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// TestAlertStorm: 10,000 targets (100 hosts × 100 ports, every one refused; 1,000
// under the race detector) go down at once. Every target's incident is recorded, while the receiver gets a bounded
// number of messages — one per host group, then at most one per group interval — and
// the outbox holds no more than that.
func TestAlertStorm(t *testing.T) {
	// 100 ports nothing listens on, on any address.
	hosts, perHost := 100, 100 // 10,000 targets
	if raceOn {
		// 1,000: under the race detector each probe, state write and outbox poll
		// costs many times the CPU (10,000 took 297 s on a loaded 2-core machine, the
		// alert engine under a tenth of it).
		hosts = 10
	}
	n := hosts * perHost
	var ports []int
	for p := 1; p < 1024 && len(ports) < perHost; p++ {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.1.0.1:%d", p), 200*time.Millisecond)
		if err == nil {
			c.Close()
			continue
		}
		if strings.Contains(err.Error(), "refused") {
			ports = append(ports, p)
		}
	}
	if len(ports) < perHost {
		t.Fatalf("found %d refused ports under 1024 on 127.1.0.1, want 100", len(ports))
	}
	var b strings.Builder
	b.WriteString(`host_watch: {disabled: true}
anomaly: {enabled: false}
scheduler: {fast_confirm: false}
defaults: {interval: 10s, timeout: 1s, failure_threshold: 1}
alerting: {grouping: {group_wait: 1s, group_interval: 10s}}
notify:
  outbox: {poll_interval: 100ms}
  receivers: [{name: default, type: webhook, url: RCV}]
targets:
`)
	for h := 1; h <= hosts; h++ {
		for _, p := range ports {
			fmt.Fprintf(&b, "  - url: tcp://127.1.0.%d:%d\n", h, p)
		}
	}
	rcv := testsvc.NewWebhook(t)
	start := time.Now()
	_, base := startDaemon(t, strings.Replace(b.String(), "RCV", rcv.URL, 1), t.TempDir())
	firing := func() float64 { return metric(t, base, `portpatrol_alerts{severity="P0",state="firing"}`) }
	poll(t, 5*time.Minute, "every incident", func() bool { return firing() >= float64(n) })
	recorded := time.Since(start)
	carried := func() int {
		n := 0
		for _, m := range rcv.Messages() {
			n += len(m.Alerts)
		}
		return n
	}
	// The last group interval's message carries the rest.
	poll(t, 60*time.Second, "every alert told", func() bool { return carried() >= n })
	elapsed := time.Since(start)
	msgs := rcv.Messages()
	alerts := 0
	for _, m := range msgs {
		alerts += len(m.Alerts)
	}
	enqueued := metric(t, base, `portpatrol_notifications_total{outcome="enqueued",provider="webhook"}`)
	bound := float64(hosts) * (1 + math.Ceil(elapsed.Seconds()/10))
	perMinute := float64(len(msgs)) / elapsed.Minutes()
	t.Logf("alert storm: %d targets down; %v P0 incidents recorded (all within %s); %d messages to the one receiver in %s (%.1f a minute; bound %.0f: at most %d groups, one message each, then one per 10s group interval), carrying %d alerts; outbox entries %v",
		n, firing(), recorded.Round(time.Second), len(msgs), elapsed.Round(time.Second), perMinute, bound, hosts, alerts, enqueued)
	if float64(len(msgs)) > bound || enqueued > bound {
		t.Fatalf("%d messages, %v outbox entries; want at most %.0f", len(msgs), enqueued, bound)
	}
	if alerts < n {
		t.Fatalf("the messages carried %d alerts, want every one of the %d", alerts, n)
	}
}
