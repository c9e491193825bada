package kube

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Objects is the set of Kubernetes objects a Snapshot is built from. Build reads them
// and never changes them.
type Objects struct {
	Services       []*corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
	Pods           []*corev1.Pod
	Nodes          []*corev1.Node
	Ingresses      []*networkingv1.Ingress
}

// Options steer Build. The zero value probes every layer of every node, reads node
// addresses of type InternalIP and waits 5 minutes before calling a LoadBalancer
// pending.
type Options struct {
	// NodeAddressType is the node address NodePort targets use; empty means
	// InternalIP (falling back to ExternalIP when a node has none).
	NodeAddressType corev1.NodeAddressType
	// Node, when set, limits NodePort targets to that node (the DaemonSet mode: each
	// replica probes its own node).
	Node string
	// LoadBalancerGrace is how long a LoadBalancer may wait for an address before it
	// is reported pending; zero means 5 minutes.
	LoadBalancerGrace time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Snapshot is the joined view of a cluster at one moment: every Service with its
// ports, EndpointSlices, endpoints, selected pods and NodePorts; every Ingress; the
// targets to probe; and the findings that need no probe. A Snapshot is immutable once
// built and safe for concurrent reads.
type Snapshot struct {
	Services  []ServiceView
	Ingresses []IngressView
	// Targets are the probe targets of every layer, one per address (two Services
	// sharing a backend share its target), sorted by ID.
	Targets []patrol.Target
	// Findings are the faults visible in the objects alone: no ready endpoints,
	// LoadBalancer pending, Ingress backend missing.
	Findings []Finding
	// NodeRanges are the nodes' InternalIPs and pod ranges; see NodeRanges.
	NodeRanges []NodeRange
}

// ServiceView is one Service as portpatrol sees it.
type ServiceView struct {
	Namespace string
	Name      string
	Type      corev1.ServiceType
	ClusterIP string // "" or "None" for headless Services
	Selector  map[string]string
	// Disabled is true when the Service carries portpatrol.io/enabled: "false"; it
	// then has no targets and no findings.
	Disabled bool
	// Severity is the severity of the Service's findings (annotation
	// portpatrol.io/severity); SeveritySet says whether the annotation was given.
	Severity    patrol.Severity
	SeveritySet bool
	Ports       []PortView
	Slices      []SliceView
	// Pods are the pods the selector matches, sorted by name.
	Pods []PodView
	// LoadBalancer holds the LoadBalancer ingress addresses (IP or host name).
	LoadBalancer []string
}

// PortView is one port of a Service and everything behind it.
type PortView struct {
	Name        string
	Port        int32
	Protocol    corev1.Protocol
	TargetPort  intstr.IntOrString
	NodePort    int32
	AppProtocol string
	// Scheme is the probe kind ("tcp", "http", "redis"…); empty when the port is not
	// probed (UDP or SCTP without a portpatrol.io/probe annotation).
	Scheme string
	// ClusterIPTarget is the ID of the ClusterIP target; empty for headless Services.
	ClusterIPTarget string
	Endpoints       []EndpointView
	NodePorts       []NodePortView
	// LoadBalancerTargets are the IDs of the LoadBalancer ingress targets.
	LoadBalancerTargets []string
}

// Ready counts the port's ready endpoints.
func (p PortView) Ready() int {
	n := 0
	for _, e := range p.Endpoints {
		if e.Ready {
			n++
		}
	}
	return n
}

// EndpointView is one address of an EndpointSlice for one Service port.
type EndpointView struct {
	Slice       string
	Address     string
	Port        int32
	Pod         string // from targetRef, when it names a Pod
	Node        string
	Ready       bool
	Serving     bool
	Terminating bool
	// Target is the probe target's ID; empty unless Ready.
	Target string
}

// NodePortView is one node × a Service's NodePort.
type NodePortView struct {
	Node    string
	Address string
	Target  string
}

// SliceView summarises one EndpointSlice of a Service.
type SliceView struct {
	Name        string
	AddressType discoveryv1.AddressType
	Endpoints   int
	Ready       int
	Terminating int
}

// PodView is one pod a Service's selector matches.
type PodView struct {
	Name  string
	Node  string
	IP    string
	Phase corev1.PodPhase
	Ready bool
	// Reason says why a pod is not ready: "Pending: Unschedulable", "CrashLoopBackOff"…
	Reason string
	// Ports are the container ports the pod declares.
	Ports []corev1.ContainerPort
}

// IngressView is one Ingress.
type IngressView struct {
	Namespace string
	Name      string
	// Targets are the IDs of its host/path targets.
	Targets []string
	// Backends are the Services it routes to, "SERVICE:PORT".
	Backends []string
}

// Find returns the view of namespace/name.
func (s *Snapshot) Find(namespace, name string) (ServiceView, bool) {
	for _, v := range s.Services {
		if v.Namespace == namespace && v.Name == name {
			return v, true
		}
	}
	return ServiceView{}, false
}

// targetSet collects targets, one per ID.
type targetSet struct {
	byID map[string]patrol.Target
}

func (ts *targetSet) add(t patrol.Target) {
	if _, ok := ts.byID[t.ID]; !ok {
		ts.byID[t.ID] = t
	}
}

func (ts *targetSet) sorted() []patrol.Target {
	out := make([]patrol.Target, 0, len(ts.byID))
	for _, t := range ts.byID {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b patrol.Target) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Build joins objs into a Snapshot: EndpointSlices to their Service by the
// kubernetes.io/service-name label and slice ports to Service ports by name; pods by
// the Service's selector; NodePorts to every node. It never fails: objects that do not
// fit are left out or become findings.
func Build(objs Objects, opts Options) *Snapshot {
	snap := &Snapshot{}
	ts := &targetSet{byID: map[string]patrol.Target{}}

	slicesBySvc := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range objs.EndpointSlices {
		name := s.Labels[LabelServiceName]
		if name == "" {
			continue
		}
		k := s.Namespace + "/" + name
		slicesBySvc[k] = append(slicesBySvc[k], s)
	}
	podsByNS := map[string][]*corev1.Pod{}
	for _, p := range objs.Pods {
		podsByNS[p.Namespace] = append(podsByNS[p.Namespace], p)
	}
	nodes := slices.Clone(objs.Nodes)
	slices.SortFunc(nodes, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	snap.NodeRanges = NodeRanges(nodes)
	svcs := slices.Clone(objs.Services)
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	svcByKey := map[string]*corev1.Service{}
	for _, svc := range svcs {
		svcByKey[svc.Namespace+"/"+svc.Name] = svc
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		v := buildService(svc, slicesBySvc[svc.Namespace+"/"+svc.Name], podsByNS[svc.Namespace], nodes, &opts, ts)
		if !v.Disabled {
			snap.Findings = append(snap.Findings, serviceFindings(&v, svc, &opts)...)
		}
		snap.Services = append(snap.Services, v)
	}
	ings := slices.Clone(objs.Ingresses)
	slices.SortFunc(ings, func(a, b *networkingv1.Ingress) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	for _, ing := range ings {
		v, fs := buildIngress(ing, svcByKey, ts)
		snap.Ingresses = append(snap.Ingresses, v)
		snap.Findings = append(snap.Findings, fs...)
	}
	snap.Targets = ts.sorted()
	sortFindings(snap.Findings)
	return snap
}

func buildService(svc *corev1.Service, sl []*discoveryv1.EndpointSlice, nsPods []*corev1.Pod, nodes []*corev1.Node, opts *Options, ts *targetSet) ServiceView {
	v := ServiceView{
		Namespace: svc.Namespace,
		Name:      svc.Name,
		Type:      svc.Spec.Type,
		ClusterIP: svc.Spec.ClusterIP,
		Selector:  svc.Spec.Selector,
		Disabled:  strings.EqualFold(strings.TrimSpace(svc.Annotations[AnnotationEnabled]), "false"),
	}
	if v.Type == "" {
		v.Type = corev1.ServiceTypeClusterIP
	}
	if s, err := patrol.ParseSeverity(strings.TrimSpace(svc.Annotations[AnnotationSeverity])); err == nil {
		v.Severity, v.SeveritySet = s, true
	}
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			v.LoadBalancer = append(v.LoadBalancer, in.IP)
		} else if in.Hostname != "" {
			v.LoadBalancer = append(v.LoadBalancer, in.Hostname)
		}
	}
	if len(svc.Spec.Selector) > 0 {
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		for _, p := range nsPods {
			if sel.Matches(labels.Set(p.Labels)) {
				v.Pods = append(v.Pods, podView(p))
			}
		}
		slices.SortFunc(v.Pods, func(a, b PodView) int { return strings.Compare(a.Name, b.Name) })
	}
	sl = slices.Clone(sl)
	slices.SortFunc(sl, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range sl {
		sv := SliceView{Name: s.Name, AddressType: s.AddressType}
		for _, e := range s.Endpoints {
			sv.Endpoints++
			if endpointReady(e) {
				sv.Ready++
			}
			if e.Conditions.Terminating != nil && *e.Conditions.Terminating {
				sv.Terminating++
			}
		}
		v.Slices = append(v.Slices, sv)
	}
	cfg := parseAnnotations(svc)
	for _, sp := range svc.Spec.Ports {
		p := PortView{
			Name:        sp.Name,
			Port:        sp.Port,
			Protocol:    cmp.Or(sp.Protocol, corev1.ProtocolTCP),
			TargetPort:  sp.TargetPort,
			NodePort:    sp.NodePort,
			AppProtocol: deref(sp.AppProtocol),
		}
		p.Scheme = probeScheme(cfg.probe, p)
		base := map[string]string{
			LabelNamespace: svc.Namespace,
			LabelService:   svc.Name,
			LabelPort:      portLabel(sp.Name, sp.Port),
		}
		if v.SeveritySet {
			base[LabelSeverity] = v.Severity.String()
		}
		mk := func(layer Layer, host string, port int32, extra map[string]string, public bool) string {
			if v.Disabled || p.Scheme == "" || host == "" || port == 0 {
				return ""
			}
			t, ok := makeTarget(p.Scheme, host, port, cfg, public)
			if !ok {
				return ""
			}
			t.Labels = cloneLabels(base)
			t.Labels[LabelLayer] = string(layer)
			for k, x := range extra {
				t.Labels[k] = x
			}
			ts.add(t)
			return t.ID
		}
		if v.ClusterIP != "" && v.ClusterIP != corev1.ClusterIPNone {
			p.ClusterIPTarget = mk(LayerClusterIP, v.ClusterIP, sp.Port, nil, false)
		}
		for _, s := range sl {
			port, ok := slicePort(s, sp)
			if !ok {
				continue
			}
			for _, e := range s.Endpoints {
				ready := endpointReady(e)
				ev := EndpointView{
					Slice:       s.Name,
					Port:        port,
					Node:        deref(e.NodeName),
					Ready:       ready,
					Serving:     e.Conditions.Serving == nil && ready || e.Conditions.Serving != nil && *e.Conditions.Serving,
					Terminating: e.Conditions.Terminating != nil && *e.Conditions.Terminating,
				}
				if e.TargetRef != nil && e.TargetRef.Kind == "Pod" {
					ev.Pod = e.TargetRef.Name
				}
				for _, addr := range e.Addresses {
					ev.Address = addr
					ev.Target = ""
					if ready {
						extra := map[string]string{}
						if ev.Pod != "" {
							extra[LabelPod] = ev.Pod
						}
						if ev.Node != "" {
							extra[LabelNode] = ev.Node
						}
						ev.Target = mk(LayerEndpoint, addr, port, extra, false)
					}
					p.Endpoints = append(p.Endpoints, ev)
				}
			}
		}
		if sp.NodePort != 0 {
			for _, n := range nodes {
				if opts.Node != "" && n.Name != opts.Node {
					continue
				}
				addr := nodeAddress(n, opts.NodeAddressType)
				if addr == "" {
					continue
				}
				p.NodePorts = append(p.NodePorts, NodePortView{
					Node:    n.Name,
					Address: addr,
					Target:  mk(LayerNodePort, addr, sp.NodePort, map[string]string{LabelNode: n.Name}, false),
				})
			}
		}
		for _, lb := range v.LoadBalancer {
			if id := mk(LayerLoadBalancer, lb, sp.Port, nil, true); id != "" {
				p.LoadBalancerTargets = append(p.LoadBalancerTargets, id)
			}
		}
		v.Ports = append(v.Ports, p)
	}
	return v
}

// endpointReady reads the ready condition; nil means ready, as the API documents.
func endpointReady(e discoveryv1.Endpoint) bool {
	return e.Conditions.Ready == nil || *e.Conditions.Ready
}

// slicePort returns the port number a slice gives for a Service port: the slice port
// with the same name and protocol.
func slicePort(s *discoveryv1.EndpointSlice, sp corev1.ServicePort) (int32, bool) {
	proto := cmp.Or(sp.Protocol, corev1.ProtocolTCP)
	for _, p := range s.Ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if deref(p.Name) == sp.Name && pp == proto && p.Port != nil {
			return *p.Port, true
		}
	}
	return 0, false
}

func nodeAddress(n *corev1.Node, typ corev1.NodeAddressType) string {
	want := []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP}
	if typ != "" {
		want = []corev1.NodeAddressType{typ}
	}
	for _, w := range want {
		for _, a := range n.Status.Addresses {
			if a.Type == w && a.Address != "" {
				return a.Address
			}
		}
	}
	return ""
}

func podView(p *corev1.Pod) PodView {
	v := PodView{Name: p.Name, Node: p.Spec.NodeName, IP: p.Status.PodIP, Phase: p.Status.Phase}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			v.Ready = true
		}
	}
	for _, c := range p.Spec.Containers {
		v.Ports = append(v.Ports, c.Ports...)
	}
	if p.DeletionTimestamp != nil {
		v.Ready = false
		v.Reason = "Terminating"
		return v
	}
	if !v.Ready {
		v.Reason = podNotReadyReason(p)
	}
	return v
}

