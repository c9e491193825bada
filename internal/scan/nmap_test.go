//go:build linux

package scan

import (
	"bufio"
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAgainstNmap opens a few hundred listeners on random 127.0.0.0/8 addresses and
// ports — some with a full accept queue, which nmap -sT reports as filtered — and checks
// that the scanner and `nmap -sT -p- -n -Pn` agree on every open and filtered port. Three
// addresses are scanned on every port; the rest on the listeners' ports. It skips when
// nmap is missing, except under CI=true.
func TestAgainstNmap(t *testing.T) {
	nmap, err := exec.LookPath("nmap")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nmap is required in CI: %v", err)
		}
		t.Skip("nmap not installed")
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	addrs := randomLoopback(r, 40)
	full, rest := addrs[:3], addrs[3:]
	var listenerPorts []uint16
	fullQueue := map[netip.AddrPort]bool{}
	for i := 0; i < 300; i++ {
		a := addrs[r.IntN(len(addrs))]
		var port uint16
		if i%40 == 0 {
			// A listener that never accepts, its queue full (backlog 0 or 1).
			for port == 0 {
				port = listenFull(t, a, uint16(1024+r.IntN(60000)), i/40%2)
			}
			fullQueue[netip.AddrPortFrom(a, port)] = true
		} else {
			for port == 0 {
				port = listenAt(t, a, uint16(1+r.IntN(65535)))
			}
		}
		listenerPorts = append(listenerPorts, port)
	}
	listenerPorts = dedupe(listenerPorts)
	t.Logf("300 listeners on %d addresses (%d with a full queue), %d distinct ports", len(addrs), len(fullQueue), len(listenerPorts))

	s := quickScanner()
	ctx := context.Background()
	mine := map[netip.Addr]map[uint16]State{}
	collect := func(rep *Report) {
		for _, h := range rep.Hosts {
			m := map[uint16]State{}
			for _, p := range h.Ports {
				m[p.Port] = p.State
			}
			mine[h.Addr] = m
		}
	}
	t0 := time.Now()
	rep, err := s.Scan(ctx, addrStrings(full), AllPorts())
	if err != nil {
		t.Fatal(err)
	}
	collect(rep)
	rep, err = s.Scan(ctx, addrStrings(rest), listenerPorts)
	if err != nil {
		t.Fatal(err)
	}
	collect(rep)
	t.Logf("portpatrol: %s", time.Since(t0).Round(time.Millisecond))

	t0 = time.Now()
	theirs := runNmap(t, nmap, "-sT", "-", full)
	for a, m := range runNmap(t, nmap, "-sT", PortList(listenerPorts).String(), rest) {
		theirs[a] = m
	}
	t.Logf("nmap: %s", time.Since(t0).Round(time.Millisecond))

	for _, a := range addrs {
		for _, st := range []State{Open, Filtered} {
			got, want := portsIn(mine[a], st), portsIn(theirs[a], st)
			if !slices.Equal(got, want) {
				t.Errorf("%s %s ports: portpatrol %v, nmap %v", a, st, got, want)
			}
		}
	}
	for ap := range fullQueue {
		if st := mine[ap.Addr()][ap.Port()]; st != Filtered {
			t.Errorf("%s (full accept queue): %s, want filtered", ap, st)
		}
	}
}

// listenAt opens an accepting listener on addr:port; it returns 0 when the port is taken.
func listenAt(t *testing.T, addr netip.Addr, port uint16) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, port).String())
	if err != nil {
		return 0
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
	return port
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func portsIn(m map[uint16]State, st State) []uint16 {
	var out []uint16
	for p, s := range m {
		if s == st {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

var gnmapPort = regexp.MustCompile(`(\d+)/(open|filtered|closed)/tcp`)

// runNmap runs nmap's connect (-sT) or SYN (-sS) scan and parses its greppable output.
func runNmap(t *testing.T, nmap, method, ports string, addrs []netip.Addr, extra ...string) map[netip.Addr]map[uint16]State {
	t.Helper()
	args := append([]string{method, "-p", ports, "-n", "-Pn", "-oG", "-"}, extra...)
	args = append(args, addrStrings(addrs)...)
	out, err := exec.Command(nmap, args...).Output()
	if err != nil {
		t.Fatalf("nmap %s: %v", strings.Join(args, " "), err)
	}
	res := map[netip.Addr]map[uint16]State{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "Host: ") || !strings.Contains(line, "\tPorts: ") {
			continue
		}
		a, err := netip.ParseAddr(strings.Fields(line)[1])
		if err != nil {
			t.Fatalf("nmap line %q: %v", line, err)
		}
		m := map[uint16]State{}
		for _, f := range gnmapPort.FindAllStringSubmatch(line, -1) {
			n, _ := strconv.Atoi(f[1])
			var st State
			_ = st.UnmarshalText([]byte(f[2]))
			m[uint16(n)] = st
		}
		res[a] = m
	}
	return res
}
