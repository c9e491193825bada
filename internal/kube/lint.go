package kube

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Workload is a set of pods as lint sees them: a Pod, or the pod template of a
// Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob.
type Workload struct {
	Kind       string
	Namespace  string
	Name       string
	Labels     map[string]string
	Containers []corev1.Container
}

// LintInput is what Lint reads: Services, the workloads whose pods they may select,
// Ingresses (checked against the Services), and Namespaces (for their labels). Live lint fills Workloads from Pods; manifest lint
// from every workload kind. Origins, when set, maps "Kind/namespace/name" to where the
// object was read ("deploy/app.yaml:12"), for reports.
type LintInput struct {
	Services   []*corev1.Service
	Workloads  []Workload
	Ingresses  []*networkingv1.Ingress
	Namespaces []*corev1.Namespace
	// Manifests is true when the objects come from files rather than the API server:
	// only then can a multi-port Service have an unnamed port.
	Manifests bool
	Origins   map[string]Origin
}

// Origin is where in a file an object was read.
type Origin struct {
	File string
	Line int
}

// productionValues are namespace label values that mark production.
var productionValues = []string{"production", "prod"}

// Lint reports exposure and hygiene risks of Services: internal services (databases,
// caches, queues) exposed through NodePort or LoadBalancer, NodePorts in production
// namespaces, unnamed ports in multi-port Services, numeric targetPorts where the pods
// name the port, named targetPorts no container declares, selectors that match nothing,
// and externalTrafficPolicy Cluster on LoadBalancers; and of Ingresses: backends whose
// Service or port is not among the Services, backend ports by number where the Service
// names the port, and TLS entries without secretName. Findings come sorted, most severe
// first. Services and Ingresses annotated portpatrol.io/enabled: "false" are skipped.
func Lint(in LintInput) []Finding {
	nsLabels := map[string]map[string]string{}
	for _, ns := range in.Namespaces {
		nsLabels[ns.Name] = ns.Labels
	}
	var fs []Finding
	for _, svc := range in.Services {
		if strings.EqualFold(svc.Annotations[AnnotationEnabled], "false") || svc.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		ns := cmp.Or(svc.Namespace, "default")
		add := func(rule Rule, class patrol.AlertClass, sev patrol.Severity, port, summary, desc string) {
			f := Finding{
				Rule: rule, Class: class, Severity: sev,
				Subject: serviceSubject(ns, svc.Name), Summary: summary, Description: desc,
				Labels: map[string]string{LabelNamespace: ns, LabelService: svc.Name}, Active: true,
			}
			if port != "" {
				f.Subject = portSubject(ns, svc.Name, port)
				f.Labels[LabelPort] = port
			}
			if o, ok := in.Origins["Service/"+ns+"/"+svc.Name]; ok {
				f.Source = fmt.Sprintf("%s:%d", o.File, o.Line)
			} else if !in.Manifests {
				f.Source = "live"
			}
			fs = append(fs, f)
		}
		typ := cmp.Or(svc.Spec.Type, corev1.ServiceTypeClusterIP)
		exposed := typ == corev1.ServiceTypeNodePort || typ == corev1.ServiceTypeLoadBalancer

		if exposed {
			if what := internalKind(svc); what != "" {
				add(LintInternalExposed, patrol.AlertSecurity, patrol.P1, "",
					fmt.Sprintf("internal service %s/%s (%s) is exposed through %s", ns, svc.Name, what, typ),
					fmt.Sprintf("This Service (%s) should be reachable only from inside the cluster, but type %s opens it on every node "+
						"(and, for LoadBalancer, to whatever the load balancer faces). Use type ClusterIP and reach it through a "+
						"bastion, kubectl port-forward or a private link; if it must be exposed, restrict "+
						"spec.loadBalancerSourceRanges and annotate the Service %s: \"false\" to record the decision.",
						what, typ, AnnotationInternal))
			}
		}
		if typ == corev1.ServiceTypeNodePort && isProduction(nsLabels[ns]) {
			add(LintProductionNodePort, patrol.AlertSecurity, patrol.P2, "",
				fmt.Sprintf("NodePort Service %s/%s in production namespace %s", ns, svc.Name, ns),
				"A NodePort opens the port on every node's addresses, around any Ingress, WAF or load balancer in front. "+
					"In production, expose it through an Ingress or a LoadBalancer with source ranges instead.")
		}
		if typ == corev1.ServiceTypeLoadBalancer && cmp.Or(svc.Spec.ExternalTrafficPolicy, corev1.ServiceExternalTrafficPolicyCluster) == corev1.ServiceExternalTrafficPolicyCluster {
			add(LintExternalTrafficCluster, patrol.AlertConfig, patrol.P3, "",
				fmt.Sprintf("LoadBalancer %s/%s uses externalTrafficPolicy: Cluster", ns, svc.Name),
				"With Cluster, traffic may take an extra hop between nodes and the pods see a node's address instead of the "+
					"client's, so source-IP allowlists, rate limits and logs lose the client. Set externalTrafficPolicy: Local "+
					"(the load balancer's health checks then send traffic only to nodes with a ready pod).")
		}
		if in.Manifests && len(svc.Spec.Ports) > 1 {
			for i, p := range svc.Spec.Ports {
				if p.Name == "" {
					add(LintUnnamedPort, patrol.AlertConfig, patrol.P3, strconv.Itoa(int(p.Port)),
						fmt.Sprintf("port %d (#%d) of multi-port Service %s/%s has no name", p.Port, i+1, ns, svc.Name),
						"The API server rejects a Service with several ports unless every port is named; EndpointSlices and "+
							"Ingresses refer to ports by name. Name it after its protocol (http, grpc, metrics…).")
				}
			}
		}
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		var selected []Workload
		for _, w := range in.Workloads {
			if cmp.Or(w.Namespace, "default") == ns && sel.Matches(labels.Set(w.Labels)) {
				selected = append(selected, w)
			}
		}
		if len(selected) == 0 {
			what := "pod"
			if in.Manifests {
				what = "pod template in these manifests"
			}
			add(LintSelectorMatchesNothing, patrol.AlertConfig, patrol.P2, "",
				fmt.Sprintf("selector %s of Service %s/%s matches no %s", selectorString(svc.Spec.Selector), ns, svc.Name, what),
				"A Service whose selector matches nothing has no endpoints: every connection to it fails. Compare "+
					"spec.selector with the pod template labels of the workload meant to serve it.")
			continue
		}
		for _, p := range svc.Spec.Ports {
			name := portLabel(p.Name, p.Port)
			proto := cmp.Or(p.Protocol, corev1.ProtocolTCP)
			tp := p.TargetPort
			if tp.Type == intstr.Int && tp.IntVal == 0 {
				tp = intstr.FromInt32(p.Port)
			}
			if tp.Type == intstr.String {
				if !workloadsDeclare(selected, tp.StrVal, 0, proto) {
					add(LintTargetPortNotExposed, patrol.AlertConfig, patrol.P1, name,
						fmt.Sprintf("targetPort %q of Service %s/%s port %s is not a named port of any selected container", tp.StrVal, ns, svc.Name, name),
						fmt.Sprintf("No container of %s declares a port named %q, so this port has no endpoints. Name the "+
							"container port or point targetPort at the right name or number.", workloadNames(selected), tp.StrVal))
				}
				continue
			}
			if named := namedPort(selected, tp.IntVal, proto); named != "" {
				add(LintNumericTargetPort, patrol.AlertConfig, patrol.P3, name,
					fmt.Sprintf("Service %s/%s port %s targets port %d by number; the pods name it %q", ns, svc.Name, name, tp.IntVal, named),
					fmt.Sprintf("Use targetPort: %s. A named targetPort follows the container when its port number changes; "+
						"a number silently breaks the Service.", named))
			}
		}
	}
	fs = append(fs, lintIngresses(in)...)
	sortFindings(fs)
	return fs
}

