package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/inventory"
)

func runInv(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func loopbackListener(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func TestLsShowsListener(t *testing.T) {
	_, port := loopbackListener(t)
	out, errOut, code := runInv(t, "ls", "--tcp", "--port", port)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := regexp.MustCompile(`tcp\s+127\.0\.0\.1\s+` + port + `\s`)
	if !want.MatchString(out) || !strings.Contains(out, strconv.Itoa(os.Getpid())) || !strings.Contains(out, "RECV-Q/BACKLOG") {
		t.Errorf("got\n%s\nwant a row matching %s and pid %d", out, want, os.Getpid())
	}
	out, _, _ = runInv(t, "ls", "--json", "--port", port, "--process", "nonexistent-process")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("--process filter: got %s, want []", out)
	}
}

func TestLsAllJSON(t *testing.T) {
	ln, port := loopbackListener(t)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, errOut, code := runInv(t, "ls", "--state", "estab", "--port", port, "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows []struct {
		State  string `json:"state"`
		Remote string `json:"remote"`
		Owner  *struct {
			PID int `json:"pid"`
		} `json:"owner"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rows) != 1 || rows[0].State != "ESTAB" || rows[0].Remote != c.LocalAddr().String() || rows[0].Owner == nil || rows[0].Owner.PID != os.Getpid() {
		t.Errorf("got %+v, want the one established connection from %s, owned by %d", rows, c.LocalAddr(), os.Getpid())
	}
	if _, _, code := runInv(t, "ls", "--state", "bogus"); code != exitUnknown {
		t.Errorf("--state bogus: got exit %d, want %d", code, exitUnknown)
	}
}

// TestLsMarksPublicInternalService renders a Redis listener on 0.0.0.0.
func TestLsMarksPublicInternalService(t *testing.T) {
	s := inventory.Socket{Proto: inventory.TCP, State: inventory.StateListen, Local: netip.MustParseAddrPort("0.0.0.0:6379"), SendQ: 511,
		Owner: &inventory.Owner{PID: 42, Command: "redis-server", User: "redis"}}
	row := lsRow{Socket: s}
	row.Exposed, _ = inventory.Exposed(&s)
	var b bytes.Buffer
	printListeners(&b, []lsRow{row})
	out := b.String()
	if !strings.Contains(out, "0.0.0.0 !") || !strings.Contains(out, "! Redis listens on a public bind (0.0.0.0:6379)") {
		t.Errorf("got\n%s\nwant the bind marked and a footnote", out)
	}
}

func TestWho(t *testing.T) {
	ln, port := loopbackListener(t)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, spec := range []string{port, ":" + port, "127.0.0.1:" + port} {
		out, errOut, code := runInv(t, "who", spec)
		if code != exitOK {
			t.Fatalf("who %s: exit %d: %s", spec, code, errOut)
		}
		for _, want := range []string{fmt.Sprintf("(pid %d)", os.Getpid()), "command", "since", "connections (1):", c.LocalAddr().String()} {
			if !strings.Contains(out, want) {
				t.Errorf("who %s: got\n%s\nwant %q in it", spec, out, want)
			}
		}
	}
	if _, _, code := runInv(t, "who", "[::1]:"+port); code != exitWarning {
		t.Errorf("who [::1]:%s (listener on 127.0.0.1 only): got exit %d, want %d", port, code, exitWarning)
	}
	ln2, port2 := loopbackListener(t)
	ln2.Close()
	if _, errOut, code := runInv(t, "who", port2); code != exitWarning || !strings.Contains(errOut, "nothing listens") {
		t.Errorf("who on a free port: got exit %d %q, want %d and 'nothing listens'", code, errOut, exitWarning)
	}
	for _, bad := range []string{"abc", "0", "70000", "::1:80", "host:80"} {
		if _, _, code := runInv(t, "who", bad); code != exitUnknown {
			t.Errorf("who %q: got exit %d, want %d", bad, code, exitUnknown)
		}
	}
}

func TestDoctorExitCodes(t *testing.T) {
	_, port := loopbackListener(t)
	out, _, code := runInv(t, "doctor", "127.0.0.1:"+port)
	if code != exitOK || !strings.Contains(out, "Likely cause: none") {
		t.Errorf("doctor on a listener: got exit %d\n%s\nwant 0 and no cause", code, out)
	}
	out, _, code = runInv(t, "doctor", "--timeout", "1s", "127.0.0.2:"+port)
	if code != exitCritical || !strings.Contains(out, "listens on 127.0.0.1 only") {
		t.Errorf("doctor 127.0.0.2: got exit %d\n%s\nwant 2 and the bind address as cause", code, out)
	}
	out, _, code = runInv(t, "doctor", "--bind", "127.0.0.1:"+port)
	if code != exitCritical || !strings.Contains(out, fmt.Sprintf("in use by pid %d", os.Getpid())) {
		t.Errorf("doctor --bind: got exit %d\n%s\nwant 2 and this process as holder", code, out)
	}
	out, _, code = runInv(t, "doctor", "--json", "127.0.0.1:"+port)
	var r struct {
		Problem bool   `json:"problem"`
		Cause   string `json:"likely_cause"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != exitOK || r.Problem {
		t.Errorf("doctor --json: got exit %d %+v %v\n%s", code, r, err, out)
	}
	for _, args := range [][]string{{"doctor"}, {"doctor", "a b"}, {"doctor", "--bind", "x"}, {"doctor", "--bind", "80", "127.0.0.1:80"}} {
		if _, _, code := runInv(t, args...); code != exitUnknown {
			t.Errorf("%v: got exit %d, want %d", args, code, exitUnknown)
		}
	}
}
