package kube

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
)

// dialMap routes every dial of a probe to a loopback address. The API objects carry
// 10.x and 192.0.2.x addresses (EndpointSlices reject loopback ones); the map sends
// each onto a 127.0.0.x listener. A dial to an address not in the map fails the test
// and never leaves the machine; so does any DNS lookup.
type dialMap struct {
	t  *testing.T
	mu sync.Mutex
	m  map[string]string
}

func newDialMap(t *testing.T) *dialMap { return &dialMap{t: t, m: map[string]string{}} }

func (d *dialMap) set(from, to string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m[from] = to
}

// env returns a probe environment that dials through the map; it is closed when the
// test ends.
func (d *dialMap) env() *probe.Env {
	env := &probe.Env{
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d.mu.Lock()
			to, ok := d.m[addr]
			d.mu.Unlock()
			if !ok {
				d.t.Errorf("probe dialed %s %s, which the test did not map onto loopback", network, addr)
				return nil, fmt.Errorf("unmapped address %s", addr)
			}
			if ip := net.ParseIP(strings.Split(to, ":")[0]); ip == nil || !ip.IsLoopback() {
				d.t.Errorf("mapping %s → %s is not loopback", addr, to)
				return nil, errors.New("non-loopback mapping")
			}
			var nd net.Dialer
			return nd.DialContext(ctx, network, to)
		},
		Resolver: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d.t.Errorf("probe tried to resolve a name through %s", addr)
			return nil, errors.New("no DNS in tests")
		}},
	}
	d.t.Cleanup(func() {
		if err := env.Close(); err != nil {
			d.t.Errorf("close the probe environment: %v", err)
		}
	})
	return env
}

// tcpBackend accepts and holds connections on loopback until the test ends.
func tcpBackend(t *testing.T, addr string) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 512)
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// httpBackend serves 200 OK on loopback.
func httpBackend(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// closedPort returns a loopback address where nothing listens: connects are refused.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func create[T any](t *testing.T, ctx context.Context, fn func(context.Context, T, metav1.CreateOptions) (T, error), obj T) T {
	t.Helper()
	out, err := fn(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create %T: %v", obj, err)
	}
	return out
}

// readyPod creates a pod and marks it running and ready with podIP ip, as a kubelet
// would through the status subresource.
func readyPod(t *testing.T, ctx context.Context, c kubernetes.Interface, p *corev1.Pod, ip string) {
	t.Helper()
	got := create(t, ctx, c.CoreV1().Pods(p.Namespace).Create, p)
	got.Status = p.Status
	got.Status.PodIP = ip
	got.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	if _, err := c.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("pod status: %v", err)
	}
}

