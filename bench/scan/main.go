// Command scan benchmarks portpatrol's scanner against nmap's connect scan in one run:
// a full 65,535-port TCP scan of 127.0.0.1 by each, alternating, several rounds. It
// prints both times, their ratio and the goal, and fails when the scanner missed an
// open port that nmap found (or found one nmap did not).
//
//	go run ./bench/scan [-rounds 5] [-addr 127.0.0.1]
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/scan"
)

// goal is the target: at most half of nmap's time.
const goal = 0.5

func main() {
	rounds := flag.Int("rounds", 5, "rounds of each scanner; the median time counts")
	addr := flag.String("addr", "127.0.0.1", "loopback address to scan")
	flag.Parse()
	if err := run(*rounds, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "bench/scan:", err)
		os.Exit(1)
	}
}

func run(rounds int, addr string) error {
	ctx := context.Background()
	nmapPath, nmapErr := exec.LookPath("nmap")
	var ours, theirs []time.Duration
	var ourOpen, nmapOpen []uint16
	for r := 0; r < rounds; r++ {
		var s scan.Scanner
		rep, err := s.Scan(ctx, []string{addr}, scan.AllPorts())
		if err != nil {
			return err
		}
		ours = append(ours, rep.Elapsed)
		open := rep.Hosts[0].Open()
		if r > 0 && !slices.Equal(open, ourOpen) {
			fmt.Printf("note: open set changed between rounds: %v -> %v\n", ourOpen, open)
		}
		ourOpen = open
		if nmapErr != nil {
			continue
		}
		t0 := time.Now()
		out, err := exec.CommandContext(ctx, nmapPath, "-sT", "-p-", "-T5", "--min-rate", "50000", "-n", "-Pn", "-oG", "-", addr).Output()
		if err != nil {
			return fmt.Errorf("nmap: %w", err)
		}
		theirs = append(theirs, time.Since(t0))
		nmapOpen = parseGreppable(out)
	}
	med := func(d []time.Duration) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[len(s)/2]
	}
	fmt.Printf("portpatrol scan: 65535 ports of %s, %d open, median %s over %d rounds %v\n",
		addr, len(ourOpen), med(ours).Round(time.Millisecond), rounds, roundAll(ours))
	if nmapErr != nil {
		fmt.Printf("nmap not installed (%v): no comparison; goal is <= %.2fx of nmap -sT -p- -T5 --min-rate 50000\n", nmapErr, goal)
		return nil
	}
	ratio := float64(med(ours)) / float64(med(theirs))
	fmt.Printf("nmap -sT -p- -T5 --min-rate 50000 -n -Pn: %d open, median %s %v\n", len(nmapOpen), med(theirs).Round(time.Millisecond), roundAll(theirs))
	fmt.Printf("ratio portpatrol/nmap = %.2f (goal <= %.2f) %s\n", ratio, goal, verdict(ratio <= goal))
	if !slices.Equal(ourOpen, nmapOpen) {
		return fmt.Errorf("open ports differ: portpatrol %v, nmap %v", ourOpen, nmapOpen)
	}
	fmt.Printf("open ports identical: %v\n", ourOpen)
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

var portRE = regexp.MustCompile(`(\d+)/open/tcp`)

// parseGreppable returns the open ports in nmap -oG output.
func parseGreppable(out []byte) []uint16 {
	var ports []uint16
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "Host:") || !strings.Contains(line, "Ports:") {
			continue
		}
		for _, m := range portRE.FindAllStringSubmatch(line, -1) {
			n, _ := strconv.Atoi(m[1])
			ports = append(ports, uint16(n))
		}
	}
	slices.Sort(ports)
	return ports
}
