package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryLinksOnlyTheKubernetesGroupsItUses guards the binary's size and start-up
// time: client-go's Clientset, its scheme and its informer factory link and register
// every API group of Kubernetes (they doubled the binary and its package
// initialisation), so only internal/kube/clientset — a test helper — may import them.
func TestBinaryLinksOnlyTheKubernetesGroupsItUses(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	banned := []string{
		"k8s.io/client-go/kubernetes",
		"k8s.io/client-go/informers",
		"k8s.io/client-go/tools/leaderelection",
		"k8s.io/client-go/discovery",
		"github.com/portpatrol/portpatrol/internal/kube/clientset",
	}
	for _, p := range strings.Fields(string(out)) {
		for _, b := range banned {
			if p == b || strings.HasPrefix(p, b+"/") {
				t.Errorf("portpatrol links %s, want none of %s", p, b)
			}
		}
	}
}

// TestProfilerOnlyInBenchBuilds: the net/http/pprof listener that bench/daemon -profile
// uses is linked only with -tags benchprofile, never into a release binary.
func TestProfilerOnlyInBenchBuilds(t *testing.T) {
	for _, tc := range []struct {
		tags []string
		want bool
	}{{nil, false}, {[]string{"-tags", "benchprofile"}, true}} {
		out, err := exec.Command("go", append(append([]string{"list", "-deps"}, tc.tags...), ".")...).Output()
		if err != nil {
			t.Fatalf("go list -deps %v: %v", tc.tags, err)
		}
		got := false
		for _, p := range strings.Fields(string(out)) {
			got = got || p == "net/http/pprof"
		}
		if got != tc.want {
			t.Errorf("go list -deps %v: links net/http/pprof %v, want %v", tc.tags, got, tc.want)
		}
	}
}
