//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestScanSYNNeedsRawSockets runs scan --syn without CAP_NET_RAW (this test binary as
// portpatrol, under setpriv when the tests run as root) and expects a clear refusal
// that names what is needed, with no scan made in its place; with the capability the
// same command finds the listener.
func TestScanSYNNeedsRawSockets(t *testing.T) {
	port := listenLoopback(t, "127.0.0.6")
	args := []string{"scan", "127.0.0.6", "-p", fmt.Sprint(port), "--syn"}
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("setpriv (util-linux) is needed to drop CAP_NET_RAW: %v", err)
			}
			t.Skipf("setpriv (util-linux) is needed to drop CAP_NET_RAW: %v", err)
		}
		cmd = exec.Command(setpriv, append([]string{"--bounding-set", "-net_raw", "--inh-caps", "-net_raw", "--", os.Args[0]}, args...)...)
	} else {
		cmd = exec.Command(os.Args[0], args...)
	}
	cmd.Env = append(os.Environ(), "PORTPATROL_TEST_MAIN=1")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stderr.String()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUnknown {
		t.Fatalf("without CAP_NET_RAW: %v, want exit %d\n%s", err, exitUnknown, out)
	}
	for _, want := range []string{"scan --syn needs root or CAP_NET_RAW", "setcap cap_net_raw+ep", "without --syn"} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal lacks %q:\n%s", want, out)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("the refused scan printed results:\n%s", stdout.String())
	}

	if os.Geteuid() != 0 {
		return
	}
	code, res, errs := runCmd(append(args, "-oG", "-")...)
	if code != 0 {
		t.Fatalf("scan --syn as root: exit %d: %s", code, errs)
	}
	if want := fmt.Sprintf("Ports: %d/open/tcp//", port); !strings.Contains(res, want) {
		t.Errorf("scan --syn output lacks %q:\n%s", want, res)
	}
	code, res, _ = runCmd("scan", "127.0.0.6", "-p", fmt.Sprint(port), "-sS")
	if code != 0 || !strings.Contains(res, "SYNs") {
		t.Errorf("scan -sS: exit %d, want a SYN scan:\n%s", code, res)
	}
}

func TestScanSYNKeepsRefusing(t *testing.T) {
	for _, args := range [][]string{
		{"scan", "10.0.0.1", "-p", "22", "--syn"},
		{"scan", "192.0.2.0/24", "-p", "22", "-sS"},
		{"scan", "127.0.0.1", "-p", "22", "--syn", "--rate", "-5"},
	} {
		code, out, errs := runCmd(args...)
		if code != exitUnknown || out != "" {
			t.Errorf("%v: exit %d, output %q, want %d and nothing scanned (%s)", args, code, out, exitUnknown, errs)
		}
	}
	_, _, errs := runCmd("scan", "10.0.0.1", "-p", "22", "--syn")
	if !strings.Contains(errs, "refusing to scan 10.0.0.1") {
		t.Errorf("refusal %q should name the target", errs)
	}
}