// internalKind says which kind of internal service a Service looks like (the
// description of a well-known service, patrol.Services), or "": by the
// portpatrol.io/internal annotation, then each port's appProtocol or name (whole, then
// its protocol prefix: "redis-sentinel", "mysql-primary" → mysql), port and numeric
// targetPort.
func internalKind(svc *corev1.Service) string {
	switch strings.ToLower(svc.Annotations[AnnotationInternal]) {
	case "false":
		return ""
	case "true":
		return "marked " + AnnotationInternal
	}
	for _, p := range svc.Spec.Ports {
		for _, s := range []string{strings.ToLower(deref(p.AppProtocol)), strings.ToLower(p.Name)} {
			prefix, _, _ := strings.Cut(s, "-")
			for _, name := range []string{s, prefix} {
				if is, ok := patrol.ServiceByName(name); ok && is.Internal {
					return is.Desc
				}
			}
		}
		proto := string(cmp.Or(p.Protocol, corev1.ProtocolTCP))
		if is, ok := internalPort(proto, p.Port); ok {
			return is.Desc
		}
		if p.TargetPort.Type == intstr.Int {
			if is, ok := internalPort(proto, p.TargetPort.IntVal); ok {
				return is.Desc
			}
		}
	}
	return ""
}

// internalPort returns the well-known service on a Service's port when it is internal.
func internalPort(proto string, port int32) (patrol.Service, bool) {
	if port < 1 || port > 65535 {
		return patrol.Service{}, false
	}
	is, ok := patrol.ServiceByPort(proto, uint16(port))
	return is, ok && is.Internal
}

func isProduction(l map[string]string) bool {
	for k, v := range l {
		k, v = strings.ToLower(k), strings.ToLower(v)
		if (k == "production" || k == "prod") && v == "true" {
			return true
		}
		if slices.Contains(productionValues, v) && (strings.Contains(k, "env") || strings.Contains(k, "stage") || strings.Contains(k, "tier")) {
			return true
		}
	}
	return false
}

func workloadsDeclare(ws []Workload, name string, number int32, proto corev1.Protocol) bool {
	for _, w := range ws {
		for _, c := range w.Containers {
			for _, cp := range c.Ports {
				if cmp.Or(cp.Protocol, corev1.ProtocolTCP) != proto {
					continue
				}
				if (name != "" && cp.Name == name) || (name == "" && cp.ContainerPort == number) {
					return true
				}
			}
		}
	}
	return false
}

func namedPort(ws []Workload, number int32, proto corev1.Protocol) string {
	for _, w := range ws {
		for _, c := range w.Containers {
			for _, cp := range c.Ports {
				if cp.ContainerPort == number && cp.Name != "" && cmp.Or(cp.Protocol, corev1.ProtocolTCP) == proto {
					return cp.Name
				}
			}
		}
	}
	return ""
}

func workloadNames(ws []Workload) string {
	var n []string
	for _, w := range ws {
		n = append(n, w.Kind+"/"+w.Name)
	}
	if len(n) > 3 {
		n = append(n[:3], fmt.Sprintf("%d more", len(ws)-3))
	}
	return strings.Join(n, ", ")
}

// WorkloadsFromPods turns pods into lint workloads.
func WorkloadsFromPods(pods []*corev1.Pod) []Workload {
	ws := make([]Workload, 0, len(pods))
	for _, p := range pods {
		ws = append(ws, Workload{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, Labels: p.Labels, Containers: p.Spec.Containers})
	}
	return ws
}
