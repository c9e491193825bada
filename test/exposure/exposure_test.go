// Package exposure_test checks that every part of portpatrol that judges whether a
// port may face the world — the host watch (through the inventory's exposure
// judgement), the exposure audit and kube lint — judges each entry of the well-known
// services table the same way. It imports packages that must not import each other,
// so it lives in a package of its own.
package exposure_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/portpatrol/portpatrol/internal/audit"
	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/kube"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// verdict is one judge's opinion of a port: whether it is an internal service on a
// public address, and the service's name as the judge reports it.
type verdict struct {
	internal bool
	name     string
}

func (v verdict) String() string {
	if !v.internal {
		return "not internal"
	}
	return fmt.Sprintf("internal %q", v.name)
}

func key(proto string, port uint16) string { return proto + "/" + strconv.Itoa(int(port)) }

// inventoryVerdicts judges every entry as the host watch and portpatrol ls do: a
// listener of unknown owner on 0.0.0.0.
func inventoryVerdicts(svcs []patrol.Service) map[string]verdict {
	out := map[string]verdict{}
	for _, s := range svcs {
		sock := inventory.Socket{Proto: inventory.Proto(s.Proto), State: inventory.StateListen,
			Local: netip.AddrPortFrom(netip.IPv4Unspecified(), s.Port)}
		if s.Proto == "udp" {
			sock.State = inventory.StateClose // how an unconnected UDP socket shows
		}
		name, ok := inventory.Exposed(&sock)
		out[key(s.Proto, s.Port)] = verdict{ok, name}
	}
	return out
}

type scanner []uint16

func (s scanner) Scan(_ context.Context, _ string, _ []uint16) ([]audit.HostScan, error) {
	return []audit.HostScan{{Addr: netip.MustParseAddr("127.0.0.1"), Open: s}}, nil
}

type listeners []audit.Listener

func (l listeners) Listeners(context.Context) ([]audit.Listener, error) { return l, nil }

// auditVerdicts runs one exposure audit of this host with every TCP entry open on
// 0.0.0.0 and allowed by a rule that leaves bind to the default: a public_bind finding
// means the audit judged the port internal.
func auditVerdicts(t *testing.T, svcs []patrol.Service) map[string]verdict {
	t.Helper()
	p, err := audit.Parse("policy.yaml", []byte("hosts:\n  - match: local\n    ports: 1-65535\n    allow:\n      - port: 1-65535\n"))
	if err != nil {
		t.Fatal(err)
	}
	var open scanner
	var ls listeners
	out := map[string]verdict{}
	for _, s := range svcs {
		if s.Proto != "tcp" {
			continue // the audit scans TCP only
		}
		open = append(open, s.Port)
		ls = append(ls, audit.Listener{Addr: netip.IPv4Unspecified(), Port: s.Port})
		out[key("tcp", s.Port)] = verdict{}
	}
	rep, err := audit.Run(context.Background(), p, open, ls, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "local")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Kind != audit.PublicBind {
			t.Errorf("unexpected finding %s on port %d: %s", f.Kind, f.Port, f.Message)
			continue
		}
		// "Redis (port 6379) is bound to 0.0.0.0:6379; …"
		name, _, ok := strings.Cut(f.Message, fmt.Sprintf(" (port %d) is bound", f.Port))
		if !ok {
			name = ""
		}
		out[key("tcp", f.Port)] = verdict{true, name}
	}
	return out
}

// kubeVerdicts lints one NodePort Service per entry, its port unnamed so that only
// the number and protocol can tell.
func kubeVerdicts(svcs []patrol.Service) map[string]verdict {
	in := kube.LintInput{}
	keys := map[string]string{}
	out := map[string]verdict{}
	for i, s := range svcs {
		name := fmt.Sprintf("s%d", i)
		keys[name] = key(s.Proto, s.Port)
		out[key(s.Proto, s.Port)] = verdict{}
		in.Services = append(in.Services, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: name},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{
				Port: int32(s.Port), TargetPort: intstr.FromInt32(int32(s.Port)), Protocol: corev1.Protocol(strings.ToUpper(s.Proto)),
			}}},
		})
	}
	for _, f := range kube.Lint(in) {
		if f.Rule != kube.LintInternalExposed {
			continue
		}
		svc := f.Labels[kube.LabelService]
		// "internal service n/s12 (Redis) is exposed through NodePort"
		_, rest, _ := strings.Cut(f.Summary, "n/"+svc+" (")
		name, _, _ := strings.Cut(rest, ") is exposed")
		out[keys[svc]] = verdict{true, name}
	}
	return out
}

// TestJudgesAgree proves that for every entry of the well-known services table the
// inventory (and so the host watch), the exposure audit and kube lint all say whether
// it is internal as the table does, and name it alike.
func TestJudgesAgree(t *testing.T) {
	svcs := patrol.Services()
	inv := inventoryVerdicts(svcs)
	aud := auditVerdicts(t, svcs)
	lint := kubeVerdicts(svcs)
	internal := 0
	for _, s := range svcs {
		k := key(s.Proto, s.Port)
		want := verdict{}
		if s.Internal {
			want = verdict{true, s.Desc}
			internal++
		}
		if got := inv[k]; got != want {
			t.Errorf("%s %s: inventory says %v, want %v", k, s.Name, got, want)
		}
		if got := lint[k]; got != want {
			t.Errorf("%s %s: kube lint says %v, want %v", k, s.Name, got, want)
		}
		if s.Proto != "tcp" {
			continue
		}
		if got := aud[k]; got != want {
			t.Errorf("%s %s: the audit says %v, want %v", k, s.Name, got, want)
		}
	}
	if internal < 40 {
		t.Errorf("%d internal services in the table, want at least 40", internal)
	}
}

// TestDocsListInternalServices keeps the list in docs/security.md equal to the table:
// every internal entry is listed there and every port listed is internal.
func TestDocsListInternalServices(t *testing.T) {
	doc, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok1 := strings.Cut(string(doc), "<!-- internal services -->")
	list, _, ok2 := strings.Cut(rest, "<!-- /internal services -->")
	if !ok1 || !ok2 {
		t.Fatal("docs/security.md has no <!-- internal services --> list")
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`\b(\d+)(/udp)?\b`).FindAllStringSubmatch(list, -1) {
		proto := "tcp"
		if m[2] != "" {
			proto = "udp"
		}
		listed[proto+"/"+m[1]] = true
	}
	for _, s := range patrol.Services() {
		k := key(s.Proto, s.Port)
		if s.Internal != listed[k] {
			t.Errorf("%s (%s): internal %v in the table, listed %v in docs/security.md", k, s.Desc, s.Internal, listed[k])
		}
		delete(listed, k)
	}
	for k := range listed {
		t.Errorf("docs/security.md lists %s, which the table does not know", k)
	}
}