// podNotReadyReason says in a few words why a pod is not ready.
func podNotReadyReason(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return strings.TrimSpace("unschedulable " + c.Message)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return fmt.Sprintf("container %s %s", cs.Name, w.Reason)
		}
		if t := cs.State.Terminated; t != nil {
			return fmt.Sprintf("container %s terminated (%s, exit %d)", cs.Name, t.Reason, t.ExitCode)
		}
		if cs.State.Running != nil && !cs.Ready {
			return fmt.Sprintf("container %s running but failing its readiness probe", cs.Name)
		}
	}
	switch p.Status.Phase {
	case corev1.PodPending, "":
		if p.Spec.NodeName == "" {
			return "Pending, not scheduled"
		}
		return "Pending"
	case corev1.PodFailed, corev1.PodSucceeded:
		return string(p.Status.Phase)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue && c.Reason != "" {
			return strings.TrimSpace(c.Reason + " " + c.Message)
		}
	}
	return "Ready condition is not True"
}

// serviceAnnotations are the parsed portpatrol.io annotations of a Service.
type serviceAnnotations struct {
	probe    map[string]string // port name → scheme; "" → every port
	module   string
	interval time.Duration
	path     string
}

func parseAnnotations(svc *corev1.Service) serviceAnnotations {
	a := serviceAnnotations{probe: map[string]string{}}
	if v := strings.TrimSpace(svc.Annotations[AnnotationProbe]); v != "" {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if k, s, ok := strings.Cut(part, "="); ok {
				a.probe[strings.TrimSpace(k)] = strings.ToLower(strings.TrimSpace(s))
			} else if part != "" {
				a.probe[""] = strings.ToLower(part)
			}
		}
	}
	a.module = strings.TrimSpace(svc.Annotations[AnnotationModule])
	if d, err := time.ParseDuration(strings.TrimSpace(svc.Annotations[AnnotationInterval])); err == nil && d > 0 {
		a.interval = d
	}
	a.path = strings.TrimSpace(svc.Annotations[AnnotationPath])
	return a
}

