package kube

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// lintIngresses checks Ingresses against the Services of in: a backend Service that is
// not there or lacks the port, a backend port given by number where the Service names
// that port, and a TLS entry without secretName.
func lintIngresses(in LintInput) []Finding {
	svcs := map[string]*corev1.Service{}
	for _, s := range in.Services {
		svcs[cmp.Or(s.Namespace, "default")+"/"+s.Name] = s
	}
	var fs []Finding
	for _, ing := range in.Ingresses {
		if strings.EqualFold(ing.Annotations[AnnotationEnabled], "false") {
			continue
		}
		ns := cmp.Or(ing.Namespace, "default")
		add := func(rule Rule, sev patrol.Severity, sub, summary, desc string) {
			f := Finding{Rule: rule, Class: patrol.AlertConfig, Severity: sev, Subject: ingressSubject(ns, ing.Name) + sub,
				Summary: summary, Description: desc, Labels: map[string]string{LabelNamespace: ns, LabelIngress: ing.Name}, Active: true}
			if o, ok := in.Origins["Ingress/"+ns+"/"+ing.Name]; ok {
				f.Source = fmt.Sprintf("%s:%d", o.File, o.Line)
			} else if !in.Manifests {
				f.Source = "live"
			}
			fs = append(fs, f)
		}
		where := "in the cluster"
		if in.Manifests {
			where = "in these manifests"
		}
		seen := map[string]bool{}
		check := func(path string, b *networkingv1.IngressBackend) {
			if b == nil || b.Service == nil {
				return // a Resource backend, or none
			}
			bs := b.Service
			port := bs.Port.Name
			if port == "" {
				port = strconv.Itoa(int(bs.Port.Number))
			}
			backend := bs.Name + ":" + port
			if seen[backend] {
				return
			}
			seen[backend] = true
			svc, ok := svcs[ns+"/"+bs.Name]
			if !ok {
				add(RuleIngressBackendMissing, patrol.P1, "/"+backend,
					fmt.Sprintf("Ingress %s/%s routes %s to Service %s, which does not exist %s", ns, ing.Name, path, bs.Name, where),
					"Requests for this path get a 503 (or the controller's default backend). Create the Service in namespace "+ns+
						", or correct the backend's service.name in the Ingress (an Ingress reaches only Services of its own namespace).")
				return
			}
			var named string
			found := false
			for _, p := range svc.Spec.Ports {
				if bs.Port.Name != "" && p.Name == bs.Port.Name || bs.Port.Name == "" && p.Port == bs.Port.Number {
					found, named = true, p.Name
				}
			}
			if !found {
				add(RuleIngressBackendMissing, patrol.P1, "/"+backend,
					fmt.Sprintf("Ingress %s/%s routes %s to port %s of Service %s, which has no such port (it has %s)", ns, ing.Name, path, port, bs.Name, servicePorts(svc)),
					"Requests for this path get a 503 (or the controller's default backend). Point the backend's service.port at one "+
						"of the Service's ports, by name where it has one.")
				return
			}
			if bs.Port.Name == "" && named != "" {
				add(LintIngressNumericPort, patrol.P3, "/"+backend,
					fmt.Sprintf("Ingress %s/%s routes %s to port %d of Service %s by number; the Service names it %q", ns, ing.Name, path, bs.Port.Number, bs.Name, named),
					fmt.Sprintf("Use service.port.name: %s. A name follows the Service when its port number changes; a number "+
						"silently routes to nothing.", named))
			}
		}
		check("its default backend", ing.Spec.DefaultBackend)
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, p := range r.HTTP.Paths {
				check(cmp.Or(r.Host, "*")+cmp.Or(p.Path, "/"), &p.Backend)
			}
		}
		for i, t := range ing.Spec.TLS {
			if t.SecretName != "" {
				continue
			}
			hosts := strings.Join(t.Hosts, ", ")
			if hosts == "" {
				hosts = "every host"
			}
			add(LintIngressTLSNoSecret, patrol.P2, fmt.Sprintf("/tls/%d", i),
				fmt.Sprintf("Ingress %s/%s spec.tls[%d] (%s) has no secretName", ns, ing.Name, i, hosts),
				"Without secretName the controller serves its default certificate (often self-signed, or a wildcard for "+
					"another name), so clients fail the TLS handshake or trust the wrong certificate. Name the Secret of type "+
					"kubernetes.io/tls that holds the certificate for these hosts (or the one cert-manager writes).")
		}
	}
	return fs
}

// servicePorts lists a Service's ports as "http(80), 8443", or "none".
func servicePorts(s *corev1.Service) string {
	var ps []string
	for _, p := range s.Spec.Ports {
		if p.Name != "" {
			ps = append(ps, fmt.Sprintf("%s(%d)", p.Name, p.Port))
		} else {
			ps = append(ps, strconv.Itoa(int(p.Port)))
		}
	}
	if len(ps) == 0 {
		return "none"
	}
	return strings.Join(ps, ", ")
}
