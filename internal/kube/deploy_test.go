package kube

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

const deployDir = "../../deploy"

// applier creates manifest documents through the dynamic client, for real or as a
// server-side dry run (the API server validates and admits them, and stores nothing).
type applier struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

func newApplier(t *testing.T, a *apiServer) *applier {
	t.Helper()
	cfg := a.restConfig(adminToken)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := a.client(t, adminToken)
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Discovery()))}
}

// apply creates every document of a YAML stream; dryRun asks for a server-side dry run.
// It returns the kinds created.
func (ap *applier) apply(t *testing.T, ctx context.Context, name string, data []byte, dryRun bool) []string {
	t.Helper()
	var kinds []string
	for _, d := range splitDocuments(data) {
		var obj map[string]any
		if err := yaml.Unmarshal(d.body, &obj); err != nil {
			t.Fatalf("%s:%d: %v", name, d.line, err)
		}
		u := &unstructured.Unstructured{Object: obj}
		gvk := u.GroupVersionKind()
		m, err := ap.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s:%d: %s: %v", name, d.line, gvk, err)
		}
		opts := metav1.CreateOptions{FieldValidation: "Strict"}
		if dryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		var ri dynamic.ResourceInterface = ap.dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = ap.dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		if _, err := ri.Create(ctx, u, opts); err != nil {
			t.Errorf("%s:%d: create %s %s (dry run %v): %v", name, d.line, gvk.Kind, u.GetName(), dryRun, err)
			continue
		}
		kinds = append(kinds, gvk.Kind+"/"+u.GetName())
	}
	return kinds
}

