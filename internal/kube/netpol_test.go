package kube

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// deployObjects are the objects of manifests that the NetworkPolicy tests look at.
type deployObjects struct {
	policies   map[string]*networkingv1.NetworkPolicy
	deployment *appsv1.Deployment
	daemonSet  *appsv1.DaemonSet
}

// parseDeploy decodes, strictly, the NetworkPolicies, Deployment and DaemonSet of a
// YAML stream.
func parseDeploy(t *testing.T, name string, data []byte) deployObjects {
	t.Helper()
	o := deployObjects{policies: map[string]*networkingv1.NetworkPolicy{}}
	for _, d := range splitDocuments(data) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(d.body, &tm); err != nil {
			t.Fatalf("%s:%d: %v", name, d.line, err)
		}
		var into any
		var np *networkingv1.NetworkPolicy
		switch tm.Kind {
		case "NetworkPolicy":
			np = &networkingv1.NetworkPolicy{}
			into = np
		case "Deployment":
			o.deployment = &appsv1.Deployment{}
			into = o.deployment
		case "DaemonSet":
			o.daemonSet = &appsv1.DaemonSet{}
			into = o.daemonSet
		default:
			continue
		}
		if err := yaml.UnmarshalStrict(d.body, into); err != nil {
			t.Errorf("%s:%d: %s: %v", name, d.line, tm.Kind, err)
		}
		if np != nil {
			o.policies[np.Name] = np
		}
	}
	return o
}

// selects reports whether np applies to pods labelled as in tmpl.
func selects(t *testing.T, np *networkingv1.NetworkPolicy, tmpl corev1.PodTemplateSpec) bool {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatalf("NetworkPolicy %s: podSelector: %v", np.Name, err)
	}
	return sel.Matches(labels.Set(tmpl.Labels))
}

// admittedPorts lists the TCP ports np's ingress rules admit; "*" stands for a rule
// without ports, which admits every port.
func admittedPorts(np *networkingv1.NetworkPolicy) []string {
	var out []string
	for _, r := range np.Spec.Ingress {
		if len(r.Ports) == 0 {
			out = append(out, "*")
		}
		for _, p := range r.Ports {
			if p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP {
				out = append(out, p.Port.String())
			}
		}
	}
	return out
}

// checkPolicies asserts what both the plain manifests and the chart promise: the
// controller's policy selects the controller's pods only and admits its HTTP port
// only, from the peers given; the node probers' policy admits nothing.
func checkPolicies(t *testing.T, o deployObjects, controller, node string, from []networkingv1.NetworkPolicyPeer) {
	t.Helper()
	if o.deployment == nil || o.daemonSet == nil {
		t.Fatalf("want a Deployment and a DaemonSet, got %+v", o)
	}
	np := o.policies[controller]
	if np == nil {
		t.Fatalf("no NetworkPolicy %s; have %v", controller, keys(o.policies))
	}
	if !selects(t, np, o.deployment.Spec.Template) {
		t.Errorf("NetworkPolicy %s does not select the controller's pods %v", np.Name, o.deployment.Spec.Template.Labels)
	}
	if selects(t, np, o.daemonSet.Spec.Template) {
		t.Errorf("NetworkPolicy %s selects the node probers too", np.Name)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Errorf("NetworkPolicy %s: policyTypes %v lack Ingress", np.Name, np.Spec.PolicyTypes)
	}
	if got, want := admittedPorts(np), []string{"9115"}; !slices.Equal(got, want) {
		t.Errorf("NetworkPolicy %s admits ports %v, want %v", np.Name, got, want)
	}
	var served []int32
	for _, c := range o.deployment.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			served = append(served, p.ContainerPort)
		}
	}
	if !slices.Equal(served, []int32{9115}) {
		t.Errorf("the controller serves on %v, want the port the policy admits, 9115", served)
	}
	if len(np.Spec.Ingress) != 1 {
		t.Fatalf("NetworkPolicy %s: got %d ingress rules, want 1", np.Name, len(np.Spec.Ingress))
	}
	gotFrom, _ := yaml.Marshal(np.Spec.Ingress[0].From)
	wantFrom, _ := yaml.Marshal(from)
	if string(gotFrom) != string(wantFrom) {
		t.Errorf("NetworkPolicy %s admits from\n%s\nwant\n%s", np.Name, gotFrom, wantFrom)
	}

	nn := o.policies[node]
	if nn == nil {
		t.Fatalf("no NetworkPolicy %s; have %v", node, keys(o.policies))
	}
	if !selects(t, nn, o.daemonSet.Spec.Template) || selects(t, nn, o.deployment.Spec.Template) {
		t.Errorf("NetworkPolicy %s must select the node probers only", nn.Name)
	}
	if !slices.Contains(nn.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || len(nn.Spec.Ingress) != 0 {
		t.Errorf("NetworkPolicy %s: got policyTypes %v and %d ingress rules, want Ingress and none", nn.Name, nn.Spec.PolicyTypes, len(nn.Spec.Ingress))
	}
}

// defaultFrom is who may reach the controller by default: pods of its own namespace and
// of the namespace named monitoring.
var defaultFrom = []networkingv1.NetworkPolicyPeer{
	{PodSelector: &metav1.LabelSelector{}},
	{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}}},
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// egressPorts lists "PROTO/PORT" of every egress rule; "*" for a rule without ports.
func egressPorts(np *networkingv1.NetworkPolicy) []string {
	var out []string
	for _, r := range np.Spec.Egress {
		if len(r.Ports) == 0 {
			out = append(out, "*")
		}
		for _, p := range r.Ports {
			out = append(out, string(*p.Protocol)+"/"+p.Port.String())
		}
	}
	return out
}

