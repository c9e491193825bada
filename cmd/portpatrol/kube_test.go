package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/portpatrol/portpatrol/internal/kube/clientset"
	"github.com/portpatrol/portpatrol/internal/probe"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// kubeEnv maps the fake cluster's addresses onto loopback; any other dial fails the
// test without leaving the machine. The Env is closed when the test ends.
func kubeEnv(t *testing.T, m map[string]string) *probe.Env {
	env := &probe.Env{Dial: testsvc.MapDial(t, m)}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("close the probe environment: %v", err)
		}
	})
	return env
}

func exitOf(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return -1
	}
	return exitOK
}

func TestKubeCheck(t *testing.T) {
	sel := map[string]string{"app": "web"}
	ready := true
	c := clientset.New(fake.NewClientset(
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
			Spec: corev1.ServiceSpec{Selector: sel, ClusterIP: "10.96.0.10",
				Ports: []corev1.ServicePort{{Name: "tcp", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "api"}, ClusterIP: "10.96.0.11",
				Ports: []corev1.ServicePort{{Port: 8000, TargetPort: intstr.FromInt32(8000), Protocol: corev1.ProtocolTCP}}},
		},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", Labels: sel},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: "web-a", Labels: map[string]string{"kubernetes.io/service-name": "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: new("tcp"), Port: new(int32(8080)), Protocol: new(corev1.ProtocolTCP)}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web-1"}}},
		},
	))
	up := testsvc.Listen(t)
	env := kubeEnv(t, map[string]string{"10.96.0.10:80": up, "10.0.0.1:8080": up, "10.96.0.11:8000": up})

	t.Run("one healthy service", func(t *testing.T) {
		var out bytes.Buffer
		err := runKubeCheck(context.Background(), &out, c, env, kubeCheckFlags{conn: kubeConn{namespace: "shop"}, timeout: 2e9}, []string{"web"})
		if code := exitOf(err); code != exitOK {
			t.Errorf("exit %d (%v), want 0\n%s", code, err, out.String())
		}
		for _, want := range []string{"shop/web  ClusterIP 10.96.0.10  selector app=web", "clusterip  OK   tcp://10.96.0.10:80",
			"OK   tcp://10.0.0.1:8080", "pod web-1", "pods: 1 selected"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
		if strings.Contains(out.String(), "shop/api") {
			t.Errorf("output names another Service:\n%s", out.String())
		}
	})
	t.Run("zero endpoints is critical", func(t *testing.T) {
		var out bytes.Buffer
		err := runKubeCheck(context.Background(), &out, c, env, kubeCheckFlags{conn: kubeConn{namespace: "shop"}, timeout: 2e9, json: true}, nil)
		if code := exitOf(err); code != exitCritical {
			t.Errorf("exit %d (%v), want 2", code, err)
		}
		var doc kubeCheckJSON
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		if len(doc.Findings) != 1 || doc.Findings[0].Rule != "kube_no_ready_endpoints" || doc.Findings[0].Severity.String() != "P0" {
			t.Errorf("findings %+v, want one P0 kube_no_ready_endpoints", doc.Findings)
		}
		if len(doc.Targets) != 3 {
			t.Errorf("got %d targets, want 3", len(doc.Targets))
		}
		for _, tg := range doc.Targets {
			if tg.Result == nil || !tg.Result.Up() {
				t.Errorf("target %s: result %+v, want up", tg.Target, tg.Result)
			}
		}
	})
	t.Run("unknown service", func(t *testing.T) {
		err := runKubeCheck(context.Background(), &bytes.Buffer{}, c, env, kubeCheckFlags{conn: kubeConn{namespace: "shop"}, timeout: 2e9}, []string{"nosuch"})
		if code := exitOf(err); code != exitUnknown {
			t.Errorf("exit %d, want 3", code)
		}
	})
	t.Run("layers", func(t *testing.T) {
		var out bytes.Buffer
		err := runKubeCheck(context.Background(), &out, c, &probe.Env{Dial: func(context.Context, string, string) (net.Conn, error) {
			t.Error("no layer selected should be probed")
			return nil, errors.New("no")
		}}, kubeCheckFlags{conn: kubeConn{namespace: "shop"}, timeout: 2e9, layers: []string{"ingress"}}, []string{"web"})
		if code := exitOf(err); code != exitOK {
			t.Errorf("exit %d (%v), want 0", code, err)
		}
		if err := runKubeCheck(context.Background(), &out, c, env, kubeCheckFlags{timeout: 2e9, layers: []string{"pod"}}, nil); exitOf(err) != exitUnknown {
			t.Errorf("unknown layer: got %v, want exit 3", err)
		}
	})
}

func TestKubeLintCommand(t *testing.T) {
	dir := t.TempDir()
	m := filepath.Join(dir, "db.yaml")
	err := os.WriteFile(m, []byte(`apiVersion: v1
kind: Service
metadata: {name: db, namespace: data}
spec:
  type: NodePort
  ports: [{name: postgres, port: 5432}]
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"kube", "lint", "-f", m}, &out, &errb); code != exitCritical {
		t.Errorf("exit %d, want 2\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "kube_internal_exposed") || !strings.Contains(out.String(), m+":1") {
		t.Errorf("output lacks the finding and its place:\n%s", out.String())
	}

	out.Reset()
	if code := run([]string{"kube", "lint", "--sarif", "-f", m}, &out, &errb); code != exitCritical {
		t.Errorf("--sarif: exit %d, want 2", code)
	}
	var sarif struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(out.Bytes(), &sarif); err != nil || sarif.Version != "2.1.0" {
		t.Errorf("--sarif: %v, version %q\n%s", err, sarif.Version, out.String())
	}

	// P2/P3 findings only: 1, as audit (TestAuditCommand) and check exit on warnings.
	low := filepath.Join(dir, "web.yaml")
	if err := os.WriteFile(low, []byte(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{port: 80}, {port: 443}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"kube", "lint", "-f", low}, &out, &errb); code != exitWarning || !strings.Contains(out.String(), "kube_unnamed_port") {
		t.Errorf("P3 findings only: exit %d, want 1 and kube_unnamed_port\n%s%s", code, out.String(), errb.String())
	}

	if code := run([]string{"kube", "lint"}, &out, &errb); code != exitUnknown {
		t.Errorf("neither -f nor live: exit %d, want 3", code)
	}
	if code := run([]string{"kube", "lint", "-f", filepath.Join(dir, "missing.yaml")}, &out, &errb); code != exitUnknown {
		t.Errorf("missing file: exit %d, want 3", code)
	}
}