// appProtocols maps appProtocol values (IANA names and kubernetes.io/ ones) to probe
// kinds.
var appProtocols = map[string]string{
	"http": "http", "https": "https", "kubernetes.io/h2c": "http", "kubernetes.io/ws": "http",
	"kubernetes.io/wss": "https", "h2c": "http", "http2": "http", "grpc": "grpc",
	"redis": "redis", "mysql": "mysql", "mariadb": "mysql", "postgres": "postgres",
	"postgresql": "postgres", "ssh": "ssh", "smtp": "smtp", "nats": "nats", "amqp": "amqp",
	"mqtt": "mqtt", "tls": "tls", "tcp": "tcp",
}

// probeScheme picks the probe kind of a Service port: the portpatrol.io/probe
// annotation (per port name, then for every port), the appProtocol, then the port
// name's protocol prefix ("http-metrics" → http, Istio style), then tcp. UDP and SCTP
// ports are probed only when the annotation says how.
func probeScheme(ann map[string]string, p PortView) string {
	s, ok := ann[p.Name]
	if !ok || p.Name == "" {
		s, ok = ann[""]
	}
	if ok {
		if s == "none" || s == "off" {
			return ""
		}
		if s == "postgresql" {
			s = "postgres"
		}
		if _, known := patrol.Schemes[s]; known {
			return s
		}
	}
	if p.Protocol != corev1.ProtocolTCP {
		return ""
	}
	if s, ok := appProtocols[strings.ToLower(p.AppProtocol)]; ok {
		return s
	}
	prefix, _, _ := strings.Cut(strings.ToLower(p.Name), "-")
	if s, ok := appProtocols[prefix]; ok && prefix != "tcp" {
		return s
	}
	return "tcp"
}

