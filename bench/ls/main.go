// Command ls-bench times portpatrol's socket inventory against ss and lsof with
// thousands of established loopback connections held open, and prints the figures
// beside the goals: `portpatrol ls` (listeners with owners and established counts) at
// most 0.75× `ss -tlnp`, and `ls --all` (every TCP socket with owners) at most 1×
// `ss -tanp`.
//
//	go run ./bench/ls                         # 5,000 connections, in-process inventory
//	go run ./bench/ls -conns 5000 -bin ./portpatrol   # also time the built binary
//
// One side of the connections lives in a child process (this program re-executed), so
// each process holds about -conns descriptors; ulimit -n must exceed that.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"github.com/portpatrol/portpatrol/internal/inventory"
)

func main() {
	conns := flag.Int("conns", 5000, "established loopback connections to hold open")
	rounds := flag.Int("rounds", 15, "timed runs of each command; the median is reported")
	bin := flag.String("bin", "", "a built portpatrol binary to time as well (ls, ls --all)")
	child := flag.String("child", "", "internal: dial this address -conns times and hold the connections")
	flag.Parse()
	if *child != "" {
		os.Exit(holdClients(*child, *conns))
	}
	if err := run(*conns, *rounds, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "ls-bench:", err)
		os.Exit(1)
	}
}

// holdClients dials addr n times, says "ready" on stdout and waits for stdin to close.
func holdClients(addr string, n int) int {
	held := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		held = append(held, c)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range held {
		c.Close()
	}
	return 0
}

func run(conns, rounds int, bin string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	accepted := make(chan int, 1)
	go func() {
		var held []net.Conn
		for len(held) < conns {
			c, err := ln.Accept()
			if err != nil {
				break
			}
			held = append(held, c)
		}
		accepted <- len(held)
		select {} // keep the connections open until the program exits
	}()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-child", ln.Addr().String(), "-conns", strconv.Itoa(conns))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		return fmt.Errorf("child did not get ready: %q %v", line, err)
	}
	if n := <-accepted; n != conns {
		return fmt.Errorf("accepted %d of %d connections", n, conns)
	}
	fmt.Printf("holding %d established loopback connections (%d sockets); %d rounds, median\n\n", conns, 2*conns, rounds)

	ctx := context.Background()
	warm := inventory.New(inventory.Config{})
	lsFn := func(inv *inventory.Inventory) func() error {
		return func() error {
			_, err := inv.Listeners(ctx, inventory.Filter{Owners: true, Established: true})
			return err
		}
	}
	allFn := func() error {
		_, err := inventory.New(inventory.Config{}).Sockets(ctx, inventory.Filter{Proto: inventory.TCP, Owners: true})
		return err
	}
	cold := func() error { return lsFn(inventory.New(inventory.Config{}))() }

	type row struct {
		name string
		fn   func() error
	}
	rows := []row{
		{"ss -tlnp", command("ss", "-tlnp")},
		{"portpatrol ls (in-process, cold cache)", cold},
		{"portpatrol ls (in-process, warm cache: a watch tick)", lsFn(warm)},
		{"ss -tanp", command("ss", "-tanp")},
		{"portpatrol ls --all (in-process, cold cache)", allFn},
	}
	if bin != "" {
		rows = append(rows, row{"portpatrol ls (binary)", command(bin, "ls")},
			row{"portpatrol ls --all --tcp (binary)", command(bin, "ls", "--all", "--tcp")})
	}
	if _, err := exec.LookPath("lsof"); err == nil {
		rows = append(rows, row{"lsof -iTCP -sTCP:LISTEN", command("lsof", "-nP", "-iTCP", "-sTCP:LISTEN")})
	}
	res := make(map[string]time.Duration)
	for _, r := range rows {
		d, err := median(rounds, r.fn)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		res[r.name] = d
		fmt.Printf("%-55s %9.2f ms\n", r.name, ms(d))
	}
	fmt.Println()
	goal := func(name, ref string, limit float64) {
		if res[name] == 0 || res[ref] == 0 {
			return
		}
		ratio := float64(res[name]) / float64(res[ref])
		verdict := "met"
		if ratio > limit {
			verdict = "MISSED"
		}
		fmt.Printf("%-45s = %.2f × %-9s (goal ≤ %.2f×) %s\n", name, ratio, ref, limit, verdict)
	}
	goal("portpatrol ls (in-process, cold cache)", "ss -tlnp", 0.75)
	goal("portpatrol ls (binary)", "ss -tlnp", 0.75)
	goal("portpatrol ls --all (in-process, cold cache)", "ss -tanp", 1)
	goal("portpatrol ls --all --tcp (binary)", "ss -tanp", 1)
	fmt.Println("\nreference on this machine kind: ss -tlnp ≈ 91 ms, ss -tanp ≈ 143 ms, lsof ≈ 344 ms")
	return nil
}

func command(name string, args ...string) func() error {
	return func() error {
		c := exec.Command(name, args...)
		c.Stdout = io.Discard
		return c.Run()
	}
}

func median(n int, fn func() error) (time.Duration, error) {
	if err := fn(); err != nil { // warm the page cache and the dentries
		return 0, err
	}
	d := make([]time.Duration, n)
	for i := range d {
		t0 := time.Now()
		if err := fn(); err != nil {
			return 0, err
		}
		d[i] = time.Since(t0)
	}
	slices.Sort(d)
	return d[n/2], nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
