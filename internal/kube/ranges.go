package kube

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// NodeRange is an address range that belongs to the cluster's own machinery: a
// node's InternalIP, or the pod range the node hands its pods' addresses from.
type NodeRange struct {
	Node   string
	Prefix netip.Prefix
	// Source says where the range comes from, for the allowlist it joins:
	// "kubernetes node n1" or "kubernetes pod range of node n1".
	Source string
}

// NodeRanges returns every node's InternalIP addresses and spec.podCIDRs
// (spec.podCIDR when podCIDRs is empty), sorted by node and then by range. Values
// that do not parse are skipped.
func NodeRanges(nodes []*corev1.Node) []NodeRange {
	var out []NodeRange
	for _, n := range nodes {
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				ip = ip.Unmap()
				out = append(out, NodeRange{Node: n.Name, Prefix: netip.PrefixFrom(ip, ip.BitLen()), Source: "kubernetes node " + n.Name})
			}
		}
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		for _, c := range cidrs {
			if p, err := netip.ParsePrefix(c); err == nil {
				out = append(out, NodeRange{Node: n.Name, Prefix: p.Masked(), Source: "kubernetes pod range of node " + n.Name})
			}
		}
	}
	slices.SortFunc(out, func(a, b NodeRange) int {
		return cmp.Or(strings.Compare(a.Node, b.Node), a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	return slices.CompactFunc(out, func(a, b NodeRange) bool { return a == b })
}
