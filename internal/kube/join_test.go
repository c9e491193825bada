package kube

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/portpatrol/portpatrol/internal/kube/clientset"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// shop is a small cluster: web (two ports, two slices, one endpoint not ready and one
// terminating), cache (a NodePort Redis on two nodes), ghost (a selector that matches
// nothing), an Ingress to web and one to a missing Service.
func shop() []runtime.Object {
	web := map[string]string{"app": "web"}
	return []runtime.Object{
		service("shop", "web", web, withClusterIP("10.96.0.10"),
			withPort("http", 80, intstr.FromString("http")),
			withPort("metrics", 9090, intstr.FromInt32(9090)),
			withAnnotation(AnnotationPath, "/healthz")),
		slice("shop", "web-a", "web", []discoveryv1.EndpointPort{sport("http", 8080), sport("metrics", 9090)},
			ep{addr: "10.0.1.1", pod: "web-1", node: "node-a"},
			ep{addr: "10.0.1.2", pod: "web-2", node: "node-b", ready: ptr(false)}),
		slice("shop", "web-b", "web", []discoveryv1.EndpointPort{sport("http", 8080), sport("metrics", 9090)},
			ep{addr: "10.0.1.3", pod: "web-3", node: "node-b", ready: ptr(true)},
			ep{addr: "10.0.1.4", pod: "web-4", node: "node-a", ready: ptr(false), terminating: true}),
		// A slice of another Service: must not join web.
		slice("shop", "other-x", "other", []discoveryv1.EndpointPort{sport("http", 8080)}, ep{addr: "10.0.9.9"}),
		pod("shop", "web-1", web, true, corev1.ContainerPort{Name: "http", ContainerPort: 8080}),
		pod("shop", "web-3", web, true, corev1.ContainerPort{Name: "http", ContainerPort: 8080}),
		service("shop", "cache", map[string]string{"app": "cache"}, withClusterIP("10.96.0.11"),
			withPort("redis", 6379, intstr.FromInt32(6379)), withNodePort(0, 30079)),
		slice("shop", "cache-a", "cache", []discoveryv1.EndpointPort{sport("redis", 6379)}, ep{addr: "10.0.2.1", pod: "cache-0"}),
		pod("shop", "cache-0", map[string]string{"app": "cache"}, true, corev1.ContainerPort{Name: "redis", ContainerPort: 6379}),
		service("shop", "ghost", map[string]string{"app": "ghost"}, withClusterIP("10.96.0.12"), withPort("", 80, intstr.FromInt32(8080))),
		service("shop", "quiet", map[string]string{"app": "quiet"}, withClusterIP("10.96.0.13"), withPort("", 80, intstr.FromInt32(80)),
			withAnnotation(AnnotationEnabled, "false")),
		node("node-a", "192.0.2.1"),
		node("node-b", "192.0.2.2"),
		ingress("shop", "front", "", "web", networkingv1.ServiceBackendPort{Name: "http"}),
		ingress("shop", "broken", "", "nosuch", networkingv1.ServiceBackendPort{Number: 80}),
	}
}

func ids(ts []patrol.Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func rules(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Rule)+" "+f.Subject)
	}
	slices.Sort(out)
	return out
}

var _ API = (*clientset.Adapter)(nil)

