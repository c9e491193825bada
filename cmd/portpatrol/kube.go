package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/kube"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
)

// kubeConn are the flags that say how to reach the cluster.
type kubeConn struct {
	kubeconfig string
	context    string
	namespace  string
	selector   string
}

func (k *kubeConn) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config; in a pod, the service account)")
	fl.StringVar(&k.context, "context", "", "kubeconfig context to use")
	fl.StringVarP(&k.namespace, "namespace", "n", "", "only this namespace (default all)")
	fl.StringVarP(&k.selector, "selector", "l", "", "only Services with these labels (e.g. team=payments)")
}

func (k *kubeConn) client() (kube.Reader, error) {
	c, _, err := kube.NewClient(k.kubeconfig, k.context)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func newKubeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use: "kube",
		Example: `  # Walk every layer of one Service: ClusterIP, slices, endpoints, pods, NodePorts
  portpatrol kube check -n shop api

  # Lint manifests in CI, with SARIF for code scanning
  portpatrol kube lint -f deploy/ --sarif > kube-lint.sarif`,
		Short: "Check and lint Kubernetes Services at every layer",
		Long: `Kubernetes: walk every layer of a Service's ports — EndpointSlices and their
pods, the ClusterIP, each node's NodePort, LoadBalancer addresses and Ingress rules —
and say which layer is at fault; lint Services for exposure and hygiene risks.`,
	}
	cmd.AddCommand(newKubeCheckCmd(), newKubeLintCmd())
	return cmd
}

type kubeCheckFlags struct {
	conn        kubeConn
	timeout     time.Duration
	layers      []string
	nodeAddress string
	json        bool
	config      string
	dns         string
	domain      string
}

