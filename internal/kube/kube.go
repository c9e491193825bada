// Package kube watches Kubernetes through client-go shared informers and turns what it
// sees into probe targets and findings. A port in Kubernetes has several layers — the
// Service's ClusterIP, the EndpointSlices (the live address book of ready pods), each
// node's NodePort, LoadBalancer ingress addresses and Ingress rules — and portpatrol
// probes each of them, so that a finding can say which layer is at fault: a Service
// without ready endpoints (and why), one bad endpoint among good ones, a NodePort that
// answers on some nodes only, a LoadBalancer still pending, an Ingress whose backend is
// missing.
//
// Build joins a set of objects into a Snapshot (pure, used by tests and by `kube lint
// -f`); Discovery keeps a Snapshot current from informers; Tracker turns snapshots and
// probe results into finding transitions for the alert engine; Lint reports exposure
// and hygiene risks; RunLeader elects one replica with a coordination.k8s.io Lease.
package kube

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Annotations a Service may carry to steer portpatrol.
const (
	// AnnotationEnabled set to "false" stops portpatrol from probing the Service or
	// reporting findings about it.
	AnnotationEnabled = "portpatrol.io/enabled"
	// AnnotationProbe names the probe kind: "http" for every port, or per port name
	// "web=http,cache=redis".
	AnnotationProbe = "portpatrol.io/probe"
	// AnnotationModule names a probe module from portpatrol's configuration.
	AnnotationModule = "portpatrol.io/module"
	// AnnotationInterval sets the probe interval, as a Go duration ("30s").
	AnnotationInterval = "portpatrol.io/interval"
	// AnnotationSeverity sets the severity ("P0".."P3") of the Service's findings and
	// of its targets' alerts.
	AnnotationSeverity = "portpatrol.io/severity"
	// AnnotationPath sets the path of HTTP probes ("/healthz"); the default is "/".
	AnnotationPath = "portpatrol.io/path"
	// AnnotationInternal marks a Service as internal ("true") or not ("false") for
	// lint, overriding the guess from its ports and names.
	AnnotationInternal = "portpatrol.io/internal"

	// LabelServiceName is the label by which an EndpointSlice names its Service.
	LabelServiceName = "kubernetes.io/service-name"
)

// Layer is the Kubernetes layer a target probes.
type Layer string

// The layers, from the inside out.
const (
	LayerEndpoint     Layer = "endpoint"     // one ready address of an EndpointSlice
	LayerClusterIP    Layer = "clusterip"    // the Service's virtual IP
	LayerNodePort     Layer = "nodeport"     // one node × the Service's NodePort
	LayerLoadBalancer Layer = "loadbalancer" // a LoadBalancer ingress address
	LayerIngress      Layer = "ingress"      // an Ingress host/path
)

// Target label keys. Every target carries LabelLayer, LabelNamespace and LabelService;
// the others when they apply.
const (
	LabelLayer     = "kube_layer"
	LabelNamespace = "namespace"
	LabelService   = "service"
	LabelPort      = "port"
	LabelPod       = "pod"
	LabelNode      = "node"
	LabelIngress   = "ingress"
	LabelSeverity  = "severity"
)

// Rule names the check behind a Finding.
type Rule string

// Rules of discovery and probing.
const (
	// RuleNoReadyEndpoints: a Service with a selector or slices has no ready endpoint.
	RuleNoReadyEndpoints Rule = "kube_no_ready_endpoints"
	// RuleEndpointFailing: some endpoints of a Service port fail their probe while
	// others pass (one bad pod).
	RuleEndpointFailing Rule = "kube_endpoint_failing"
	// RuleNodePortPartial: a NodePort answers on some nodes and not on others.
	RuleNodePortPartial Rule = "kube_nodeport_partial"
	// RuleLoadBalancerPending: a LoadBalancer Service has no ingress address.
	RuleLoadBalancerPending Rule = "kube_loadbalancer_pending"
	// RuleIngressBackendMissing: an Ingress names a Service or port that does not exist.
	RuleIngressBackendMissing Rule = "kube_ingress_backend_missing"
)

