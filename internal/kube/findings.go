package kube

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// defaultLoadBalancerGrace is how long a new LoadBalancer may wait for its address.
const defaultLoadBalancerGrace = 5 * time.Minute

// severity returns the Service's annotated severity, or def.
func (v *ServiceView) severity(def patrol.Severity) patrol.Severity {
	if v.SeveritySet {
		return v.Severity
	}
	return def
}

func (v *ServiceView) labels(port string) map[string]string {
	l := map[string]string{LabelNamespace: v.Namespace, LabelService: v.Name}
	if port != "" {
		l[LabelPort] = port
	}
	return l
}

// serviceFindings are the faults of one Service visible in the objects alone.
func serviceFindings(v *ServiceView, svc *corev1.Service, opts *Options) []Finding {
	var fs []Finding
	fs = append(fs, readinessFindings(v)...)
	if v.Type == corev1.ServiceTypeLoadBalancer && len(v.LoadBalancer) == 0 {
		grace := opts.LoadBalancerGrace
		if grace == 0 {
			grace = defaultLoadBalancerGrace
		}
		age := opts.now().Sub(svc.CreationTimestamp.Time)
		if age >= grace {
			fs = append(fs, Finding{
				Rule:     RuleLoadBalancerPending,
				Class:    patrol.AlertConfig,
				Severity: v.severity(patrol.P2),
				Subject:  serviceSubject(v.Namespace, v.Name),
				Summary:  fmt.Sprintf("LoadBalancer %s/%s has had no external address for %s", v.Namespace, v.Name, age.Round(time.Second)),
				Description: "No load-balancer implementation has assigned an address (status.loadBalancer.ingress is empty), " +
					"so nothing outside the cluster can reach it. Check the Service's events (kubectl describe service), " +
					"that a cloud controller or MetalLB-style implementation runs, its address pool and quotas, " +
					"and spec.loadBalancerClass.",
				Labels: v.labels(""),
				Active: true,
			})
		}
	}
	return fs
}

// readinessFindings reports a Service, or one of its ports, without ready endpoints,
// with the reason in words.
func readinessFindings(v *ServiceView) []Finding {
	if len(v.Selector) == 0 && len(v.Slices) == 0 {
		// A selector-less Service whose slices nobody has made yet: nothing to say
		// until someone manages endpoints for it (or give it a selector).
		return nil
	}
	var zero []PortView
	for _, p := range v.Ports {
		if p.Ready() == 0 {
			zero = append(zero, p)
		}
	}
	if len(zero) == 0 {
		return nil
	}
	sev := v.severity(patrol.P0)
	if len(zero) == len(v.Ports) {
		why, fix := whyNoEndpoints(v, zero)
		return []Finding{{
			Rule:        RuleNoReadyEndpoints,
			Class:       patrol.AlertUnreachable,
			Severity:    sev,
			Subject:     serviceSubject(v.Namespace, v.Name),
			Summary:     fmt.Sprintf("Service %s/%s has no ready endpoints: %s", v.Namespace, v.Name, why),
			Description: fix,
			Labels:      v.labels(""),
			Active:      true,
		}}
	}
	var fs []Finding
	for _, p := range zero {
		why, fix := whyNoEndpoints(v, []PortView{p})
		name := portLabel(p.Name, p.Port)
		fs = append(fs, Finding{
			Rule:        RuleNoReadyEndpoints,
			Class:       patrol.AlertUnreachable,
			Severity:    sev,
			Subject:     portSubject(v.Namespace, v.Name, name),
			Summary:     fmt.Sprintf("port %s of Service %s/%s has no ready endpoints: %s", name, v.Namespace, v.Name, why),
			Description: fix,
			Labels:      v.labels(name),
			Active:      true,
		})
	}
	return fs
}

