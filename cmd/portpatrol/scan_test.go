package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func listenLoopback(t *testing.T, addr string) int {
	t.Helper()
	ln, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestScanCommand(t *testing.T) {
	port := listenLoopback(t, "127.0.0.4")
	ports := fmt.Sprintf("%d-%d", port-2, port+2)
	code, out, errs := runCmd("scan", "127.0.0.4", "-p", ports, "-oG", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if want := fmt.Sprintf("Host: 127.0.0.4 ()\tPorts: %d/open/tcp//", port); !strings.Contains(out, want) {
		t.Errorf("greppable output lacks %q:\n%s", want, out)
	}
	code, out, _ = runCmd("scan", "--json", "-p", fmt.Sprint(port), "127.0.0.4")
	var rep struct {
		Hosts []struct {
			Ports []struct {
				Port  int    `json:"port"`
				State string `json:"state"`
			} `json:"ports"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
		t.Fatalf("exit %d, JSON %v:\n%s", code, err, out)
	}
	if len(rep.Hosts) != 1 || len(rep.Hosts[0].Ports) != 1 || rep.Hosts[0].Ports[0].State != "open" {
		t.Errorf("JSON report = %+v, want port %d open", rep, port)
	}
}

func TestScanCommandRefuses(t *testing.T) {
	for _, args := range [][]string{
		{"scan", "192.0.2.1", "-p", "22"},
		{"scan", "127.0.0.1", "--allow", "127.0.0.2/32", "-p", "22"},
		{"scan", "127.0.0.1", "-p", "0"},
		{"scan", "127.0.0.1", "-p", "22", "--top", "10"},
		{"scan"},
	} {
		code, _, errs := runCmd(args...)
		if code != exitUnknown {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUnknown, errs)
		}
	}
	_, _, errs := runCmd("scan", "192.0.2.1", "-p", "22")
	if !strings.Contains(errs, "192.0.2.1") || !strings.Contains(errs, "127.0.0.0/8") {
		t.Errorf("refusal %q should name the target and the allow list", errs)
	}
}

func TestAuditCommand(t *testing.T) {
	port := listenLoopback(t, "127.0.0.5")
	dir := t.TempDir()
	write := func(allow string) string {
		p := filepath.Join(dir, "ports.yaml")
		policy := fmt.Sprintf("scan:\n  ports: %d-%d\nhosts:\n  - match: 127.0.0.5\n    allow: [%s]\n", port-1, port+1, allow)
		if err := os.WriteFile(p, []byte(policy), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	junit := filepath.Join(dir, "audit.xml")
	policy := write("1")
	code, out, errs := runCmd("audit", "--policy", policy, "--junit", junit, "--json")
	if code != exitCritical {
		t.Fatalf("unauthorised port (P1): exit %d, want 2\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, `"kind": "unauthorised_open"`) || !strings.Contains(out, fmt.Sprintf(`"port": %d`, port)) {
		t.Errorf("JSON lacks the finding:\n%s", out)
	}
	x, err := os.ReadFile(junit)
	if err != nil || !strings.Contains(string(x), `<failure type="unauthorised_open"`) {
		t.Errorf("JUnit report (err %v) lacks the failure:\n%s", err, x)
	}
	lowered := filepath.Join(dir, "lowered.yaml")
	body, _ := os.ReadFile(write("1"))
	os.WriteFile(lowered, append([]byte("severity: {unauthorised_open: P3}\n"), body...), 0o644)
	if code, out, errs := runCmd("audit", "--policy", lowered); code != exitWarning {
		t.Errorf("unauthorised port lowered to P3: exit %d, want 1\n%s%s", code, out, errs)
	}
	code, out, errs = runCmd("audit", "--policy", write(fmt.Sprint(port)))
	if code != exitOK {
		t.Errorf("allowed port: exit %d, want 0\n%s%s", code, out, errs)
	}
	code, _, errs = runCmd("audit", "--policy", policy, "127.0.0.6")
	if code != exitUnknown || !strings.Contains(errs, "not named by the policy") {
		t.Errorf("unnamed target: exit %d (%s), want 3", code, errs)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("hosts:\n  - match: local\n    alow: [22]\n"), 0o644)
	code, _, errs = runCmd("audit", "--policy", bad)
	if code != exitUnknown || !strings.Contains(errs, "bad.yaml:3:5: hosts[0].alow: unknown field") {
		t.Errorf("bad policy: exit %d, %q", code, errs)
	}
}
