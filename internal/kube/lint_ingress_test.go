package kube

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Ingress manifests against the Services beside them: a backend Service that is not
// there, a port the Service lacks, a port by number the Service names, and a TLS entry
// without secretName; the Ingress that does everything right has no finding.
func TestLintIngressManifests(t *testing.T) {
	in, _, err := LoadManifests("testdata/lint-ingress")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Ingresses) != 2 {
		t.Fatalf("read %d Ingresses, want 2", len(in.Ingresses))
	}
	var got []string
	for _, f := range Lint(in) {
		if strings.HasPrefix(f.Subject, "kube:shop/ingress/") {
			got = append(got, f.Severity.String()+" "+string(f.Rule)+" "+f.Subject+" "+f.Source+": "+f.Summary)
		}
	}
	want := []string{
		"P1 kube_ingress_backend_missing kube:shop/ingress/front/cart:80 testdata/lint-ingress/shop.yaml:23: Ingress shop/front routes shop.example.com/cart to Service cart, which does not exist in these manifests",
		"P1 kube_ingress_backend_missing kube:shop/ingress/front/web:8080 testdata/lint-ingress/shop.yaml:23: Ingress shop/front routes admin.shop.example.com/old to port 8080 of Service web, which has no such port (it has http(80), admin(9000))",
		"P2 kube_ingress_tls_no_secret kube:shop/ingress/front/tls/1 testdata/lint-ingress/shop.yaml:23: Ingress shop/front spec.tls[1] (admin.shop.example.com) has no secretName",
		"P3 kube_ingress_numeric_port kube:shop/ingress/front/web:9000 testdata/lint-ingress/shop.yaml:23: Ingress shop/front routes admin.shop.example.com/ to port 9000 of Service web by number; the Service names it \"admin\"",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Ingress findings (-want +got):\n%s", diff)
	}
	var sarif bytes.Buffer
	if err := WriteSARIF(&sarif, "test", Lint(in)); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Rule{LintIngressNumericPort, LintIngressTLSNoSecret, RuleIngressBackendMissing} {
		if !strings.Contains(sarif.String(), ruleDocs[r]) || ruleDocs[r] == "" {
			t.Errorf("SARIF lacks the description of %s", r)
		}
	}
}

// An Ingress annotated portpatrol.io/enabled: "false" is skipped, and its default
// backend is checked like a rule's.
func TestLintIngressDefaultBackendAndOptOut(t *testing.T) {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "d"},
		Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "gone", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}
	fs := Lint(LintInput{Ingresses: []*networkingv1.Ingress{ing}})
	if len(fs) != 1 || fs[0].Rule != RuleIngressBackendMissing || !strings.Contains(fs[0].Summary, "routes its default backend to Service gone, which does not exist in the cluster") || fs[0].Source != "live" {
		t.Errorf("got %+v, want the missing default backend, live", fs)
	}
	ing.Annotations = map[string]string{AnnotationEnabled: "false"}
	if fs := Lint(LintInput{Ingresses: []*networkingv1.Ingress{ing}}); len(fs) != 0 {
		t.Errorf("opted out: got %+v, want nothing", fs)
	}
}

// Live: Ingresses and Services created in the real API server, read back through
// ListObjects as kube lint live does.
func TestLintIngressLive(t *testing.T) {
	a := requireAPIServer(t)
	c := a.client(t, adminToken)
	ctx := ctxT(t, time.Minute)
	const ns = "lint-ingress"
	create(t, ctx, c.CoreV1().Namespaces().Create, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	create(t, ctx, c.CoreV1().Services(ns).Create, service(ns, "web", map[string]string{"app": "web"},
		withPort("http", 80, intstr.FromInt32(8080)), withPort("admin", 9000, intstr.FromInt32(9000))))
	create(t, ctx, c.NetworkingV1().Ingresses(ns).Create, ingress(ns, "by-number", "", "web", networkingv1.ServiceBackendPort{Number: 80}))
	create(t, ctx, c.NetworkingV1().Ingresses(ns).Create, ingress(ns, "by-name", "", "web", networkingv1.ServiceBackendPort{Name: "http"}))
	create(t, ctx, c.NetworkingV1().Ingresses(ns).Create, ingress(ns, "missing", "", "nosuch", networkingv1.ServiceBackendPort{Name: "http"}))
	tls := ingress(ns, "tls", "shop.example.com", "web", networkingv1.ServiceBackendPort{Name: "http"})
	tls.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"shop.example.com"}}}
	create(t, ctx, c.NetworkingV1().Ingresses(ns).Create, tls)

	objs, err := ListObjects(ctx, a.api(t, adminToken), ns, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range Lint(LintInput{Services: objs.Services, Ingresses: objs.Ingresses}) {
		if f.Labels[LabelIngress] != "" {
			got = append(got, string(f.Rule)+" "+f.Subject+" "+f.Source)
		}
	}
	want := []string{
		"kube_ingress_backend_missing kube:lint-ingress/ingress/missing/nosuch:http live",
		"kube_ingress_tls_no_secret kube:lint-ingress/ingress/tls/tls/0 live",
		"kube_ingress_numeric_port kube:lint-ingress/ingress/by-number/web:80 live",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("live Ingress findings (-want +got):\n%s", diff)
	}
}