// whyNoEndpoints walks the layers below the EndpointSlices — selector, pods, their
// readiness, their declared ports — and names the first one at fault.
func whyNoEndpoints(v *ServiceView, ports []PortView) (why, fix string) {
	if len(v.Selector) == 0 {
		return "it has no selector and its hand-made EndpointSlices list no ready address",
			"The Service has no selector, so Kubernetes does not manage its endpoints: whoever creates its " +
				"EndpointSlices (label kubernetes.io/service-name) must list ready addresses, or give the Service a selector."
	}
	sel := selectorString(v.Selector)
	if len(v.Pods) == 0 {
		return fmt.Sprintf("selector %s matches no pods", sel),
			fmt.Sprintf("No pod in namespace %s carries the labels %s. Compare the Service's spec.selector with the "+
				"pod template labels of the Deployment/StatefulSet meant to serve it (kubectl get pods -n %s --show-labels), "+
				"and check that workload has replicas.", v.Namespace, sel, v.Namespace)
	}
	var ready []PodView
	var notReady []string
	for _, p := range v.Pods {
		if p.Ready {
			ready = append(ready, p)
		} else {
			notReady = append(notReady, fmt.Sprintf("%s (%s)", p.Name, p.Reason))
		}
	}
	if len(ready) == 0 {
		shown := notReady
		if len(shown) > 3 {
			shown = append(slices.Clone(shown[:3]), fmt.Sprintf("%d more", len(notReady)-3))
		}
		return fmt.Sprintf("none of the %d pod%s it selects is ready: %s", len(v.Pods), plural(len(v.Pods)), strings.Join(shown, ", ")),
			"The selector matches pods, but none passes its readiness probe, so none is in the EndpointSlices. " +
				"Look at the pods: kubectl describe pod / kubectl logs (image pulls, crash loops, failing readiness probes, " +
				"unschedulable pods)."
	}
	for _, p := range ports {
		if p.TargetPort.Type == intstr.String && p.TargetPort.StrVal != "" { // a named targetPort
			if !podsDeclarePort(ready, p.TargetPort.StrVal, 0, p.Protocol) {
				return fmt.Sprintf("targetPort %q of port %s is not exposed by any container of its %d ready pod%s (they declare: %s)",
						p.TargetPort.StrVal, portLabel(p.Name, p.Port), len(ready), plural(len(ready)), declaredPorts(ready)),
					fmt.Sprintf("A named targetPort must match the name of a containerPort in the pods. Name the container port %q "+
						"(spec.containers[].ports[].name) or set the Service's targetPort to the right name or number.", p.TargetPort.StrVal)
			}
		}
	}
	term := 0
	total := 0
	for _, p := range ports {
		for _, e := range p.Endpoints {
			total++
			if e.Terminating {
				term++
			}
		}
	}
	if total > 0 && term == total {
		return fmt.Sprintf("all %d endpoint%s are terminating", total, plural(total)),
			"Every endpoint is shutting down (a rollout, scale-down or node drain in progress) and no replacement is ready yet. " +
				"Check the workload's rollout (kubectl rollout status) and that new pods can start."
	}
	return fmt.Sprintf("%d of %d selected pods are ready, but no EndpointSlice lists them as ready", len(ready), len(v.Pods)),
		"The pods look ready, but the EndpointSlices have not caught up. Check that kube-controller-manager's EndpointSlice " +
			"controller runs, and that the Service's ports match the pods' ports (protocol and targetPort)."
}

func podsDeclarePort(pods []PodView, name string, number int32, proto corev1.Protocol) bool {
	for _, p := range pods {
		for _, cp := range p.Ports {
			pp := cp.Protocol
			if pp == "" {
				pp = corev1.ProtocolTCP
			}
			if pp != proto {
				continue
			}
			if (name != "" && cp.Name == name) || (name == "" && cp.ContainerPort == number) {
				return true
			}
		}
	}
	return false
}

