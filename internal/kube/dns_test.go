package kube

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// clusterDNS serves records from a map of name to addresses on a real UDP socket on
// 127.0.0.1; names it does not hold answer NXDOMAIN, and "slow." names never answer.
func clusterDNS(t *testing.T, zone map[string][]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		name := q.Question[0].Name
		if strings.HasPrefix(name, "slow.") {
			return
		}
		m := new(dns.Msg)
		m.SetReply(q)
		addrs, ok := zone[name]
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
		for _, a := range addrs {
			ip := net.ParseIP(a)
			hdr := dns.RR_Header{Name: name, Class: dns.ClassINET, Ttl: 5}
			switch {
			case ip.To4() != nil && q.Question[0].Qtype == dns.TypeA:
				hdr.Rrtype = dns.TypeA
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip})
			case ip.To4() == nil && q.Question[0].Qtype == dns.TypeAAAA:
				hdr.Rrtype = dns.TypeAAAA
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip})
			}
		}
		_ = w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: h}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func withClusterIPs(ips ...string) svcOpt {
	return func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = ips[0], ips }
}

func TestCheckDNS(t *testing.T) {
	server := clusterDNS(t, map[string][]string{
		"web.shop.svc.cluster.local.":   {"10.96.1.10"},
		"api.shop.svc.cluster.local.":   {"10.96.7.7"},                // stale: the Service was recreated
		"dual.shop.svc.cluster.local.":  {"10.96.1.12", "fd00::c"},    // both families right
		"dual6.shop.svc.cluster.local.": {"10.96.1.13", "fd00::dead"}, // the AAAA is wrong
	})
	p := withPort("http", 80, intstr.FromInt32(8080))
	headless := service("shop", "headless", nil, p)
	headless.Spec.ClusterIP = corev1.ClusterIPNone
	off := service("shop", "off", nil, p, withClusterIPs("10.96.1.99"))
	off.Annotations = map[string]string{AnnotationEnabled: "false"}
	svcs := []*corev1.Service{
		service("shop", "web", nil, p, withClusterIPs("10.96.1.10")),
		service("shop", "api", nil, p, withClusterIPs("10.96.1.11")),
		service("shop", "cache", nil, p, withClusterIPs("10.96.1.14")), // no record
		service("shop", "dual", nil, p, withClusterIPs("10.96.1.12", "fd00::c")),
		service("shop", "dual6", nil, p, withClusterIPs("10.96.1.13", "fd00::d")),
		headless, off,
	}
	fs := CheckDNS(t.Context(), svcs, DNSCheck{Server: server})
	var got []string
	for _, f := range fs {
		got = append(got, string(f.Rule)+" "+f.Subject+": "+f.Summary)
	}
	want := []string{
		"kube_dns_mismatch kube:shop/api: cluster DNS " + server + " answers A api.shop.svc.cluster.local with 10.96.7.7; the Service's ClusterIP is 10.96.1.11",
		"kube_dns_no_answer kube:shop/cache: cluster DNS " + server + " has no A record for cache.shop.svc.cluster.local (NXDOMAIN); the Service's ClusterIP is 10.96.1.14",
		"kube_dns_mismatch kube:shop/dual6: cluster DNS " + server + " answers AAAA dual6.shop.svc.cluster.local with fd00::dead; the Service's ClusterIP is fd00::d",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}

	// Another cluster domain: every name is missing.
	if fs := CheckDNS(t.Context(), svcs[:1], DNSCheck{Server: server, Domain: "corp.internal"}); len(fs) != 1 ||
		!strings.Contains(fs[0].Summary, "no A record for web.shop.svc.corp.internal") {
		t.Errorf("other domain: got %+v", fs)
	}
}

// A server that never answers is a finding, within the timeout.
func TestCheckDNSNoAnswer(t *testing.T) {
	server := clusterDNS(t, nil)
	svc := service("shop", "slow", nil, withPort("http", 80, intstr.FromInt32(8080)), withClusterIPs("10.96.1.10"))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	fs := CheckDNS(ctx, []*corev1.Service{svc}, DNSCheck{Server: server, Timeout: 200 * time.Millisecond})
	if len(fs) != 1 || fs[0].Rule != RuleDNSNoAnswer || !strings.Contains(fs[0].Summary, "did not answer A slow.shop.svc.cluster.local") {
		t.Errorf("silent server: got %+v", fs)
	}
}
