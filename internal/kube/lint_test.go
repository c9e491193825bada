package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

func TestLintManifests(t *testing.T) {
	in, skipped, err := LoadManifests("testdata/lint")
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 1 {
		t.Errorf("skipped %d documents, want 1 (the ConfigMap)", skipped)
	}
	fs := Lint(in)
	want := []string{
		"kube_external_traffic_cluster kube:shop/redis P3",
		"kube_internal_exposed kube:shop/redis P1",
		"kube_numeric_target_port kube:shop/web:metrics P3",
		"kube_production_nodeport kube:shop/web-nodeport P2",
		"kube_selector_matches_nothing kube:shop/orphan P2",
		"kube_target_port_not_exposed kube:shop/web-nodeport:81 P1",
		"kube_unnamed_port kube:shop/web-nodeport:80 P3",
		"kube_unnamed_port kube:shop/web-nodeport:81 P3",
	}
	if diff := cmp.Diff(want, findingKeys(fs)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	for _, f := range fs {
		if f.Rule == LintInternalExposed && f.Source != "testdata/lint/shop.yaml:70" {
			t.Errorf("source of %s = %q, want testdata/lint/shop.yaml:70", f.Rule, f.Source)
		}
	}

	var text, sarif, js bytes.Buffer
	if err := WriteFindings(&text, fs); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/lint/shop.txt", text.Bytes())
	if err := WriteSARIF(&sarif, "test", fs); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/lint/shop.sarif", sarif.Bytes())

	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Rules []struct {
						ID string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				RuleIndex int    `json:"ruleIndex"`
				Level     string `json:"level"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
						Region struct {
							StartLine int `json:"startLine"`
						} `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(sarif.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) != len(fs) {
		t.Fatalf("SARIF: version %q, %d runs; want 2.1.0 with one run of %d results", log.Version, len(log.Runs), len(fs))
	}
	for _, r := range log.Runs[0].Results {
		if rules := log.Runs[0].Tool.Driver.Rules; r.RuleIndex >= len(rules) || rules[r.RuleIndex].ID != r.RuleID {
			t.Errorf("result %s: ruleIndex %d does not point at its rule", r.RuleID, r.RuleIndex)
		}
		loc := r.Locations[0].PhysicalLocation
		if loc.ArtifactLocation.URI != "testdata/lint/shop.yaml" || loc.Region.StartLine == 0 {
			t.Errorf("result %s: location %+v, want the manifest file and line", r.RuleID, loc)
		}
	}

	if err := WriteJSON(&js, fs); err != nil {
		t.Fatal(err)
	}
	var back []Finding
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fs, back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}

func TestLintLiveSkipsUnnamedPorts(t *testing.T) {
	svc := service("n", "multi", map[string]string{"app": "x"}, withPort("", 80, intstr.FromInt32(80)), withPort("", 81, intstr.FromInt32(81)))
	in := LintInput{
		Services:   []*corev1.Service{svc},
		Workloads:  WorkloadsFromPods([]*corev1.Pod{pod("n", "x-1", map[string]string{"app": "x"}, true)}),
		Namespaces: []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "n"}}},
	}
	if fs := Lint(in); len(fs) != 0 {
		t.Errorf("live lint: got %v, want no findings", findingKeys(fs))
	}
	in.Manifests = true
	if fs := Lint(in); len(fs) != 2 || fs[0].Rule != LintUnnamedPort || fs[0].Severity != patrol.P3 {
		t.Errorf("manifest lint: got %v, want two unnamed-port findings", findingKeys(fs))
	}
}

func TestLintInternalOverride(t *testing.T) {
	db := service("n", "db", nil, withPort("pg", 5432, intstr.FromInt32(5432)), withType(corev1.ServiceTypeNodePort))
	if fs := Lint(LintInput{Services: []*corev1.Service{db}}); !slices.Contains(findingKeys(fs), "kube_internal_exposed kube:n/db P1") {
		t.Errorf("got %v, want PostgreSQL on a NodePort reported", findingKeys(fs))
	}
	db.Annotations[AnnotationInternal] = "false"
	if fs := Lint(LintInput{Services: []*corev1.Service{db}}); len(fs) != 0 {
		t.Errorf("with %s: \"false\": got %v, want nothing", AnnotationInternal, findingKeys(fs))
	}
}