func TestBuildJoinsLayers(t *testing.T) {
	c := fake.NewClientset(shop()...)
	objs, err := ListObjects(context.Background(), clientset.New(c), "", "")
	if err != nil {
		t.Fatal(err)
	}
	snap := Build(objs, Options{})

	want := []string{
		"http://10.0.1.1:8080/healthz",
		"http://10.0.1.3:8080/healthz",
		"http://10.96.0.10:80/healthz",
		"redis://10.0.2.1:6379",
		"redis://10.96.0.11:6379",
		"redis://192.0.2.1:30079",
		"redis://192.0.2.2:30079",
		"tcp://10.0.1.1:9090",
		"tcp://10.0.1.3:9090",
		"tcp://10.96.0.10:9090",
		"tcp://10.96.0.12:80",
	}
	if diff := cmp.Diff(want, ids(snap.Targets)); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}

	byID := map[string]patrol.Target{}
	for _, tg := range snap.Targets {
		byID[tg.ID] = tg
	}
	wantLabels := map[string]map[string]string{
		"http://10.0.1.3:8080/healthz": {LabelLayer: "endpoint", LabelNamespace: "shop", LabelService: "web", LabelPort: "http", LabelPod: "web-3", LabelNode: "node-b"},
		"redis://192.0.2.2:30079":      {LabelLayer: "nodeport", LabelNamespace: "shop", LabelService: "cache", LabelPort: "redis", LabelNode: "node-b"},
		"tcp://10.96.0.10:9090":        {LabelLayer: "clusterip", LabelNamespace: "shop", LabelService: "web", LabelPort: "metrics"},
	}
	for id, l := range wantLabels {
		if diff := cmp.Diff(l, byID[id].Labels); diff != "" {
			t.Errorf("labels of %s (-want +got):\n%s", id, diff)
		}
	}

	web, ok := snap.Find("shop", "web")
	if !ok {
		t.Fatal("web not in snapshot")
	}
	if got := len(web.Slices); got != 2 {
		t.Errorf("web has %d slices, want 2 (the other Service's slice must not join)", got)
	}
	http := web.Ports[0]
	if got, want := http.Ready(), 2; got != want {
		t.Errorf("web http ready endpoints = %d, want %d", got, want)
	}
	if got, want := len(http.Endpoints), 4; got != want {
		t.Errorf("web http endpoints = %d, want %d", got, want)
	}
	for _, e := range http.Endpoints {
		if e.Pod == "web-4" && (!e.Terminating || e.Ready || e.Target != "") {
			t.Errorf("terminating endpoint web-4: got %+v, want terminating, not ready, no target", e)
		}
		if e.Pod == "web-1" && !e.Ready {
			t.Errorf("endpoint with nil ready condition must count as ready: %+v", e)
		}
	}
	if len(web.Pods) != 2 {
		t.Errorf("web selects %d pods, want 2", len(web.Pods))
	}

	wantFindings := []string{
		"kube_ingress_backend_missing kube:shop/ingress/broken/nosuch:80",
		"kube_no_ready_endpoints kube:shop/ghost",
	}
	if diff := cmp.Diff(wantFindings, rules(snap.Findings)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	for _, f := range snap.Findings {
		if f.Rule == RuleNoReadyEndpoints {
			if f.Severity != patrol.P0 || f.Class != patrol.AlertUnreachable || !f.Active {
				t.Errorf("no-ready-endpoints finding: got %s %s active=%v, want P0 unreachable active", f.Severity, f.Class, f.Active)
			}
			if !strings.Contains(f.Summary, "selector app=ghost matches no pods") {
				t.Errorf("summary %q does not say the selector matches no pods", f.Summary)
			}
		}
	}
	if q, _ := snap.Find("shop", "quiet"); !q.Disabled {
		t.Error("quiet (portpatrol.io/enabled: false) is not disabled")
	}
}

func TestBuildDaemonSetNodeAndIngressAddress(t *testing.T) {
	objs := Objects{
		Services: []*corev1.Service{service("a", "s", map[string]string{"x": "y"}, withClusterIP("10.96.1.1"),
			withPort("https", 443, intstr.FromInt32(8443)), withNodePort(0, 30443))},
		Nodes: []*corev1.Node{node("n1", "192.0.2.1"), node("n2", "192.0.2.2")},
	}
	ing := ingress("a", "i", "shop.example.test", "s", networkingv1.ServiceBackendPort{Name: "https"})
	ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"shop.example.test"}}}
	ing.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.50"}}
	objs.Ingresses = []*networkingv1.Ingress{ing}

	snap := Build(objs, Options{Node: "n2"})
	want := []string{
		"https://10.96.1.1:443?insecure=true",
		"https://192.0.2.2:30443?insecure=true",
		"https://192.0.2.50:443/?header=Host:%20shop.example.test&servername=shop.example.test",
	}
	if diff := cmp.Diff(want, ids(snap.Targets)); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
}

