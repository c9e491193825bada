//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/intrusion"
	"github.com/portpatrol/portpatrol/internal/kube/clientset"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// knock connects from namespace att to each port of the victim, closed ports
// refusing at once.
func knock(t *testing.T, att string, ports ...int) {
	t.Helper()
	if err := inNetns(att, func() {
		for _, p := range ports {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("192.0.2.2:%d", p), 200*time.Millisecond); err == nil {
				c.Close()
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
}

// TestReloadIntrusion changes the intrusion section through Daemon.Reload while the
// daemon watches a victim namespace: the new fast score, dry run, ban time and
// allowlist apply without a restart; a reload that fails changes none of them; and
// a ban already in the kernel stays there when dry run and the allowlist come back.
func TestReloadIntrusion(t *testing.T) {
	att, vic := netnsPair(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "pp.yaml")
	section := func(body string) string {
		return fmt.Sprintf("api: {anonymous_read: true}\nhost_watch: {disabled: true}\nintrusion:\n  enabled: true\n  netns: /run/netns/%s\n  fast_window: 1s\n%s", vic, body)
	}
	load := func(body string) *config.Config {
		t.Helper()
		testsvc.WriteFile(t, path, section(body))
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	testsvc.WriteFile(t, path, section("  fast_score: 24\n  ban_time: 5m\n"))
	d, base := startDaemon(t, path)
	waitFor(t, base+"/metrics", `portpatrol_intrusion_available{part="conntrack",reason=""} 1`, "portpatrol_bans_dry_run 1")
	w := d.intrusion
	attacker := netip.MustParseAddr("192.0.2.1")
	fastScans := func() uint64 { return w.guard.Found()[intrusion.KindFastScan] }

	// Seven ports below 1024 weigh 21: under the fast score of 24.
	before := w.source.Events()
	knock(t, att, 1, 2, 3, 4, 5, 6, 7)
	eventually(t, "the seven flows read", func() bool { return w.source.Events() >= before+7 })
	time.Sleep(1200 * time.Millisecond) // past the fast window
	if n := fastScans(); n != 0 {
		t.Fatalf("fast scans at score 21 against 24: got %d, want 0", n)
	}

	// Reload: the default fast score (21), bans enforced for 90 s.
	if err := d.Reload(load("  dry_run: false\n  ban_time: 90s\n  allowlist: [198.51.100.0/24]\n")); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if d.Banner().DryRun() {
		t.Fatal("still dry run after a reload with dry_run: false")
	}
	knock(t, att, 11, 12, 13, 14, 15, 16, 17)
	eventually(t, "the scan found at the reloaded fast score", func() bool { return fastScans() == 1 })
	tbl, err := intrusion.OpenTable("/run/netns/" + vic)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	var inKernel []intrusion.KernelBan
	eventually(t, "the attacker banned in the kernel", func() bool { inKernel, _ = tbl.List(); return len(inKernel) == 1 })
	if k := inKernel[0]; k.Addr != attacker || k.Expires > 90*time.Second || k.Expires < 60*time.Second {
		t.Fatalf("kernel ban: got %+v, want %s with the reloaded 90s", k, attacker)
	}
	waitFor(t, base+"/api/v1/intrusion", `"dry_run":false`, `{"prefix":"198.51.100.0/24","source":"intrusion.allowlist[0] 198.51.100.0/24 at `+path+`:`)

	// A reload that fails (a fast score out of range, as a config built by hand may
	// carry) changes nothing: not the dry run, not the allowlist, not the detector.
	bad := load("  allowlist: [192.0.2.0/24]\n")
	bad.Intrusion.FastScore = 1000
	if err := d.Reload(bad); err == nil || !strings.Contains(err.Error(), "fast score 1000") {
		t.Fatalf("reload with fast score 1000: got %v, want it refused", err)
	}
	if d.Banner().DryRun() {
		t.Fatal("a failed reload turned dry run back on")
	}
	if rule, ok := d.Banner().Allowlisted(attacker); ok {
		t.Fatalf("a failed reload allowlisted the attacker (%s)", rule)
	}
	if got := w.guard.DetectorConfig().FastScore; got != 21 {
		t.Fatalf("fast score after a failed reload: got %d, want 21", got)
	}

	// Dry run again and the attacker allowlisted: the ban in the kernel stays until it
	// expires; a new ban of the attacker is refused with the rule.
	if err := d.Reload(load("  allowlist: [192.0.2.0/24]\n")); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !d.Banner().DryRun() {
		t.Fatal("not dry run after a reload without dry_run")
	}
	if k, err := tbl.List(); err != nil || len(k) != 1 || k[0].Addr != attacker {
		t.Fatalf("kernel ban after the reload: got %+v, %v; want it kept", k, err)
	}
	_, err = d.bansAPI().AddBan(context.Background(), attacker, time.Hour, "test", "alice")
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "allowlisted by intrusion.allowlist[0] 192.0.2.0/24 at "+path) {
		t.Fatalf("a ban of the newly allowlisted attacker: got %v", err)
	}
	if n := w.guard.Sources(); n != 0 {
		t.Fatalf("sources tracked after allowlisting the attacker: got %d, want 0", n)
	}
	waitFor(t, base+"/api/v1/intrusion", `"dry_run":true`, `"source":"intrusion.allowlist[0] 192.0.2.0/24 at `)
}

// TestIntrusionAllowsKubernetesNodes runs the daemon with Kubernetes discovery on a
// clientset and intrusion on in a namespace of the test's: every node's InternalIP
// and pod ranges join the allowlist, shown by /api/v1/intrusion with their source,
// and follow nodes as they join and leave.
func TestIntrusionAllowsKubernetesNodes(t *testing.T) {
	_, vic := netnsPair(t)
	n1 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Spec:   corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24", "fd00:244:1::/64"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.11"}}}}
	client := fake.NewClientset(n1)
	path := filepath.Join(t.TempDir(), "pp.yaml")
	testsvc.WriteFile(t, path, fmt.Sprintf("api: {anonymous_read: true}\nhost_watch: {disabled: true}\n"+
		"kubernetes: {enabled: true, leader_election: false}\nintrusion:\n  enabled: true\n  netns: /run/netns/%s\n", vic))
	d, err := New(Config{Path: path, DataDir: t.TempDir(), KubeClient: clientset.New(client)})
	if err != nil {
		t.Fatal(err)
	}
	base := runDaemon(t, d)
	waitFor(t, base+"/api/v1/intrusion", `{"prefix":"10.0.0.11/32","source":"kubernetes node n1"}`,
		`{"prefix":"10.244.1.0/24","source":"kubernetes pod range of node n1"}`, `{"prefix":"fd00:244:1::/64","source":"kubernetes pod range of node n1"}`)
	_, err = d.bansAPI().AddBan(context.Background(), netip.MustParseAddr("10.244.1.7"), time.Hour, "test", "alice")
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "allowlisted by kubernetes pod range of node n1") {
		t.Fatalf("a ban of a pod address: got %v, want a refusal naming the node's pod range", err)
	}
	ctx := context.Background()
	n2 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}, Spec: corev1.NodeSpec{PodCIDR: "10.244.2.0/24"},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.12"}}}}
	if _, err := client.CoreV1().Nodes().Create(ctx, n2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, base+"/api/v1/intrusion", `{"prefix":"10.0.0.12/32","source":"kubernetes node n2"}`, `{"prefix":"10.244.2.0/24","source":"kubernetes pod range of node n2"}`)
	if err := client.CoreV1().Nodes().Delete(ctx, "n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n1's ranges gone from the allowlist", func() bool {
		_, ok := d.Banner().Allowlisted(netip.MustParseAddr("10.244.1.7"))
		return !ok
	})
	if rule, ok := d.Banner().Allowlisted(netip.MustParseAddr("10.0.0.12")); !ok || rule != "kubernetes node n2" {
		t.Fatalf("n2 after n1 left: got %q, %v", rule, ok)
	}
}