// TestInternalKind checks how lint recognises an internal service: by the
// appProtocol or port name (whole or its prefix) and by port or numeric targetPort,
// all through the well-known services table.
func TestInternalKind(t *testing.T) {
	udp := func(s *corev1.Service) { s.Spec.Ports[0].Protocol = corev1.ProtocolUDP }
	appProto := func(v string) svcOpt { return func(s *corev1.Service) { s.Spec.Ports[0].AppProtocol = &v } }
	tests := []struct {
		name string
		svc  *corev1.Service
		want string
	}{
		{"redis by port", service("n", "s", nil, withPort("", 6379, intstr.FromInt32(6379))), "Redis"},
		{"sentinel by port", service("n", "s", nil, withPort("", 26379, intstr.FromInt32(26379))), "Redis Sentinel"},
		{"cluster bus by port", service("n", "s", nil, withPort("", 16379, intstr.FromInt32(16379))), "Redis cluster bus"},
		{"php-fpm by port", service("n", "s", nil, withPort("", 9000, intstr.FromInt32(9000))), "PHP-FPM (FastCGI)"},
		{"by targetPort", service("n", "s", nil, withPort("", 80, intstr.FromInt32(5432))), "PostgreSQL"},
		{"by name alias", service("n", "s", nil, withPort("mongo", 80, intstr.FromInt32(80))), "MongoDB"},
		{"by name prefix", service("n", "s", nil, withPort("mariadb-primary", 80, intstr.FromInt32(80))), "MySQL/MariaDB"},
		{"by whole name", service("n", "s", nil, withPort("redis-sentinel", 80, intstr.FromInt32(80))), "Redis Sentinel"},
		{"by appProtocol", service("n", "s", nil, withPort("db", 80, intstr.FromInt32(80)), appProto("postgresql")), "PostgreSQL"},
		{"memcached over udp", service("n", "s", nil, withPort("", 11211, intstr.FromInt32(11211)), udp), "memcached"},
		{"udp on a tcp-only port", service("n", "s", nil, withPort("", 6379, intstr.FromInt32(6379)), udp), ""},
		{"http", service("n", "s", nil, withPort("http", 80, intstr.FromInt32(8080))), ""},
		{"named target port", service("n", "s", nil, withPort("web", 80, intstr.FromString("redis"))), ""},
		{"annotated", service("n", "s", nil, withPort("", 80, intstr.FromInt32(80)), withAnnotation(AnnotationInternal, "true")), "marked " + AnnotationInternal},
		{"annotated false", service("n", "s", nil, withPort("", 6379, intstr.FromInt32(6379)), withAnnotation(AnnotationInternal, "false")), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := internalKind(tt.svc); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseManifestErrors(t *testing.T) {
	tests := []struct {
		name, doc string
		line      int
	}{
		{"no kind", "apiVersion: v1\nmetadata: {name: x}\n", 1},
		{"bad yaml in second document", "kind: Namespace\napiVersion: v1\nmetadata: {name: a}\n---\n# note\nkind: Service\n  bad: [\n", 6},
		{"wrong field type", "---\napiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: 3}\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in LintInput
			_, err := ParseManifest(&in, "m.yaml", []byte(tt.doc))
			var me *ManifestError
			if !errors.As(err, &me) {
				t.Fatalf("got %v, want a *ManifestError", err)
			}
			if me.Line != tt.line || me.File != "m.yaml" {
				t.Errorf("got %s:%d, want m.yaml:%d", me.File, me.Line, tt.line)
			}
		})
	}
}

func TestParseManifestList(t *testing.T) {
	doc := `{"apiVersion":"v1","kind":"List","items":[
	  {"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"ports":[{"port":80}]}},
	  {"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"x":"y"}},"spec":{"containers":[{"name":"c","image":"i"}]}}]}`
	var in LintInput
	if _, err := ParseManifest(&in, "list.json", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	if len(in.Services) != 1 || len(in.Workloads) != 1 {
		t.Errorf("got %d services and %d workloads, want 1 and 1", len(in.Services), len(in.Workloads))
	}
}

func FuzzParseManifest(f *testing.F) {
	seed, _ := os.ReadFile("testdata/lint/shop.yaml")
	f.Add(seed)
	f.Add([]byte("---\n---\nkind: List\napiVersion: v1\nitems: [{}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var in LintInput
		_, _ = ParseManifest(&in, "fuzz.yaml", data)
		fs := Lint(in)
		for _, f := range fs {
			if !strings.HasPrefix(f.Subject, "kube:") {
				t.Fatalf("subject %q", f.Subject)
			}
		}
	})
}