func readDeploy(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "kubernetes", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIntegrationDeployManifests applies deploy/kubernetes: the namespace and RBAC for
// real, the workloads as a server-side dry run, then checks that the service account is
// enough — and no more — for discovery and leader election.
func TestIntegrationDeployManifests(t *testing.T) {
	a := requireAPIServer(t)
	ctx := ctxT(t, 2*time.Minute)
	ap := newApplier(t, a)
	ap.apply(t, ctx, "namespace.yaml", readDeploy(t, "namespace.yaml"), false)
	ap.apply(t, ctx, "rbac.yaml", readDeploy(t, "rbac.yaml"), false)
	// NetworkPolicies for real: networking.k8s.io/v1 is served without a network
	// plugin, which alone would enforce them.
	ap.apply(t, ctx, "networkpolicy.yaml", readDeploy(t, "networkpolicy.yaml"), false)
	ap.apply(t, ctx, "networkpolicy-egress.yaml", readDeploy(t, "networkpolicy-egress.yaml"), true)
	for f, want := range map[string][]string{
		"deployment.yaml": {"Deployment/portpatrol", "Service/portpatrol"},
		"daemonset.yaml":  {"DaemonSet/portpatrol-node", "NetworkPolicy/portpatrol-node"},
		"agent.yaml":      {"Deployment/portpatrol-agent-us-1", "NetworkPolicy/portpatrol-agent-us-1"},
	} {
		if got := ap.apply(t, ctx, f, readDeploy(t, f), true); !slices.Equal(got, want) {
			t.Errorf("%s: created %v, want %v", f, got, want)
		}
	}
	if t.Failed() {
		return
	}
	t.Run("network policy as stored", func(t *testing.T) {
		np, err := a.client(t, adminToken).NetworkingV1().NetworkPolicies("portpatrol").Get(ctx, "portpatrol", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		o := parseDeploy(t, "deploy/kubernetes", append(append(readDeploy(t, "deployment.yaml"), "\n---\n"...), readDeploy(t, "daemonset.yaml")...))
		o.policies["portpatrol"] = np
		checkPolicies(t, o, "portpatrol", "portpatrol-node", defaultFrom)
	})

	sa := a.api(t, saToken)
	t.Run("discovery with the service account", func(t *testing.T) {
		d, err := NewDiscovery(DiscoveryConfig{Client: sa})
		if err != nil {
			t.Fatal(err)
		}
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- d.Run(dctx) }()
		select {
		case <-d.Synced():
		case err := <-done:
			t.Fatalf("discovery stopped before syncing: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("discovery: %v", err)
		}
	})
	t.Run("leader election with the service account", func(t *testing.T) {
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		led := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- RunLeader(lctx, LeaderConfig{Client: sa, Namespace: "portpatrol", Identity: "sa-test",
				LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond},
				func(context.Context) { close(led) }, nil)
		}()
		select {
		case <-led:
		case <-lctx.Done():
			t.Fatal("the service account could not take the Lease")
		}
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	t.Run("nothing more", func(t *testing.T) {
		sa := a.client(t, saToken)
		_, err := sa.CoreV1().Services("portpatrol").Create(ctx, service("portpatrol", "x", nil, withPort("", 80, intstr.FromInt32(80))), metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("creating a Service: got %v, want forbidden", err)
		}
		_, err = sa.CoreV1().Secrets("portpatrol").List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("listing Secrets: got %v, want forbidden", err)
		}
		_, err = sa.CoordinationV1().Leases("default").List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("listing Leases outside its namespace: got %v, want forbidden", err)
		}
	})
}

func helmBinary() string {
	if p := os.Getenv("PORTPATROL_HELM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(cache, "portpatrol", "helm-v3.22.0")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// TestIntegrationHelmChart lints the chart and creates what it renders (with the
// DaemonSet) as a server-side dry run.
func TestIntegrationHelmChart(t *testing.T) {
	helm := helmBinary()
	if helm == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("helm not found under CI: run scripts/helm.sh or set PORTPATROL_HELM")
		}
		t.Skip("helm not found: run scripts/helm.sh or set PORTPATROL_HELM")
	}
	chart := filepath.Join(deployDir, "helm", "portpatrol")
	runHelm(t, helm, "lint", "--strict", chart)
	rendered := runHelm(t, helm, "template", "pp", chart, "--namespace", "portpatrol-helm", "--set", "daemonset.enabled=true")
	// Egress restricted, with every kind of rule it can render.
	restricted := runHelm(t, helm, "template", "pp", chart, "--namespace", "portpatrol-helm", "--set", "daemonset.enabled=true",
		"--set", "networkPolicy.egress.restrict=true", "--set", "networkPolicy.egress.apiServer.cidrs={10.96.0.1/32}",
		"--set-json", `networkPolicy.egress.rules=[{"to":[{"ipBlock":{"cidr":"10.0.0.0/8"}}],"ports":[{"protocol":"TCP","port":5432}]}]`)

	// Cluster mode: three replicas sharing the targets through NATS, the shared store's
	// DSN from a Secret, and agents in two other locations.
	clusterArgs := []string{"template", "pp", chart, "--namespace", "portpatrol-helm", "--set", "replicaCount=3",
		"--set", "cluster.enabled=true", "--set", "cluster.url=nats://nats.nats.svc:4222", "--set", "cluster.location=eu-1",
		"--set", "cluster.storageSecret.name=portpatrol-db",
		"--set-json", `cluster.agents=[{"location":"us-1","replicas":2},{"location":"ap-1"}]`}
	runHelm(t, helm, append([]string{"lint", "--strict", chart}, clusterArgs[3:]...)...)
	clustered := runHelm(t, helm, clusterArgs...)
	for _, want := range []string{
		"cluster:\n      location: eu-1\n      url: nats://nats.nats.svc:4222", // the config's cluster section
		"leader_election: false", "storage: ${PORTPATROL_STORAGE}",
		"name: PORTPATROL_STORAGE\n              valueFrom:\n                secretKeyRef:\n                  name: portpatrol-db",
		"- agent\n            - --cluster\n            - \"nats://nats.nats.svc:4222\"\n            - --location\n            - \"us-1\"",
	} {
		if !bytes.Contains(clustered, []byte(want)) {
			t.Errorf("the chart in cluster mode does not render %q", want)
		}
	}
	// Values that cannot work are refused with what to set.
	for _, tt := range []struct {
		set  []string
		want string
	}{
		{[]string{"cluster.enabled=true"}, "cluster.enabled needs cluster.url"},
		{[]string{"cluster.enabled=true", "cluster.url=nats://n:4222"}, "cluster.enabled needs a shared PostgreSQL store"},
		{[]string{"cluster.enabled=true", "cluster.url=nats://n:4222", "config.storage=postgres://pp@db/pp", "daemonset.enabled=true"},
			"cluster.enabled and daemonset.enabled exclude each other"},
		{[]string{"cluster.agents[0].location=us-1"}, "cluster.agents needs cluster.enabled"},
		{[]string{"cluster.enabled=true", "cluster.url=nats://n:4222", "config.storage=postgres://pp@db/pp", "cluster.agents[0].replicas=2"},
			"every entry of cluster.agents needs a location"},
	} {
		args := []string{"template", "pp", chart}
		for _, v := range tt.set {
			args = append(args, "--set", v)
		}
		if got := helmRefusal(t, helm, args...); !strings.Contains(got, tt.want) {
			t.Errorf("helm template with %v: %q, want a refusal saying %q", tt.set, got, tt.want)
		}
	}

	a := requireAPIServer(t)
	ctx := ctxT(t, time.Minute)
	c := a.client(t, adminToken)
	create(t, ctx, c.CoreV1().Namespaces().Create, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "portpatrol-helm"}})
	ap := newApplier(t, a)
	kinds := ap.apply(t, ctx, "helm template", rendered, true)
	want := []string{"ServiceAccount/pp-portpatrol", "ClusterRole/pp-portpatrol", "ClusterRoleBinding/pp-portpatrol",
		"Role/pp-portpatrol-leader-election", "RoleBinding/pp-portpatrol-leader-election", "Service/pp-portpatrol", "ConfigMap/pp-portpatrol",
		"DaemonSet/pp-portpatrol-node", "Deployment/pp-portpatrol", "NetworkPolicy/pp-portpatrol", "NetworkPolicy/pp-portpatrol-node"}
	for _, k := range want {
		if !slices.Contains(kinds, k) {
			t.Errorf("rendered chart lacks %s; created %v", k, kinds)
		}
	}
	kinds = ap.apply(t, ctx, "helm template (egress restricted)", restricted, true)
	for _, k := range []string{"NetworkPolicy/pp-portpatrol", "NetworkPolicy/pp-portpatrol-node"} {
		if !slices.Contains(kinds, k) {
			t.Errorf("the chart with egress restricted: the API server did not admit %s; created %v", k, kinds)
		}
	}
	kinds = ap.apply(t, ctx, "helm template (cluster mode)", clustered, true)
	for _, k := range []string{"Deployment/pp-portpatrol", "Deployment/pp-portpatrol-agent-us-1", "Deployment/pp-portpatrol-agent-ap-1",
		"NetworkPolicy/pp-portpatrol-agent-us-1", "NetworkPolicy/pp-portpatrol-agent-ap-1", "ConfigMap/pp-portpatrol"} {
		if !slices.Contains(kinds, k) {
			t.Errorf("the chart in cluster mode: the API server did not admit %s; created %v", k, kinds)
		}
	}
	if slices.Contains(kinds, "Role/pp-portpatrol-leader-election") {
		t.Errorf("the chart in cluster mode grants the Lease of the Kubernetes election, which it turns off; created %v", kinds)
	}
}

// helmRefusal runs helm, which must fail, and returns what it said.
func helmRefusal(t *testing.T, helm string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(helm, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if err := cmd.Run(); err == nil {
		t.Errorf("helm %v succeeded, want a refusal", args)
	}
	return out.String()
}

// runHelm runs helm with its caches in temporary directories and returns its output.
func runHelm(t *testing.T, helm string, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(helm, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %v: %v\n%s%s", args, err, out.String(), errb.String())
	}
	return out.Bytes()
}