func newKubeCheckCmd() *cobra.Command {
	var f kubeCheckFlags
	cmd := &cobra.Command{
		Use:   "check [SERVICE]",
		Short: "Probe every layer of Services once and print a tree",
		Long: `Probe every layer of the Services once — each ready endpoint, the ClusterIP, each
node × NodePort, LoadBalancer addresses and Ingress rules — and print a tree per
Service (Service → ports → slices → endpoints, NodePorts per node, pods) with the
findings that explain the layer at fault.

The probe kind of a port follows its appProtocol, its name (http, https, grpc,
redis, mysql, postgres…, also as a prefix: http-metrics) or the Service annotation
portpatrol.io/probe; anything else is a TCP connect.

Exit codes follow the Nagios plugin convention: 0 OK, 1 WARNING (a finding below P0,
or a failed or slow probe), 2 CRITICAL (a P0 finding such as a Service without ready
endpoints, or a ClusterIP, LoadBalancer or Ingress that does not answer), 3 UNKNOWN
(bad input, or the cluster could not be read).`,
		Example: `  # Every Service of a namespace
  portpatrol kube check -n shop

  # One Service, from inside the cluster network
  portpatrol kube check -n shop web

  # From a laptop, where pod and ClusterIP addresses are unreachable
  portpatrol kube check -n shop --layers nodeport,loadbalancer,ingress

  # Also resolve each Service's name against the cluster DNS (kube-dns's ClusterIP)
  portpatrol kube check -n shop --dns 10.96.0.10`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.conn.client()
			if err != nil {
				return exitf(exitUnknown, "%v", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			env := new(probe.Env)
			defer env.Close()
			return runKubeCheck(ctx, cmd.OutOrStdout(), c, env, f, args)
		},
	}
	f.conn.register(cmd)
	fl := cmd.Flags()
	fl.DurationVar(&f.timeout, "timeout", 3*time.Second, "give up on a probe after this long")
	fl.StringSliceVar(&f.layers, "layers", nil, "probe only these layers: endpoint, clusterip, nodeport, loadbalancer, ingress (default all)")
	fl.StringVar(&f.nodeAddress, "node-address", "InternalIP", "node address type NodePort probes use (InternalIP, ExternalIP)")
	fl.BoolVar(&f.json, "json", false, "print targets, results and findings as JSON")
	fl.StringVarP(&f.config, "config", "c", "", "config file whose modules the portpatrol.io/module annotation may name")
	fl.StringVar(&f.dns, "dns", "", "resolve each Service's <name>.<namespace>.svc.<domain> against this DNS server (ADDR[:PORT], usually kube-dns's ClusterIP) and report a missing or wrong answer")
	fl.StringVar(&f.domain, "cluster-domain", "cluster.local", "the cluster domain, for --dns")
	return cmd
}

// kubeCheckJSON is the --json document of kube check.
type kubeCheckJSON struct {
	Targets  []kubeTargetJSON `json:"targets"`
	Findings []kube.Finding   `json:"findings"`
}

type kubeTargetJSON struct {
	Target string            `json:"target"`
	Labels map[string]string `json:"labels"`
	Result *patrol.Result    `json:"result,omitempty"`
}

func runKubeCheck(ctx context.Context, out io.Writer, c kube.Reader, env *probe.Env, f kubeCheckFlags, args []string) error {
	if f.timeout <= 0 {
		return exitf(exitUnknown, "--timeout must be positive, got %s", f.timeout)
	}
	layers := map[string]bool{}
	for _, l := range f.layers {
		l = strings.ToLower(strings.TrimSpace(l))
		switch kube.Layer(l) {
		case kube.LayerEndpoint, kube.LayerClusterIP, kube.LayerNodePort, kube.LayerLoadBalancer, kube.LayerIngress:
			layers[l] = true
		default:
			return exitf(exitUnknown, "unknown layer %q; known: endpoint, clusterip, nodeport, loadbalancer, ingress", l)
		}
	}
	if f.dns != "" {
		host := f.dns
		if h, _, err := net.SplitHostPort(f.dns); err == nil {
			host = h
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return exitf(exitUnknown, "--dns %q: want the DNS server's IP address, optionally with :PORT (e.g. 10.96.0.10)", f.dns)
		}
	}
	modules := config.BuiltinModules()
	if f.config != "" {
		cfg, err := config.Load(f.config)
		if err != nil {
			return exitf(exitUnknown, "%v", err)
		}
		modules = cfg.Modules
	}
	ns := f.conn.namespace
	if len(args) == 1 && ns == "" {
		ns = metav1.NamespaceDefault
	}
	objs, err := kube.ListObjects(ctx, c, ns, f.conn.selector)
	if err != nil {
		return exitf(exitUnknown, "%v", err)
	}
	snap := kube.Build(objs, kube.Options{NodeAddressType: corev1.NodeAddressType(f.nodeAddress)})
	if len(args) == 1 {
		one, ok := snap.Only(ns, args[0])
		if !ok {
			return exitf(exitUnknown, "service %s/%s not found", ns, args[0])
		}
		snap = one
	}

	var targets []patrol.Target
	for _, t := range snap.Targets {
		if len(layers) == 0 || layers[t.Labels[kube.LabelLayer]] {
			targets = append(targets, t)
		}
	}
	results := probe.RunOnce(ctx, targets, func(name string) (probe.Module, error) {
		if m, ok := modules[name]; ok {
			return m, nil
		}
		return probe.Module{}, fmt.Errorf("unknown module %q (annotation %s)", name, kube.AnnotationModule)
	}, env, f.timeout, 32)
	findings := append(slices.Clone(snap.Findings), kube.Assess(snap, kube.ResultMap(results))...)
	if f.dns != "" {
		svcs := objs.Services
		if len(args) == 1 {
			svcs = slices.DeleteFunc(slices.Clone(svcs), func(s *corev1.Service) bool { return s.Namespace != ns || s.Name != args[0] })
		}
		findings = append(findings, kube.CheckDNS(ctx, svcs, kube.DNSCheck{Server: f.dns, Domain: f.domain, Timeout: f.timeout})...)
	}

	if f.json {
		doc := kubeCheckJSON{Targets: []kubeTargetJSON{}, Findings: findings}
		if doc.Findings == nil {
			doc.Findings = []kube.Finding{}
		}
		for _, t := range snap.Targets {
			j := kubeTargetJSON{Target: t.ID, Labels: t.Labels}
			if r, ok := results[t.ID]; ok {
				j.Result = &r
			}
			doc.Targets = append(doc.Targets, j)
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return err
		}
	} else {
		if len(snap.Services) == 0 && len(snap.Ingresses) == 0 {
			fmt.Fprintln(out, "no Services found")
		}
		if err := kube.WriteTree(out, snap, kube.ResultMap(results), findings); err != nil {
			return err
		}
	}
	if code := kubeCheckExit(snap, results, findings); code != exitOK {
		return exitCode(code)
	}
	return nil
}

// kubeCheckExit: CRITICAL for a P0 finding or a client-facing layer (ClusterIP,
// LoadBalancer, Ingress) that does not answer; WARNING for any other finding or a failed
// or slow probe.
func kubeCheckExit(snap *kube.Snapshot, results map[string]patrol.Result, findings []kube.Finding) int {
	code := exitOK
	for _, f := range findings {
		if f.Severity == patrol.P0 {
			return exitCritical
		}
		code = exitWarning
	}
	for _, t := range snap.Targets {
		r, ok := results[t.ID]
		if !ok {
			continue
		}
		switch {
		case !r.Up():
			switch kube.Layer(t.Labels[kube.LabelLayer]) {
			case kube.LayerClusterIP, kube.LayerLoadBalancer, kube.LayerIngress:
				return exitCritical
			}
			code = exitWarning
		case r.Class == patrol.ClassSlow:
			code = exitWarning
		}
	}
	return code
}

type kubeLintFlags struct {
	conn  kubeConn
	files []string
	json  bool
	sarif bool
}

func newKubeLintCmd() *cobra.Command {
	var f kubeLintFlags
	cmd := &cobra.Command{
		Use:   "lint [-f MANIFESTS]... | lint live",
		Short: "Report exposure and hygiene risks of Services and Ingresses, in manifests or live",
		Long: `Lint Services and Ingresses for exposure and hygiene risks:

  kube_internal_exposed          a database, cache or queue on a NodePort or LoadBalancer
  kube_production_nodeport       a NodePort in a namespace labelled production
  kube_unnamed_port              an unnamed port in a multi-port Service (manifests only)
  kube_numeric_target_port       targetPort by number where the container names the port
  kube_target_port_not_exposed   a named targetPort no selected container declares
  kube_selector_matches_nothing  a selector that matches no pod (template)
  kube_external_traffic_cluster  externalTrafficPolicy: Cluster on a LoadBalancer
  kube_ingress_backend_missing   an Ingress backend whose Service or port does not exist
  kube_ingress_numeric_port      an Ingress backend port by number where the Service names it
  kube_ingress_tls_no_secret     an Ingress TLS entry without secretName

With -f, read manifests (multi-document YAML or JSON files, or directories of them);
with "live", read the cluster. --json and --sarif (SARIF 2.1.0, for code scanning)
print machine-readable reports.

Exit codes: 0 no findings, 1 findings of P2 or P3 only, 2 a P0 or P1 finding, 3 the
manifests or the cluster could not be read.`,
		Example: `  # In CI, on the rendered manifests, for GitHub code scanning
  portpatrol kube lint -f deploy/ --sarif > kube-lint.sarif

  # Against the cluster
  portpatrol kube lint live -n shop`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 || len(args) == 1 && args[0] != "live" {
				return fmt.Errorf("want -f MANIFESTS or live, got %q", strings.Join(args, " "))
			}
			if (len(args) == 1) == (len(f.files) > 0) {
				return fmt.Errorf("want either -f MANIFESTS or live")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var c kube.Reader
			if len(args) == 1 {
				var err error
				if c, err = f.conn.client(); err != nil {
					return exitf(exitUnknown, "%v", err)
				}
			}
			return runKubeLint(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), c, f)
		},
	}
	f.conn.register(cmd)
	fl := cmd.Flags()
	fl.StringSliceVarP(&f.files, "filename", "f", nil, "manifest file or directory (repeatable)")
	fl.BoolVar(&f.json, "json", false, "print findings as JSON")
	fl.BoolVar(&f.sarif, "sarif", false, "print findings as SARIF 2.1.0")
	return cmd
}

