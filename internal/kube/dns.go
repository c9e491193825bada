package kube

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Rules of the cluster DNS check.
const (
	// RuleDNSMismatch: the cluster DNS answers a Service's name with addresses other
	// than its ClusterIPs.
	RuleDNSMismatch Rule = "kube_dns_mismatch"
	// RuleDNSNoAnswer: the cluster DNS has no record for a Service's name, or does not
	// answer.
	RuleDNSNoAnswer Rule = "kube_dns_no_answer"
)

// DNSCheck configures CheckDNS. The zero Server switches the check off.
type DNSCheck struct {
	// Server is the cluster DNS service's address, usually the ClusterIP of
	// kube-system/kube-dns: "10.96.0.10" or "10.96.0.10:53".
	Server string
	// Domain is the cluster domain; "" means cluster.local.
	Domain string
	// Timeout bounds each query; zero means 2 s.
	Timeout time.Duration
}

// DNSName returns a Service's cluster DNS name, <name>.<namespace>.svc.<domain>.
func DNSName(ns, name, domain string) string {
	return name + "." + cmp.Or(ns, "default") + ".svc." + strings.TrimSuffix(cmp.Or(domain, "cluster.local"), ".")
}

// CheckDNS resolves the cluster DNS name of every Service that has a ClusterIP (not
// headless, not ExternalName) against c.Server, once per IP family the Service has, and
// reports a name with no answer and one whose answer is not the Service's ClusterIPs.
// Services annotated portpatrol.io/enabled: "false" are skipped.
func CheckDNS(ctx context.Context, svcs []*corev1.Service, c DNSCheck) []Finding {
	server := c.Server
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "53")
	}
	cl := &dns.Client{Net: "udp", Timeout: cmp.Or(c.Timeout, 2*time.Second)}
	var fs []Finding
	for _, svc := range svcs {
		if strings.EqualFold(svc.Annotations[AnnotationEnabled], "false") || svc.Spec.Type == corev1.ServiceTypeExternalName ||
			svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		ns := cmp.Or(svc.Namespace, "default")
		name := DNSName(ns, svc.Name, c.Domain)
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 {
			ips = []string{svc.Spec.ClusterIP}
		}
		add := func(rule Rule, summary, desc string) {
			fs = append(fs, Finding{Rule: rule, Class: patrol.AlertConfig, Severity: patrol.P1, Subject: serviceSubject(ns, svc.Name),
				Summary: summary, Description: desc, Labels: map[string]string{LabelNamespace: ns, LabelService: svc.Name}, Active: true})
		}
		for _, ip := range ips {
			want := net.ParseIP(ip)
			if want == nil {
				continue
			}
			qtype, rr := dns.TypeA, "A"
			if want.To4() == nil {
				qtype, rr = dns.TypeAAAA, "AAAA"
			}
			got, rcode, err := lookup(ctx, cl, server, name, qtype)
			switch {
			case err != nil:
				add(RuleDNSNoAnswer, fmt.Sprintf("cluster DNS %s did not answer %s %s: %v", server, rr, name, err),
					"Pods resolve Services through this server; if it does not answer, every client of the Service fails to "+
						"connect by name. Check the DNS pods (kubectl -n kube-system get pods -l k8s-app=kube-dns) and that "+
						"this is the cluster DNS Service's ClusterIP.")
			case len(got) == 0:
				add(RuleDNSNoAnswer, fmt.Sprintf("cluster DNS %s has no %s record for %s (%s); the Service's ClusterIP is %s", server, rr, name, rcode, ip),
					"Clients that connect by name fail although the Service exists. The DNS server may be serving another "+
						"cluster domain (check --cluster-domain and the kubelet's clusterDomain), or may not watch this "+
						"namespace (CoreDNS kubernetes plugin: namespaces, RBAC).")
			case !slices.ContainsFunc(got, func(a net.IP) bool { return a.Equal(want) }) || len(got) > 1:
				add(RuleDNSMismatch, fmt.Sprintf("cluster DNS %s answers %s %s with %s; the Service's ClusterIP is %s", server, rr, name, ipList(got), ip),
					"Clients that connect by name reach another address than the Service. Look for a stale or hand-made "+
						"record (CoreDNS hosts, rewrite or file plugins, a stub domain) that shadows the Service, or a DNS "+
						"cache that missed the Service being recreated.")
			}
		}
	}
	sortFindings(fs)
	return fs
}

// lookup asks server for name's records of qtype and returns the addresses and rcode.
func lookup(ctx context.Context, cl *dns.Client, server, name string, qtype uint16) ([]net.IP, string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	r, _, err := cl.ExchangeContext(ctx, m, server)
	if err != nil {
		return nil, "", err
	}
	var ips []net.IP
	for _, a := range r.Answer {
		switch v := a.(type) {
		case *dns.A:
			if qtype == dns.TypeA {
				ips = append(ips, v.A)
			}
		case *dns.AAAA:
			if qtype == dns.TypeAAAA {
				ips = append(ips, v.AAAA)
			}
		}
	}
	return ips, dns.RcodeToString[r.Rcode], nil
}

func ipList(ips []net.IP) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}