// probeSnapshot probes every target of s once through env.
func probeSnapshot(t *testing.T, ctx context.Context, s *Snapshot, env *probe.Env) []patrol.Result {
	t.Helper()
	var out []patrol.Result
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, tg := range s.Targets {
		tg.Timeout = 2 * time.Second
		p, err := probe.New(tg, probe.Module{}, env)
		if err != nil {
			t.Fatalf("probe %s: %v", tg.ID, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := p.Run(ctx)
			mu.Lock()
			out = append(out, r)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func findingKeys(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		k := fmt.Sprintf("%s %s %s", f.Rule, f.Subject, f.Severity)
		if !f.Active {
			k += " resolved"
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestIntegrationDiscoveryProbesAndFindings(t *testing.T) {
	a := requireAPIServer(t)
	c := a.client(t, adminToken)
	ctx := ctxT(t, 3*time.Minute)
	const ns = "shop"
	create(t, ctx, c.CoreV1().Namespaces().Create, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	create(t, ctx, c.CoreV1().Nodes().Create, node("node-a", "192.0.2.1"))
	create(t, ctx, c.CoreV1().Nodes().Create, node("node-b", "192.0.2.2"))

	web := map[string]string{"app": "web"}
	httpPort := corev1.ContainerPort{Name: "http", ContainerPort: 8080}
	metricsPort := corev1.ContainerPort{Name: "metrics", ContainerPort: 9090}
	readyPod(t, ctx, c, pod(ns, "web-1", web, true, httpPort, metricsPort), "10.244.1.1")
	readyPod(t, ctx, c, pod(ns, "web-2", web, true, httpPort, metricsPort), "10.244.1.2")
	readyPod(t, ctx, c, pod(ns, "web-3", web, false, httpPort, metricsPort), "10.244.1.3")
	webSvc := create(t, ctx, c.CoreV1().Services(ns).Create, service(ns, "web", web,
		withPort("http", 80, intstr.FromString("http")), withPort("metrics", 9090, intstr.FromString("metrics"))))
	create(t, ctx, c.DiscoveryV1().EndpointSlices(ns).Create, slice(ns, "web-abc", "web",
		[]discoveryv1.EndpointPort{sport("http", 8080), sport("metrics", 9090)},
		ep{addr: "10.244.1.1", pod: "web-1", node: "node-a", ready: ptr(true)},
		ep{addr: "10.244.1.2", pod: "web-2", node: "node-b", ready: ptr(true)},
		ep{addr: "10.244.1.3", pod: "web-3", node: "node-b", ready: ptr(false)}))

	cache := map[string]string{"app": "cache"}
	readyPod(t, ctx, c, pod(ns, "cache-0", cache, true, corev1.ContainerPort{Name: "cache", ContainerPort: 6379}), "10.244.2.1")
	cacheSvc := create(t, ctx, c.CoreV1().Services(ns).Create, service(ns, "cache", cache,
		withType(corev1.ServiceTypeNodePort), withPort("cache", 6379, intstr.FromString("cache"))))
	create(t, ctx, c.DiscoveryV1().EndpointSlices(ns).Create, slice(ns, "cache-abc", "cache",
		[]discoveryv1.EndpointPort{sport("cache", 6379)}, ep{addr: "10.244.2.1", pod: "cache-0", node: "node-a"}))

	// api selects nothing yet: the P0.
	create(t, ctx, c.CoreV1().Services(ns).Create, service(ns, "api", map[string]string{"app": "api"}, withPort("", 8000, intstr.FromInt32(8000))))

	create(t, ctx, c.CoreV1().Services(ns).Create, service(ns, "edge", web,
		withType(corev1.ServiceTypeLoadBalancer), withPort("http", 80, intstr.FromString("http"))))
	create(t, ctx, c.DiscoveryV1().EndpointSlices(ns).Create, slice(ns, "edge-abc", "edge",
		[]discoveryv1.EndpointPort{sport("http", 8080)}, ep{addr: "10.244.1.1", pod: "web-1", node: "node-a"}))

	front := ingress(ns, "front", "", "web", networkingv1.ServiceBackendPort{Name: "http"})
	front = create(t, ctx, c.NetworkingV1().Ingresses(ns).Create, front)
	front.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.80"}}
	if _, err := c.NetworkingV1().Ingresses(ns).UpdateStatus(ctx, front, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	create(t, ctx, c.NetworkingV1().Ingresses(ns).Create, ingress(ns, "broken", "", "nosuch", networkingv1.ServiceBackendPort{Number: 80}))

	// Backends: web-1 serves both ports; web-2 serves metrics but refuses http (the bad
	// pod); the cache answers; node-a forwards the NodePort, node-b refuses it.
	dm := newDialMap(t)
	web1HTTP, web1Metrics := httpBackend(t), tcpBackend(t, "127.0.0.1:0")
	dm.set("10.244.1.1:8080", web1HTTP)
	dm.set("10.244.1.1:9090", web1Metrics)
	dm.set("10.244.1.2:8080", closedPort(t))
	dm.set("10.244.1.2:9090", tcpBackend(t, "127.0.0.1:0"))
	dm.set(net.JoinHostPort(webSvc.Spec.ClusterIP, "80"), web1HTTP)
	dm.set(net.JoinHostPort(webSvc.Spec.ClusterIP, "9090"), web1Metrics)
	cacheAddr := tcpBackend(t, "127.0.0.1:0")
	dm.set("10.244.2.1:6379", cacheAddr)
	dm.set(net.JoinHostPort(cacheSvc.Spec.ClusterIP, "6379"), cacheAddr)
	np := fmt.Sprint(cacheSvc.Spec.Ports[0].NodePort)
	dm.set("192.0.2.1:"+np, tcpBackend(t, "127.0.0.1:"+np))
	dm.set("192.0.2.2:"+np, "127.0.0.2:"+np)
	dm.set("192.0.2.80:80", web1HTTP)
	apiSvc, err := c.CoreV1().Services(ns).Get(ctx, "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dm.set(net.JoinHostPort(apiSvc.Spec.ClusterIP, "8000"), tcpBackend(t, "127.0.0.1:0"))
	edgeSvc, err := c.CoreV1().Services(ns).Get(ctx, "edge", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dm.set(net.JoinHostPort(edgeSvc.Spec.ClusterIP, "80"), web1HTTP)
	edgeNP := fmt.Sprint(edgeSvc.Spec.Ports[0].NodePort)
	dm.set("192.0.2.1:"+edgeNP, web1HTTP)
	dm.set("192.0.2.2:"+edgeNP, web1HTTP)

	updates := make(chan *Snapshot, 64)
	later := func() time.Time { return time.Now().Add(10 * time.Minute) } // past the LoadBalancer grace
	d, err := NewDiscovery(DiscoveryConfig{
		Client: a.api(t, adminToken), Namespace: ns, Debounce: 50 * time.Millisecond,
		Options:  Options{Now: later},
		OnUpdate: func(s *Snapshot) { updates <- s },
	})
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
	snap := waitFor(t, updates, func(s *Snapshot) bool {
		_, ok := s.Find(ns, "edge")
		return ok && len(s.Ingresses) == 2 && len(s.Targets) >= 14
	})

	wantTargets := []string{
		"http://10.244.1.1:8080", "http://10.244.1.2:8080",
		"http://" + webSvc.Spec.ClusterIP + ":80", "http://" + edgeSvc.Spec.ClusterIP + ":80",
		"http://192.0.2.1:" + edgeNP, "http://192.0.2.2:" + edgeNP,
		"http://192.0.2.80:80/",
		"tcp://10.244.1.1:9090", "tcp://10.244.1.2:9090", "tcp://" + webSvc.Spec.ClusterIP + ":9090",
		"tcp://10.244.2.1:6379", "tcp://" + cacheSvc.Spec.ClusterIP + ":6379",
		"tcp://192.0.2.1:" + np, "tcp://192.0.2.2:" + np,
		"tcp://" + apiSvc.Spec.ClusterIP + ":8000",
	}
	slices.Sort(wantTargets)
	if got := ids(snap.Targets); !slices.Equal(got, wantTargets) {
		t.Errorf("targets:\n got %v\nwant %v", got, wantTargets)
	}

	tr := NewTracker()
	tr.Update(snap)
	tr.Observe(probeSnapshot(t, ctx, snap, dm.env())...)
	want := []string{
		"kube_endpoint_failing kube:shop/web:http P1",
		"kube_ingress_backend_missing kube:shop/ingress/broken/nosuch:80 P1",
		"kube_loadbalancer_pending kube:shop/edge P2",
		"kube_no_ready_endpoints kube:shop/api P0",
		"kube_nodeport_partial kube:shop/cache:cache P1",
	}
	if got := findingKeys(tr.Active()); !slices.Equal(got, want) {
		t.Errorf("findings:\n got %v\nwant %v", got, want)
	}
	for _, f := range tr.Active() {
		t.Logf("%s %s: %s", f.Severity, f.Rule, f.Summary)
		if f.Rule == RuleNoReadyEndpoints && !strings.Contains(f.Summary, "selector app=api matches no pods") {
			t.Errorf("P0 does not say why: %q", f.Summary)
		}
	}
	var tree strings.Builder
	if err := WriteTree(&tree, snap, ResultMap(resultsOf(probeSnapshot(t, ctx, snap, dm.env()))), tr.Active()); err != nil {
		t.Fatal(err)
	}
	t.Logf("tree:\n%s", tree.String())

	// api gets a ready pod and an EndpointSlice: the P0 resolves; the LoadBalancer gets
	// its address.
	readyPod(t, ctx, c, pod(ns, "api-1", map[string]string{"app": "api"}, true), "10.244.3.1")
	create(t, ctx, c.DiscoveryV1().EndpointSlices(ns).Create, slice(ns, "api-abc", "api",
		[]discoveryv1.EndpointPort{sport("", 8000)}, ep{addr: "10.244.3.1", pod: "api-1", ready: ptr(true)}))
	dm.set("10.244.3.1:8000", tcpBackend(t, "127.0.0.1:0"))
	edgeSvc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.90"}}
	if _, err := c.CoreV1().Services(ns).UpdateStatus(ctx, edgeSvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	dm.set("192.0.2.90:80", web1HTTP)
	snap = waitFor(t, updates, func(s *Snapshot) bool {
		v, _ := s.Find(ns, "edge")
		a, _ := s.Find(ns, "api")
		return len(v.LoadBalancer) == 1 && len(a.Ports) == 1 && a.Ports[0].Ready() == 1
	})
	got := tr.Update(snap)
	wantTransitions := []string{
		"kube_loadbalancer_pending kube:shop/edge P2 resolved",
		"kube_no_ready_endpoints kube:shop/api P0 resolved",
	}
	if diff := findingKeys(got); !slices.Equal(diff, wantTransitions) {
		t.Errorf("transitions when api becomes ready:\n got %v\nwant %v", diff, wantTransitions)
	}
	tr.Observe(probeSnapshot(t, ctx, snap, dm.env())...)
	if !slices.Contains(ids(snap.Targets), "http://192.0.2.90:80") {
		t.Errorf("LoadBalancer target missing: %v", ids(snap.Targets))
	}

	// web-2 is fixed and node-b forwards: those findings resolve too.
	dm.set("10.244.1.2:8080", web1HTTP)
	dm.set("192.0.2.2:"+np, tcpBackend(t, "127.0.0.2:"+np))
	got = tr.Observe(probeSnapshot(t, ctx, snap, dm.env())...)
	wantTransitions = []string{
		"kube_endpoint_failing kube:shop/web:http P1 resolved",
		"kube_nodeport_partial kube:shop/cache:cache P1 resolved",
	}
	if diff := findingKeys(got); !slices.Equal(diff, wantTransitions) {
		t.Errorf("transitions when the bad pod and node recover:\n got %v\nwant %v", diff, wantTransitions)
	}
	if got := findingKeys(tr.Active()); !slices.Equal(got, []string{"kube_ingress_backend_missing kube:shop/ingress/broken/nosuch:80 P1"}) {
		t.Errorf("still active: %v", got)
	}
}

func resultsOf(rs []patrol.Result) map[string]patrol.Result {
	m := map[string]patrol.Result{}
	for _, r := range rs {
		m[r.Target] = r
	}
	return m
}

func TestIntegrationLeaderFailover(t *testing.T) {
	a := requireAPIServer(t)
	ctx := ctxT(t, 2*time.Minute)
	c := a.client(t, adminToken)
	create(t, ctx, c.CoreV1().Namespaces().Create, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "leader-test"}})

	ls := newLeaders()
	run := func(id string) (context.CancelFunc, chan struct{}) {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		onStart, onStop := ls.callbacks(id)
		go func() {
			defer close(done)
			err := RunLeader(rctx, LeaderConfig{
				Client: a.api(t, adminToken), Namespace: "leader-test", Name: "portpatrol", Identity: id,
				LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond,
			}, onStart, onStop)
			if err != nil {
				t.Errorf("RunLeader %s: %v", id, err)
			}
		}()
		return cancel, done
	}
	cancel1, done1 := run("replica-1")
	first := <-ls.events
	if !first.started || first.id != "replica-1" {
		t.Fatalf("got %+v, want replica-1 to lead first", first)
	}
	cancel2, done2 := run("replica-2")
	defer func() { cancel2(); <-done2 }()

	// replica-2 must not lead while replica-1 holds the Lease.
	select {
	case e := <-ls.events:
		t.Fatalf("unexpected %+v while replica-1 leads", e)
	case <-time.After(2 * time.Second):
	}
	lease, err := c.CoordinationV1().Leases("leader-test").Get(ctx, "portpatrol", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := *lease.Spec.HolderIdentity; got != "replica-1" {
		t.Errorf("lease holder %q, want replica-1", got)
	}

	start := time.Now()
	cancel1()
	<-done1
	for {
		select {
		case e := <-ls.events:
			if e.id == "replica-1" && !e.started {
				continue
			}
			if e.id != "replica-2" || !e.started {
				t.Fatalf("got %+v, want replica-2 to start leading", e)
			}
			t.Logf("failover took %s", time.Since(start).Round(time.Millisecond))
			if n := ls.maxLeaders(); n != 1 {
				t.Errorf("%d replicas led at once, want 1", n)
			}
			return
		case <-time.After(20 * time.Second):
			t.Fatal("replica-2 did not take over within 20s")
		}
	}
}

// TestIntegrationKubeconfig connects through a kubeconfig file and a named context,
// as `portpatrol kube --kubeconfig F --context C` does.
func TestIntegrationKubeconfig(t *testing.T) {
	a := requireAPIServer(t)
	path := filepath.Join(t.TempDir(), "config")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster: {server: %q, certificate-authority-data: %q}
users:
  - name: admin
    user: {token: %q}
  - name: nobody
    user: {token: wrong}
contexts:
  - name: good
    context: {cluster: test, user: admin}
  - name: bad
    context: {cluster: test, user: nobody}
current-context: bad
`, a.url, base64.StdEncoding.EncodeToString(a.caPEM), adminToken)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 30*time.Second)
	c, _, err := NewClient(path, "good")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ListObjects(ctx, c, "", ""); err != nil {
		t.Errorf("context good: %v", err)
	}
	c, _, err = NewClient(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ListObjects(ctx, c, "", ""); !apierrors.IsUnauthorized(err) {
		t.Errorf("current context bad: got %v, want unauthorized", err)
	}
	if _, _, err := NewClient(path, "nosuch"); err == nil {
		t.Error("unknown context: no error")
	}
}