// makeTarget builds the target scheme://host:port with the Service's path, interval
// and module. In-cluster layers (public false) skip certificate verification: a pod or
// node address is never the name a certificate is issued for, and those layers test
// reachability; LoadBalancer and Ingress targets verify.
func makeTarget(scheme, host string, port int32, a serviceAnnotations, public bool) (patrol.Target, bool) {
	q := url.Values{}
	path := ""
	if scheme == "http" || scheme == "https" {
		path = a.path
		if scheme == "https" && !public {
			q.Set("insecure", "true")
		}
	}
	return newTarget(scheme, host, port, path, q, a)
}

func newTarget(scheme, host string, port int32, path string, q url.Values, a serviceAnnotations) (patrol.Target, bool) {
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	s := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(int(port))) + (&url.URL{Path: path}).EscapedPath()
	if len(q) > 0 {
		var parts []string
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range q {
				if !yield(k) {
					return
				}
			}
		}) {
			for _, v := range q[k] {
				parts = append(parts, url.PathEscape(k)+"="+url.PathEscape(v))
			}
		}
		s += "?" + strings.Join(parts, "&")
	}
	t, err := patrol.ParseTarget(s)
	if err != nil {
		return patrol.Target{}, false
	}
	t.Interval = a.interval
	t.Module = a.module
	return t, true
}

