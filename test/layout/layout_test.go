// Package layout holds the import rules of the repository as a test: the domain
// package imports only the standard library, packages of the same level meet only in
// internal/daemon, and only the command line imports the daemon. A new edge between
// two packages is a design decision; it is made here, on purpose, or not at all.
package layout

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/portpatrol/portpatrol/"

// allowed lists, for each package, the other internal packages it may import besides
// internal/patrol and packages of its own subtree. Packages not listed may import only
// those.
var allowed = map[string][]string{
	// config decodes the sections whose types their packages own.
	"internal/config":         {"internal/alert", "internal/audit", "internal/automation", "internal/hostwatch", "internal/intrusion", "internal/notify", "internal/probe", "internal/scan", "internal/schedule"},
	"internal/doctor":         {"internal/inventory"},
	"internal/auditlog":       {"internal/store"}, // the chain is kept through store.AuditChainStore
	"internal/exporter":       {"internal/probe"},
	"internal/hostwatch":      {"internal/inventory", "internal/store"},
	"internal/postgres":       {"internal/alert", "internal/notify", "internal/store", "internal/store/sqlstore"},
	"internal/sqlite":         {"internal/alert", "internal/notify", "internal/store", "internal/store/sqlstore"},
	"internal/store/sqlstore": {"internal/notify", "internal/store"},
	// The Alertmanager provider speaks the webhook's payload.
	"internal/notify/alertmanager": {"internal/notify/webhook"},
	// Automation records every decision in the audit chain.
	"internal/automation": {"internal/auditlog"},
	// Bans are recorded in the audit chain and kept in the store (store.BanStore), so
	// that they are re-applied after a restart.
	"internal/intrusion": {"internal/auditlog", "internal/store"},
	// An agent is a probe-only process of its own: the cluster member, the targets it
	// is given (a configuration document), and the probes and scheduler that run them.
	"internal/agent": {"internal/cluster", "internal/config", "internal/probe", "internal/schedule"},
}

// shared are the packages every package below a prefix may import: the notification
// providers share field checks, templates and sending.
var shared = map[string][]string{
	"internal/notify/": {"internal/notify/receiver", "internal/notify/render", "internal/notify/send"},
}

// helpers are test-support packages, free to import what the tests they serve need.
var helpers = []string{"internal/testsvc", "internal/store/storetest", "internal/alert/storetest",
	"internal/notify/storetest", "internal/notify/notifytest", "internal/kube/clientset"}

func imports(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		m[strings.TrimPrefix(f[0], module)] = f[1:]
	}
	return m
}

// violation says why pkg may not import imp (a full import path), or "" when it may.
func violation(pkg, imp string) string {
	dep, ours := strings.CutPrefix(imp, module)
	switch {
	case pkg == "internal/patrol":
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			return "the domain package uses the standard library only"
		}
		return ""
	case !ours:
		return ""
	case strings.HasPrefix(dep, "cmd/"):
		return "nothing imports the command line"
	case dep == "internal/daemon":
		if pkg == "cmd/portpatrol" {
			return ""
		}
		return "only cmd/portpatrol runs the daemon"
	case !strings.HasPrefix(pkg, "internal/") || pkg == "internal/daemon" || slices.Contains(helpers, pkg):
		return ""
	case dep == "internal/patrol" || slices.Contains(helpers, dep) || strings.HasPrefix(dep, pkg+"/"):
		return ""
	case slices.Contains(allowed[pkg], dep):
		return ""
	}
	for prefix, deps := range shared {
		if strings.HasPrefix(pkg, prefix) && slices.Contains(deps, dep) {
			return ""
		}
	}
	return "packages of the same level meet in internal/daemon through interfaces the using package declares (or add the edge to allowed, on purpose)"
}

func TestViolation(t *testing.T) {
	tests := []struct {
		pkg, imp string
		bad      bool
	}{
		{"internal/probe", module + "internal/alert", true},
		{"internal/probe", module + "internal/patrol", false},
		{"internal/patrol", "github.com/google/go-cmp/cmp", true},
		{"internal/patrol", "net/netip", false},
		{"internal/api", module + "internal/daemon", true},
		{"cmd/portpatrol", module + "internal/daemon", false},
		{"internal/notify/slack", module + "internal/notify/render", false},
		{"internal/notify/slack", module + "internal/notify/webhook", true},
		{"internal/notify", module + "internal/notify/slack", false},
		{"internal/hostwatch", module + "internal/store", false},
		{"internal/store", module + "internal/alert", true},
	}
	for _, tt := range tests {
		if got := violation(tt.pkg, tt.imp) != ""; got != tt.bad {
			t.Errorf("%s importing %s: got violation %v, want %v", tt.pkg, tt.imp, got, tt.bad)
		}
	}
}

func TestImportRules(t *testing.T) {
	all := imports(t)
	if len(all) < 30 {
		t.Fatalf("go list found %d packages; is the test run from its own directory?", len(all))
	}
	for pkg, imps := range all {
		for _, imp := range imps {
			if why := violation(pkg, imp); why != "" {
				t.Errorf("%s imports %s: %s", pkg, strings.TrimPrefix(imp, module), why)
			}
		}
	}
}
