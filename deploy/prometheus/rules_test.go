// Package prometheus tests the Prometheus rules in this directory with promtool (built
// by scripts/promtool.sh; .ci/run passes its path in PORTPATROL_PROMTOOL).
package prometheus

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func promtool(t *testing.T) string {
	t.Helper()
	p := os.Getenv("PORTPATROL_PROMTOOL")
	if p == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("PORTPATROL_PROMTOOL is not set: .ci/run sets it to scripts/promtool.sh's binary")
		}
		t.Skip("set PORTPATROL_PROMTOOL=$(scripts/promtool.sh) to test the rules")
	}
	return p
}

func TestRulesCheck(t *testing.T) {
	out, err := exec.Command(promtool(t), "check", "rules", "portpatrol.rules.yml").CombinedOutput()
	t.Logf("promtool check rules:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
}

func TestRulesUnitTests(t *testing.T) {
	out, err := exec.Command(promtool(t), "test", "rules", "rules_test.yml").CombinedOutput()
	t.Logf("promtool test rules:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
}

var metricRE = regexp.MustCompile(`\bportpatrol_[a-z_]+`)

var (
	// nameRE is a metric name written whole; prefixRE a prefix joined to a name at run
	// time ("portpatrol_cluster_"+name), and suffixRE the names such a file passes with
	// their help text (d("members", "Live cluster members…")).
	nameRE   = regexp.MustCompile(`"(portpatrol_[a-z_]+)"`)
	prefixRE = regexp.MustCompile(`"(portpatrol_[a-z_]+_)"\s*\+\s*[a-z]`)
	suffixRE = regexp.MustCompile(`\b[a-z]\w*\("([a-z][a-z_]*)",\s*"`)
)

// TestRulesNameOnlyExportedMetrics: every metric the rules read is one portpatrol's
// exporters name in their source (a histogram's _bucket, _sum and _count included).
func TestRulesNameOnlyExportedMetrics(t *testing.T) {
	exported := map[string]bool{}
	err := filepath.WalkDir("../../internal", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		for _, m := range nameRE.FindAllSubmatch(b, -1) {
			exported[string(m[1])] = true
		}
		for _, p := range prefixRE.FindAllSubmatch(b, -1) {
			for _, m := range suffixRE.FindAllSubmatch(b, -1) {
				exported[string(p[1])+string(m[1])] = true
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile("portpatrol.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range metricRE.FindAllString(string(rules), -1) {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && exported[b] {
				base = b
			}
		}
		if !exported[base] {
			t.Errorf("the rules read %s, which portpatrol does not export", name)
		}
	}
}