func buildIngress(ing *networkingv1.Ingress, svcs map[string]*corev1.Service, ts *targetSet) (IngressView, []Finding) {
	v := IngressView{Namespace: ing.Namespace, Name: ing.Name}
	var fs []Finding
	tlsHosts := map[string]bool{}
	for _, t := range ing.Spec.TLS {
		for _, h := range t.Hosts {
			tlsHosts[h] = true
		}
	}
	var lb []string
	for _, in := range ing.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			lb = append(lb, in.IP)
		} else if in.Hostname != "" {
			lb = append(lb, in.Hostname)
		}
	}
	base := map[string]string{LabelNamespace: ing.Namespace, LabelIngress: ing.Name}
	missing := map[string]string{} // backend → why
	checkBackend := func(b *networkingv1.IngressBackend) {
		if b == nil || b.Service == nil {
			return
		}
		port := b.Service.Port.Name
		if port == "" {
			port = fmt.Sprint(b.Service.Port.Number)
		}
		name := b.Service.Name + ":" + port
		if !slices.Contains(v.Backends, name) {
			v.Backends = append(v.Backends, name)
		}
		svc, ok := svcs[ing.Namespace+"/"+b.Service.Name]
		if !ok {
			missing[name] = fmt.Sprintf("Service %s does not exist in namespace %s", b.Service.Name, ing.Namespace)
			return
		}
		for _, sp := range svc.Spec.Ports {
			if (b.Service.Port.Name != "" && sp.Name == b.Service.Port.Name) || (b.Service.Port.Name == "" && sp.Port == b.Service.Port.Number) {
				return
			}
		}
		missing[name] = fmt.Sprintf("Service %s has no port %s", b.Service.Name, port)
	}
	checkBackend(ing.Spec.DefaultBackend)
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		scheme := "http"
		if tlsHosts[r.Host] {
			scheme = "https"
		}
		for _, p := range r.HTTP.Paths {
			checkBackend(&p.Backend)
			var hosts []string
			q := url.Values{}
			switch {
			case len(lb) > 0:
				hosts = lb
				if r.Host != "" && !strings.Contains(r.Host, "*") {
					q.Set("header", "Host: "+r.Host)
					if scheme == "https" {
						q.Set("servername", r.Host)
					}
				}
			case r.Host != "" && !strings.Contains(r.Host, "*"):
				hosts = []string{r.Host}
			}
			port := int32(patrol.DefaultPort(scheme))
			for _, h := range hosts {
				t, ok := newTarget(scheme, h, port, p.Path, q, serviceAnnotations{})
				if !ok {
					continue
				}
				t.Labels = cloneLabels(base)
				t.Labels[LabelLayer] = string(LayerIngress)
				if p.Backend.Service != nil {
					t.Labels[LabelService] = p.Backend.Service.Name
				}
				ts.add(t)
				if !slices.Contains(v.Targets, t.ID) {
					v.Targets = append(v.Targets, t.ID)
				}
			}
		}
	}
	for _, b := range slices.Sorted(func(yield func(string) bool) {
		for k := range missing {
			if !yield(k) {
				return
			}
		}
	}) {
		l := cloneLabels(base)
		l["backend"] = b
		fs = append(fs, Finding{
			Rule:     RuleIngressBackendMissing,
			Class:    patrol.AlertConfig,
			Severity: patrol.P1,
			Subject:  ingressSubject(ing.Namespace, ing.Name) + "/" + b,
			Summary:  fmt.Sprintf("Ingress %s/%s routes to %s, which is missing: %s", ing.Namespace, ing.Name, b, missing[b]),
			Description: "Requests for this path get a 503 (or the controller's default backend). " +
				"Create the Service (or add the port), or correct spec.rules[].http.paths[].backend.service in the Ingress.",
			Labels: l,
			Active: true,
		})
	}
	return v, fs
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// Only returns a snapshot narrowed to one Service: its view, its targets and findings,
// and the Ingresses that route to it. ok is false when the Service is not in s.
func (s *Snapshot) Only(namespace, name string) (out *Snapshot, ok bool) {
	out = &Snapshot{}
	keep := map[string]bool{}
	for _, v := range s.Services {
		if v.Namespace == namespace && v.Name == name {
			out.Services = append(out.Services, v)
			ok = true
			for _, p := range v.Ports {
				keep[p.ClusterIPTarget] = true
				for _, e := range p.Endpoints {
					keep[e.Target] = true
				}
				for _, n := range p.NodePorts {
					keep[n.Target] = true
				}
				for _, id := range p.LoadBalancerTargets {
					keep[id] = true
				}
			}
		}
	}
	for _, ing := range s.Ingresses {
		if ing.Namespace != namespace {
			continue
		}
		for _, b := range ing.Backends {
			if strings.HasPrefix(b, name+":") {
				out.Ingresses = append(out.Ingresses, ing)
				for _, id := range ing.Targets {
					keep[id] = true
				}
				break
			}
		}
	}
	for _, t := range s.Targets {
		if keep[t.ID] {
			out.Targets = append(out.Targets, t)
		}
	}
	for _, f := range s.Findings {
		if f.Labels[LabelNamespace] == namespace && (f.Labels[LabelService] == name || slices.ContainsFunc(out.Ingresses, func(i IngressView) bool { return i.Name == f.Labels[LabelIngress] })) {
			out.Findings = append(out.Findings, f)
		}
	}
	return out, ok
}
