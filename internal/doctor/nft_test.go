package doctor

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestFirewallRulesGolden(t *testing.T) {
	js, err := os.ReadFile(filepath.Join("testdata", "nft_ruleset.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]FirewallFinding{}
	for _, q := range []struct {
		proto string
		port  int
	}{{"tcp", 4567}, {"tcp", 8050}, {"tcp", 9200}, {"tcp", 7777}, {"tcp", 6000}, {"tcp", 443}, {"tcp", 22}, {"udp", 53}} {
		f, err := FirewallRules(js, q.proto, q.port)
		if err != nil {
			t.Fatal(err)
		}
		got[fmt.Sprintf("%s/%d", q.proto, q.port)] = f
	}
	b, _ := json.MarshalIndent(got, "", "  ")
	p := filepath.Join("testdata", "nft_findings.golden")
	if *update {
		if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if d := cmp.Diff(string(want), string(b)+"\n"); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", p, d)
	}
}

func FuzzFirewallRules(f *testing.F) {
	js, err := os.ReadFile(filepath.Join("testdata", "nft_ruleset.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(js, 4567)
	f.Add([]byte(`{"nftables":[{"rule":{"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":{"range":[1,"x"]}}},{"drop":null}]}}]}`), 1)
	f.Fuzz(func(t *testing.T, b []byte, port int) {
		_, _ = FirewallRules(b, "tcp", port)
	})
}