// runKubeLint lints manifests (f.files) or, when c is set, the live cluster.
func runKubeLint(ctx context.Context, out, errOut io.Writer, c kube.Reader, f kubeLintFlags) error {
	if f.json && f.sarif {
		return exitf(exitUnknown, "--json and --sarif are exclusive")
	}
	var in kube.LintInput
	if c == nil {
		var skipped int
		var err error
		in, skipped, err = kube.LoadManifests(f.files...)
		if err != nil {
			return exitf(exitUnknown, "%v", err)
		}
		if !f.json && !f.sarif {
			fmt.Fprintf(out, "read %d Service%s, %d Ingress%s and %d workload%s (%d other document%s skipped)\n",
				len(in.Services), kubePlural(len(in.Services)), len(in.Ingresses), kubePluralEs(len(in.Ingresses)),
				len(in.Workloads), kubePlural(len(in.Workloads)), skipped, kubePlural(skipped))
		}
	} else {
		objs, err := kube.ListObjects(ctx, c, f.conn.namespace, f.conn.selector)
		if err != nil {
			return exitf(exitUnknown, "%v", err)
		}
		in = kube.LintInput{Services: objs.Services, Workloads: kube.WorkloadsFromPods(objs.Pods), Ingresses: objs.Ingresses}
		if f.conn.selector != "" {
			// The selector narrows the Services only: an Ingress's backend outside it
			// would read as missing.
			in.Ingresses = nil
			fmt.Fprintln(errOut, "portpatrol: with --selector, Ingresses are not linted (their backends may be Services outside it)")
		}
		nss, err := kube.ListNamespaces(ctx, c)
		switch {
		case err == nil:
			in.Namespaces = nss
		case errors.IsForbidden(err):
			fmt.Fprintln(errOut, "portpatrol: cannot list namespaces; the production-namespace check is skipped")
		default:
			return exitf(exitUnknown, "%v", err)
		}
	}
	fs := kube.Lint(in)
	var err error
	switch {
	case f.sarif:
		err = kube.WriteSARIF(out, version, fs)
	case f.json:
		err = kube.WriteJSON(out, fs)
	default:
		err = kube.WriteFindings(out, fs)
	}
	if err != nil {
		return err
	}
	if code := findingsExit(fs, func(f kube.Finding) patrol.Severity { return f.Severity }); code != exitOK {
		return exitCode(code)
	}
	return nil
}

func kubePluralEs(n int) string {
	if n == 1 {
		return ""
	}
	return "es"
}

func kubePlural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
