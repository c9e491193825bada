package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"go.yaml.in/yaml/v3"

	"github.com/google/go-cmp/cmp"
	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/kube"
	"github.com/portpatrol/portpatrol/internal/kube/clientset"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// TestServeKubernetesZeroEndpointsPagesAndResolves runs serve with discovery on a fake
// clientset: a Service with no ready endpoints is a P0, its ClusterIP is probed (every
// dial mapped onto a loopback listener), and the P0 resolves when an endpoint becomes
// ready.
func TestServeKubernetesZeroEndpointsPagesAndResolves(t *testing.T) {
	up := testsvc.Listen(t)
	client := fake.NewClientset(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "api"}, ClusterIP: "10.96.0.11",
			Ports: []corev1.ServicePort{{Name: "tcp", Port: 8000, TargetPort: intstr.FromInt32(8000), Protocol: corev1.ProtocolTCP}}},
	})
	env := &probe.Env{Dial: testsvc.MapDial(t, map[string]string{"10.96.0.11:8000": up, "10.0.0.7:8000": up})}
	path := filepath.Join(t.TempDir(), "pp.yaml")
	testsvc.WriteFile(t, path, `host_watch: {disabled: true}
defaults: {interval: 200ms, timeout: 100ms}
kubernetes: {enabled: true, leader_election: false}
`)
	d, err := New(Config{Path: path, DataDir: t.TempDir(), KubeClient: clientset.New(client), ProbeEnv: env})
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, d)

	subject := "service:shop/api"
	zeroEndpoints := func() (patrol.Alert, bool) {
		for _, a := range d.engine().List(alert.Filter{}) {
			if a.Rule == string(kube.RuleNoReadyEndpoints) {
				return a, true
			}
		}
		return patrol.Alert{}, false
	}
	eventually(t, "a P0 for the Service with no ready endpoints", func() bool {
		a, ok := zeroEndpoints()
		return ok && a.Severity == patrol.P0 && strings.Contains(a.Summary, "shop/api")
	})
	if a, _ := zeroEndpoints(); a.Target != subject && !strings.Contains(a.Target, "shop/api") {
		t.Errorf("alert subject %q, want the Service", a.Target)
	}
	defer func() {
		if t.Failed() {
			for _, js := range d.sched.Snapshot() {
				t.Logf("job %s state %s labels %v last %v", js.Job.ID, js.Status, js.Job.Labels, js.Last)
			}
		}
	}()
	eventually(t, "the ClusterIP probed as up", func() bool {
		for _, js := range d.sched.Snapshot() {
			if js.Job.ID == "tcp://10.96.0.11:8000" && js.Status == patrol.StatusUp {
				return js.Job.Labels["namespace"] == "shop" && js.Job.Labels["service"] == "api"
			}
		}
		return false
	})

	ctx := t.Context()
	ready := true
	_, err = client.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api-1", Labels: map[string]string{"app": "api"}},
		Status: corev1.PodStatus{PodIP: "10.0.0.7", Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.DiscoveryV1().EndpointSlices("shop").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: "api-a", Labels: map[string]string{"kubernetes.io/service-name": "api"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: new("tcp"), Port: new(int32(8000)), Protocol: new(corev1.ProtocolTCP)}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "api-1"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the P0 resolved once an endpoint is ready", func() bool {
		a, ok := zeroEndpoints()
		return !ok || a.State == patrol.AlertResolved
	})
	eventually(t, "the endpoint probed", func() bool {
		for _, js := range d.sched.Snapshot() {
			if js.Job.ID == "tcp://10.0.0.7:8000" && js.Status == patrol.StatusUp {
				return true
			}
		}
		return false
	})
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("never saw %s within 10s", what)
}

// The configuration the Kubernetes manifests ship must be valid.
func TestDeployConfigMapIsValid(t *testing.T) {
	b, err := os.ReadFile("../../deploy/kubernetes/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	if len(cm.Data) != 2 {
		t.Fatalf("got %d config files, want 2", len(cm.Data))
	}
	for name, body := range cm.Data {
		c, err := config.Parse([]byte(body), name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !c.Kubernetes.Enabled {
			t.Errorf("%s: kubernetes discovery is off", name)
		}
		if name == "portpatrol.yaml" && !slices.Contains(c.API.Hosts, "portpatrol.portpatrol.svc") {
			t.Errorf("%s: api.hosts %q lacks the Service's name: requests through it would get 421", name, c.API.Hosts)
		}
	}
}

func TestKubeAlertFinding(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f := kube.Finding{Rule: kube.RuleNoReadyEndpoints, Class: patrol.AlertUnreachable, Severity: patrol.P0,
		Subject: "kube:shop/api", Summary: "no ready endpoints", Description: "fix it",
		Labels: map[string]string{"namespace": "shop", "service": "api"}, Active: true}
	got := kubeAlertFinding(f, at)
	want := patrol.Finding{Class: patrol.AlertUnreachable, Rule: "kube_no_ready_endpoints", Subject: "kube:shop/api",
		Severity: "P0", Summary: "no ready endpoints", Description: "fix it",
		Labels: map[string]string{"namespace": "shop", "service": "api"}, Active: true, At: at}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
