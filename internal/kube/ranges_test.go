package kube

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func rangesOf(rs []NodeRange) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s %s", r.Prefix, r.Source))
	}
	return out
}

func TestNodeRanges(t *testing.T) {
	n1 := node("n1", "10.0.0.11")
	n1.Status.Addresses = append(n1.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.11"},
		corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "fd00:10::11"})
	n1.Spec.PodCIDR = "10.244.1.0/24"
	n1.Spec.PodCIDRs = []string{"10.244.1.0/24", "fd00:244:1::/64"}
	n2 := node("n2", "not an address")
	n2.Spec.PodCIDR = "10.244.2.7/24" // the range, masked
	got := rangesOf(NodeRanges([]*corev1.Node{n2, n1}))
	want := []string{
		"10.0.0.11/32 kubernetes node n1", "10.244.1.0/24 kubernetes pod range of node n1",
		"fd00:10::11/128 kubernetes node n1", "fd00:244:1::/64 kubernetes pod range of node n1",
		"10.244.2.0/24 kubernetes pod range of node n2",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

// TestIntegrationNodeRanges reads the nodes' ranges from the real API server and
// follows them as nodes join and leave.
func TestIntegrationNodeRanges(t *testing.T) {
	a := requireAPIServer(t)
	c := a.client(t, adminToken)
	ctx := ctxT(t, 2*time.Minute)
	n1 := node("ranges-n1", "192.0.2.31")
	n1.Spec.PodCIDR, n1.Spec.PodCIDRs = "10.244.31.0/24", []string{"10.244.31.0/24", "fd00:244:31::/64"}
	create(t, ctx, c.CoreV1().Nodes().Create, n1)
	t.Cleanup(func() {
		for _, n := range []string{"ranges-n1", "ranges-n2"} {
			c.CoreV1().Nodes().Delete(context.Background(), n, metav1.DeleteOptions{})
		}
	})
	updates := make(chan *Snapshot, 64)
	d, err := NewDiscovery(DiscoveryConfig{Client: a.api(t, adminToken), Namespace: "ranges", Debounce: 50 * time.Millisecond,
		OnUpdate: func(s *Snapshot) { updates <- s }})
	if err != nil {
		t.Fatal(err)
	}
	dctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(dctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("discovery: %v", err)
		}
	})
	has := func(s *Snapshot, p, source string) bool {
		return slices.ContainsFunc(s.NodeRanges, func(r NodeRange) bool {
			return r.Prefix == netip.MustParsePrefix(p) && r.Source == source
		})
	}
	waitFor(t, updates, func(s *Snapshot) bool {
		return has(s, "192.0.2.31/32", "kubernetes node ranges-n1") && has(s, "10.244.31.0/24", "kubernetes pod range of node ranges-n1") &&
			has(s, "fd00:244:31::/64", "kubernetes pod range of node ranges-n1")
	})
	n2 := node("ranges-n2", "192.0.2.32")
	n2.Spec.PodCIDR = "10.244.32.0/24"
	create(t, ctx, c.CoreV1().Nodes().Create, n2)
	waitFor(t, updates, func(s *Snapshot) bool {
		return has(s, "192.0.2.32/32", "kubernetes node ranges-n2") && has(s, "10.244.32.0/24", "kubernetes pod range of node ranges-n2")
	})
	if err := c.CoreV1().Nodes().Delete(ctx, "ranges-n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	s := waitFor(t, updates, func(s *Snapshot) bool { return !has(s, "192.0.2.31/32", "kubernetes node ranges-n1") })
	if !has(s, "192.0.2.32/32", "kubernetes node ranges-n2") || has(s, "10.244.31.0/24", "kubernetes pod range of node ranges-n1") {
		t.Fatalf("after ranges-n1 left: got %q", rangesOf(s.NodeRanges))
	}
}
