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