func TestDeployNetworkPolicy(t *testing.T) {
	var all []byte
	for _, f := range []string{"deployment.yaml", "daemonset.yaml", "networkpolicy.yaml"} {
		all = append(append(all, readDeploy(t, f)...), "\n---\n"...)
	}
	o := parseDeploy(t, "deploy/kubernetes", all)
	checkPolicies(t, o, "portpatrol", "portpatrol-node", defaultFrom)
	for _, np := range o.policies {
		if np.Namespace != "portpatrol" {
			t.Errorf("NetworkPolicy %s in namespace %q, want portpatrol", np.Name, np.Namespace)
		}
		if slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			t.Errorf("NetworkPolicy %s restricts egress; probe targets are arbitrary, so that is opt-in", np.Name)
		}
	}
	if k := string(readDeploy(t, "kustomization.yaml")); !strings.Contains(k, "- networkpolicy.yaml") || strings.Contains(k, "- networkpolicy-egress.yaml") {
		t.Errorf("kustomization.yaml must install networkpolicy.yaml and leave networkpolicy-egress.yaml out:\n%s", k)
	}

	eg := parseDeploy(t, "networkpolicy-egress.yaml", readDeploy(t, "networkpolicy-egress.yaml")).policies["portpatrol-egress"]
	if eg == nil {
		t.Fatal("networkpolicy-egress.yaml: no NetworkPolicy portpatrol-egress")
	}
	if !selects(t, eg, o.deployment.Spec.Template) || !selects(t, eg, o.daemonSet.Spec.Template) {
		t.Error("portpatrol-egress must select every portpatrol pod")
	}
	if got := egressPorts(eg); !slices.Contains(got, "UDP/53") || !slices.Contains(got, "TCP/443") {
		t.Errorf("portpatrol-egress admits %v, want DNS (UDP/53) and the API server (TCP/443) among them", got)
	}
}

// renderChart runs helm template on the chart with extra arguments, skipping the test
// when there is no helm.
func renderChart(t *testing.T, args ...string) []byte {
	t.Helper()
	helm := helmBinary()
	if helm == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("helm not found under CI: run scripts/helm.sh or set PORTPATROL_HELM")
		}
		t.Skip("helm not found: run scripts/helm.sh or set PORTPATROL_HELM")
	}
	chart := filepath.Join(deployDir, "helm", "portpatrol")
	return runHelm(t, helm, append([]string{"template", "pp", chart, "--namespace", "portpatrol-helm"}, args...)...)
}

func TestHelmNetworkPolicy(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		o := parseDeploy(t, "helm template", renderChart(t, "--set", "daemonset.enabled=true"))
		checkPolicies(t, o, "pp-portpatrol", "pp-portpatrol-node", defaultFrom)
		for _, np := range o.policies {
			if len(np.Spec.Egress) != 0 || slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
				t.Errorf("NetworkPolicy %s restricts egress by default", np.Name)
			}
		}
	})
	t.Run("ingressFrom", func(t *testing.T) {
		o := parseDeploy(t, "helm template", renderChart(t, "--set", "daemonset.enabled=true", "--set-json",
			`networkPolicy.ingressFrom=[{"namespaceSelector":{"matchLabels":{"team":"obs"}},"podSelector":{"matchLabels":{"app":"prometheus"}}}]`))
		checkPolicies(t, o, "pp-portpatrol", "pp-portpatrol-node", []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "obs"}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "prometheus"}},
		}})
	})
	t.Run("restricted egress", func(t *testing.T) {
		o := parseDeploy(t, "helm template", renderChart(t, "--set", "daemonset.enabled=true", "--set", "networkPolicy.egress.restrict=true",
			"--set", "networkPolicy.egress.apiServer.cidrs={10.96.0.1/32}", "--set-json", `networkPolicy.egress.rules=[{"to":[{"ipBlock":{"cidr":"10.0.0.0/8"}}],"ports":[{"protocol":"TCP","port":5432}]}]`))
		for _, name := range []string{"pp-portpatrol", "pp-portpatrol-node"} {
			np := o.policies[name]
			if np == nil {
				t.Fatalf("no NetworkPolicy %s", name)
			}
			if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
				t.Errorf("%s: policyTypes %v lack Egress", name, np.Spec.PolicyTypes)
			}
			if got, want := egressPorts(np), []string{"UDP/53", "TCP/53", "TCP/443", "TCP/6443", "TCP/5432"}; !slices.Equal(got, want) {
				t.Errorf("%s: egress ports %v, want %v", name, got, want)
			}
			if len(np.Spec.Egress) != 3 || len(np.Spec.Egress[1].To) != 1 || np.Spec.Egress[1].To[0].IPBlock == nil ||
				np.Spec.Egress[1].To[0].IPBlock.CIDR != "10.96.0.1/32" {
				t.Errorf("%s: egress %+v, want DNS, the API server at 10.96.0.1/32, and the rule given", name, np.Spec.Egress)
			}
		}
	})
	t.Run("disabled", func(t *testing.T) {
		o := parseDeploy(t, "helm template", renderChart(t, "--set", "daemonset.enabled=true", "--set", "networkPolicy.enabled=false"))
		if len(o.policies) != 0 {
			t.Errorf("networkPolicy.enabled=false still renders %v", keys(o.policies))
		}
	})
}
