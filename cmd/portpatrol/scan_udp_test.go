package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

func TestScanUDPCommand(t *testing.T) {
	c, err := net.ListenPacket("udp4", "127.0.0.5:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteTo(buf[:n], from)
		}
	}()
	port := c.LocalAddr().(*net.UDPAddr).Port
	// The neighbours of the answering port have no listener: ICMP port unreachable.
	code, out, errs := runCmd("scan", "-sU", "127.0.0.5", "-p", fmt.Sprintf("%d-%d", port-1, port+1), "--timeout", "200ms", "-oG", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if want := fmt.Sprintf("Ports: %d/open/udp//", port); !strings.Contains(out, want) {
		t.Errorf("greppable output lacks %q:\n%s", want, out)
	}
	if !strings.Contains(out, "Ignored State: closed (2)") {
		t.Errorf("want the two ports without a listener closed:\n%s", out)
	}
	for _, args := range [][]string{
		{"scan", "127.0.0.1", "--udp", "--syn", "-p", "53"},
		{"scan", "127.0.0.1", "--udp", "--identify", "-p", "53"},
		{"scan", "127.0.0.1", "--udp"},
	} {
		if code, _, errs := runCmd(args...); code != exitUnknown {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUnknown, errs)
		}
	}
}