// Lint rules.
const (
	// LintInternalExposed: a database, cache or queue reachable through a NodePort or
	// LoadBalancer.
	LintInternalExposed Rule = "kube_internal_exposed"
	// LintProductionNodePort: a NodePort Service in a namespace labelled production.
	LintProductionNodePort Rule = "kube_production_nodeport"
	// LintUnnamedPort: a multi-port Service with a port that has no name.
	LintUnnamedPort Rule = "kube_unnamed_port"
	// LintNumericTargetPort: targetPort given as a number where the pods name that port.
	LintNumericTargetPort Rule = "kube_numeric_target_port"
	// LintSelectorMatchesNothing: a Service whose selector matches no pod.
	LintSelectorMatchesNothing Rule = "kube_selector_matches_nothing"
	// LintTargetPortNotExposed: a targetPort no container of the selected pods declares.
	LintTargetPortNotExposed Rule = "kube_target_port_not_exposed"
	// LintExternalTrafficCluster: a LoadBalancer or NodePort with
	// externalTrafficPolicy Cluster (client source IPs lost, an extra hop).
	LintExternalTrafficCluster Rule = "kube_external_traffic_cluster"
	// LintIngressNumericPort: an Ingress backend's port by number where the Service
	// names that port. (A backend whose Service or port is missing is
	// RuleIngressBackendMissing, in lint as in discovery.)
	LintIngressNumericPort Rule = "kube_ingress_numeric_port"
	// LintIngressTLSNoSecret: an Ingress TLS entry without secretName.
	LintIngressTLSNoSecret Rule = "kube_ingress_tls_no_secret"
)

// Finding is one fault that Kubernetes discovery, probing or lint found. Its fields
// map one to one onto the alert engine's findings: Class, Rule, Subject, Severity,
// Summary, Description, Labels, Active. A Finding is a value.
type Finding struct {
	Rule     Rule              `json:"rule"`
	Class    patrol.AlertClass `json:"class"`
	Severity patrol.Severity   `json:"-"`
	// Subject is what the finding is about: "kube:NAMESPACE/SERVICE" for a Service,
	// "kube:NAMESPACE/SERVICE:PORT" for one of its ports, "kube:NAMESPACE/ingress/NAME"
	// for an Ingress.
	Subject string `json:"subject"`
	Summary string `json:"summary"`
	// Description explains the layer at fault and how to fix it.
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	// Active is false on the transition that resolves a finding.
	Active bool `json:"active"`
	// Source is where a lint finding was found: "FILE:LINE" of the manifest, "live"
	// otherwise. Empty for discovery findings.
	Source string `json:"source,omitempty"`
}

// Key identifies a finding across snapshots: rule and subject.
func (f Finding) Key() string { return string(f.Rule) + "|" + f.Subject }

// Namespace returns the finding's namespace label.
func (f Finding) Namespace() string { return f.Labels[LabelNamespace] }

func serviceSubject(ns, name string) string { return "kube:" + ns + "/" + name }

func portSubject(ns, name, port string) string { return serviceSubject(ns, name) + ":" + port }

func ingressSubject(ns, name string) string { return "kube:" + ns + "/ingress/" + name }

// sortFindings orders findings by severity, then subject and rule.
func sortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if a.Severity != b.Severity {
			return int(a.Severity) - int(b.Severity)
		}
		if c := strings.Compare(a.Subject, b.Subject); c != 0 {
			return c
		}
		return strings.Compare(string(a.Rule), string(b.Rule))
	})
}

func cloneLabels(m map[string]string) map[string]string { return maps.Clone(m) }

// plural returns "s" unless n is 1.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// portLabel is how a Service port is named in messages: its name, or its number when
// it has none.
func portLabel(name string, port int32) string {
	if name != "" {
		return name
	}
	return fmt.Sprint(port)
}