func declaredPorts(pods []PodView) string {
	var out []string
	for _, p := range pods {
		for _, cp := range p.Ports {
			s := fmt.Sprint(cp.ContainerPort)
			if cp.Name != "" {
				s = cp.Name + "/" + s
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		return "no ports"
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func selectorString(sel map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range sel {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, k+"="+sel[k])
	}
	return strings.Join(parts, ",")
}

// Results looks up the latest probe result of a target by ID.
type Results func(id string) (patrol.Result, bool)

// ResultMap adapts a map of results keyed by target ID.
func ResultMap(m map[string]patrol.Result) Results {
	return func(id string) (patrol.Result, bool) {
		r, ok := m[id]
		return r, ok
	}
}

// Assess returns the findings that need probe results: endpoints of a Service port
// that fail while others pass (or all of them fail), and a NodePort that answers on
// some nodes only, or on none while the endpoints answer. Targets without a result are
// left out of the count.
func Assess(s *Snapshot, results Results) []Finding {
	var fs []Finding
	for i := range s.Services {
		v := &s.Services[i]
		if v.Disabled {
			continue
		}
		for _, p := range v.Ports {
			name := portLabel(p.Name, p.Port)
			var good, bad []string
			for _, e := range p.Endpoints {
				if e.Target == "" {
					continue
				}
				r, ok := results(e.Target)
				if !ok {
					continue
				}
				who := e.Address
				if e.Pod != "" {
					who = e.Pod + " (" + e.Address + ")"
				}
				if r.Up() {
					good = append(good, who)
				} else {
					bad = append(bad, fmt.Sprintf("%s: %s", who, r.Class))
				}
			}
			if len(bad) > 0 {
				f := Finding{
					Rule:    RuleEndpointFailing,
					Class:   patrol.AlertUnreachable,
					Subject: portSubject(v.Namespace, v.Name, name),
					Labels:  v.labels(name),
					Active:  true,
				}
				if len(good) > 0 {
					f.Severity = v.severity(patrol.P1)
					f.Summary = fmt.Sprintf("%d of %d ready endpoints of %s/%s port %s fail: %s",
						len(bad), len(bad)+len(good), v.Namespace, v.Name, name, strings.Join(bad, ", "))
					f.Description = "The Service still answers through its other endpoints, but a share of requests reach a pod " +
						"that is ready yet does not serve this port. The fault is in those pods: their readiness probe does not " +
						"check this port, or checks something else. Look at their logs and make the readiness probe test what the Service serves."
				} else {
					f.Severity = v.severity(patrol.P0)
					f.Summary = fmt.Sprintf("all %d ready endpoints of %s/%s port %s fail: %s",
						len(bad), v.Namespace, v.Name, name, strings.Join(bad, ", "))
					f.Description = "The pods are in the EndpointSlices as ready, yet none serves this port: the process listens " +
						"on another port than targetPort, or the readiness probe does not check what the Service serves. " +
						"Compare the container's listening port with the Service's targetPort."
				}
				fs = append(fs, f)
			}
			fs = append(fs, assessNodePort(v, p, name, len(good) > 0, results)...)
		}
	}
	sortFindings(fs)
	return fs
}

func assessNodePort(v *ServiceView, p PortView, name string, endpointsUp bool, results Results) []Finding {
	var up, down []string
	for _, n := range p.NodePorts {
		if n.Target == "" {
			continue
		}
		r, ok := results(n.Target)
		if !ok {
			continue
		}
		if r.Up() {
			up = append(up, n.Node)
		} else {
			down = append(down, fmt.Sprintf("%s: %s", n.Node, r.Class))
		}
	}
	if len(down) == 0 || (len(up) == 0 && !endpointsUp) {
		return nil
	}
	f := Finding{
		Rule:     RuleNodePortPartial,
		Class:    patrol.AlertUnreachable,
		Severity: v.severity(patrol.P1),
		Subject:  portSubject(v.Namespace, v.Name, name),
		Labels:   v.labels(name),
		Active:   true,
	}
	if len(up) > 0 {
		f.Summary = fmt.Sprintf("NodePort %d of %s/%s answers on %d node%s but not on %s",
			p.NodePort, v.Namespace, v.Name, len(up), plural(len(up)), strings.Join(down, ", "))
		f.Description = "The Service's pods answer, and the NodePort answers on other nodes, so the fault is on the failing " +
			"nodes: kube-proxy (or the CNI's replacement) not running or not synced there, a host firewall or security group, " +
			"or externalTrafficPolicy: Local on a node without a local endpoint."
	} else {
		f.Summary = fmt.Sprintf("NodePort %d of %s/%s answers on no node (%s) while its endpoints answer",
			p.NodePort, v.Namespace, v.Name, strings.Join(down, ", "))
		f.Description = "The pods serve the port, but no node forwards the NodePort to them: check kube-proxy (or the CNI's " +
			"replacement) and the firewall between portpatrol and the nodes."
	}
	return []Finding{f}
}