func TestProbeScheme(t *testing.T) {
	tests := []struct {
		name        string
		ann         string
		port        string
		appProtocol string
		proto       corev1.Protocol
		want        string
	}{
		{"default tcp", "", "web", "", corev1.ProtocolTCP, "tcp"},
		{"port name", "", "http", "", corev1.ProtocolTCP, "http"},
		{"port name prefix", "", "http-metrics", "", corev1.ProtocolTCP, "http"},
		{"grpc name", "", "grpc", "", corev1.ProtocolTCP, "grpc"},
		{"postgresql name", "", "postgresql", "", corev1.ProtocolTCP, "postgres"},
		{"appProtocol wins over name", "", "web", "kubernetes.io/h2c", corev1.ProtocolTCP, "http"},
		{"appProtocol redis", "", "", "redis", corev1.ProtocolTCP, "redis"},
		{"annotation for all", "mysql", "db", "", corev1.ProtocolTCP, "mysql"},
		{"annotation per port", "web=http,db=postgres", "db", "", corev1.ProtocolTCP, "postgres"},
		{"annotation none", "none", "http", "", corev1.ProtocolTCP, ""},
		{"udp not probed", "", "dns", "", corev1.ProtocolUDP, ""},
		{"udp by annotation", "udp", "syslog", "", corev1.ProtocolUDP, "udp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := service("n", "s", nil)
			if tt.ann != "" {
				svc.Annotations[AnnotationProbe] = tt.ann
			}
			got := probeScheme(parseAnnotations(svc).probe, PortView{Name: tt.port, AppProtocol: tt.appProtocol, Protocol: tt.proto})
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWhyNoReadyEndpoints(t *testing.T) {
	sel := map[string]string{"app": "api"}
	crash := pod("n", "api-1", sel, false)
	crash.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}
	tests := []struct {
		name string
		objs Objects
		want string
	}{
		{
			name: "selector matches no pods",
			objs: Objects{Services: []*corev1.Service{service("n", "api", sel, withPort("", 80, intstr.FromInt32(8080)))}},
			want: "selector app=api matches no pods",
		},
		{
			name: "pods not ready",
			objs: Objects{
				Services: []*corev1.Service{service("n", "api", sel, withPort("", 80, intstr.FromInt32(8080)))},
				Pods:     []*corev1.Pod{crash},
			},
			want: "none of the 1 pod it selects is ready: api-1 (container app CrashLoopBackOff)",
		},
		{
			name: "named targetPort not exposed",
			objs: Objects{
				Services: []*corev1.Service{service("n", "api", sel, withPort("", 80, intstr.FromString("web")))},
				Pods:     []*corev1.Pod{pod("n", "api-1", sel, true, corev1.ContainerPort{Name: "http", ContainerPort: 8080})},
			},
			want: `targetPort "web" of port 80 is not exposed by any container of its 1 ready pod (they declare: http/8080)`,
		},
		{
			name: "all terminating",
			objs: Objects{
				Services:       []*corev1.Service{service("n", "api", sel, withPort("", 80, intstr.FromInt32(8080)))},
				Pods:           []*corev1.Pod{pod("n", "api-1", sel, true)},
				EndpointSlices: []*discoveryv1.EndpointSlice{slice("n", "api-x", "api", []discoveryv1.EndpointPort{sport("", 8080)}, ep{addr: "10.0.0.1", ready: ptr(false), terminating: true})},
			},
			want: "all 1 endpoint are terminating",
		},
		{
			name: "slices lag behind ready pods",
			objs: Objects{
				Services: []*corev1.Service{service("n", "api", sel, withPort("", 80, intstr.FromInt32(8080)))},
				Pods:     []*corev1.Pod{pod("n", "api-1", sel, true)},
			},
			want: "1 of 1 selected pods are ready, but no EndpointSlice lists them as ready",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := Build(tt.objs, Options{})
			if len(snap.Findings) != 1 {
				t.Fatalf("got %d findings %v, want 1", len(snap.Findings), rules(snap.Findings))
			}
			f := snap.Findings[0]
			if f.Rule != RuleNoReadyEndpoints || f.Severity != patrol.P0 {
				t.Errorf("got %s %s, want %s P0", f.Rule, f.Severity, RuleNoReadyEndpoints)
			}
			if !strings.HasSuffix(f.Summary, tt.want) {
				t.Errorf("summary %q\nwant it to end with %q", f.Summary, tt.want)
			}
			if f.Description == "" {
				t.Error("no description (how to fix)")
			}
		})
	}
}

func TestSeverityAnnotationAndLoadBalancerPending(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lb := service("n", "edge", nil, withPort("http", 80, intstr.FromInt32(80)), withType(corev1.ServiceTypeLoadBalancer))
	lb.CreationTimestamp = metav1.NewTime(created)
	dev := service("n", "dev", map[string]string{"app": "dev"}, withPort("", 80, intstr.FromInt32(80)), withAnnotation(AnnotationSeverity, "P3"))
	objs := Objects{Services: []*corev1.Service{lb, dev}}

	early := Build(objs, Options{Now: func() time.Time { return created.Add(time.Minute) }})
	if got := rules(early.Findings); !slices.Equal(got, []string{"kube_no_ready_endpoints kube:n/dev"}) {
		t.Errorf("within the grace period: got %v", got)
	}
	late := Build(objs, Options{Now: func() time.Time { return created.Add(10 * time.Minute) }})
	got := map[Rule]Finding{}
	for _, f := range late.Findings {
		got[f.Rule] = f
	}
	if f, ok := got[RuleLoadBalancerPending]; !ok || f.Severity != patrol.P2 {
		t.Errorf("LoadBalancer pending: got %+v, want a P2 finding", f)
	}
	if f := got[RuleNoReadyEndpoints]; f.Severity != patrol.P3 {
		t.Errorf("annotated severity: got %s, want P3", f.Severity)
	}
}

func result(id string, c patrol.Class) patrol.Result {
	return patrol.Result{Target: id, Class: c}
}

func TestAssessAndTracker(t *testing.T) {
	objs, err := ListObjects(context.Background(), clientset.New(fake.NewClientset(shop()...)), "shop", "")
	if err != nil {
		t.Fatal(err)
	}
	snap := Build(objs, Options{})
	tr := NewTracker()
	first := tr.Update(snap)
	if diff := cmp.Diff(rules(snap.Findings), rules(first)); diff != "" {
		t.Errorf("first update must report the static findings (-want +got):\n%s", diff)
	}

	got := tr.Observe(
		result("http://10.0.1.1:8080/healthz", patrol.ClassOK),
		result("http://10.0.1.3:8080/healthz", patrol.ClassRefused),
		result("redis://10.0.2.1:6379", patrol.ClassOK),
		result("redis://192.0.2.1:30079", patrol.ClassOK),
		result("redis://192.0.2.2:30079", patrol.ClassTimeout),
	)
	want := []string{
		"kube_endpoint_failing kube:shop/web:http",
		"kube_nodeport_partial kube:shop/cache:redis",
	}
	if diff := cmp.Diff(want, rules(got)); diff != "" {
		t.Errorf("transitions (-want +got):\n%s", diff)
	}
	for _, f := range got {
		if f.Severity != patrol.P1 || !f.Active {
			t.Errorf("%s: got %s active=%v, want P1 active", f.Rule, f.Severity, f.Active)
		}
		if f.Rule == RuleEndpointFailing && !strings.Contains(f.Summary, "web-3 (10.0.1.3): refused") {
			t.Errorf("endpoint finding does not name the bad pod: %q", f.Summary)
		}
		if f.Rule == RuleNodePortPartial && !strings.Contains(f.Summary, "not on node-b: timeout") {
			t.Errorf("nodeport finding does not name the bad node: %q", f.Summary)
		}
	}
	if again := tr.Observe(result("redis://192.0.2.2:30079", patrol.ClassTimeout)); len(again) != 0 {
		t.Errorf("an unchanged result must not repeat transitions, got %v", rules(again))
	}

	resolved := tr.Observe(result("http://10.0.1.3:8080/healthz", patrol.ClassOK), result("redis://192.0.2.2:30079", patrol.ClassOK))
	if len(resolved) != 2 {
		t.Fatalf("got %v, want two resolutions", rules(resolved))
	}
	for _, f := range resolved {
		if f.Active {
			t.Errorf("%s: want Active false on resolution", f.Rule)
		}
	}
	if diff := cmp.Diff(rules(snap.Findings), rules(tr.Active())); diff != "" {
		t.Errorf("active after resolution (-want +got):\n%s", diff)
	}
}

func TestDiscoveryFollowsChanges(t *testing.T) {
	c := fake.NewClientset(shop()...)
	updates := make(chan *Snapshot, 16)
	d, err := NewDiscovery(DiscoveryConfig{
		Client: clientset.New(c), Namespace: "shop", Debounce: 10 * time.Millisecond,
		OnUpdate: func(s *Snapshot) { updates <- s },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	waitFor(t, updates, func(s *Snapshot) bool {
		return slices.Contains(rules(s.Findings), "kube_no_ready_endpoints kube:shop/ghost")
	})

	// ghost gets a pod and a ready endpoint: the P0 clears.
	_, err = c.CoreV1().Pods("shop").Create(ctx, pod("shop", "ghost-1", map[string]string{"app": "ghost"}, true), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DiscoveryV1().EndpointSlices("shop").Create(ctx,
		slice("shop", "ghost-a", "ghost", []discoveryv1.EndpointPort{sport("", 8080)}, ep{addr: "10.0.3.1", pod: "ghost-1"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := waitFor(t, updates, func(s *Snapshot) bool {
		return !slices.Contains(rules(s.Findings), "kube_no_ready_endpoints kube:shop/ghost")
	})
	if !slices.Contains(ids(s.Targets), "tcp://10.0.3.1:8080") {
		t.Errorf("new endpoint target missing: %v", ids(s.Targets))
	}
	if d.Snapshot() == nil {
		t.Error("Snapshot() is nil after sync")
	}
}

func waitFor(t *testing.T, ch <-chan *Snapshot, ok func(*Snapshot) bool) *Snapshot {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case s := <-ch:
			if ok(s) {
				return s
			}
		case <-deadline:
			t.Fatal("timed out waiting for a snapshot")
			return nil
		}
	}
}
