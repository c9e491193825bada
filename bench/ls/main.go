// Command ls-bench times the built portpatrol binary against ss, in one run, and prints
// each figure beside its goal and the anchor it is measured against:
//
//   - `portpatrol version`: start-up alone (package initialisation, command tree),
//     against a Go program that does nothing (this benchmark re-executed with -noop)
//     and /bin/true — the floors of a Go process and of any process;
//   - `portpatrol ls` against `ss -tlnp` on the host as it is (quiet): goal ≤ 1.0×;
//   - the same with -conns established loopback connections held open: goal ≤ 0.5×;
//   - `portpatrol ls --all --tcp` against `ss -tanp` with the connections held: ≤ 1.0×.
//
// Each command runs -rounds times after one warm-up; the median wall time and the
// median CPU time (user+system of the child, from its rusage) are printed.
//
//	make build && go run ./bench/ls -bin bin/portpatrol     (what `make bench` runs)
//
// The connections are opened by this program on 127.0.0.1, both ends held here; it
// raises its RLIMIT_NOFILE soft limit to the hard limit when 2×-conns descriptors need it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "bin/portpatrol", "the built portpatrol binary to time")
	conns := flag.Int("conns", 5000, "established loopback connections to hold open for the loaded runs")
	rounds := flag.Int("rounds", 21, "timed runs of each command; the median is reported")
	noop := flag.Bool("noop", false, "internal: exit at once (the Go start-up anchor)")
	flag.Parse()
	if *noop {
		return
	}
	if err := run(*bin, *conns, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "ls-bench:", err)
		os.Exit(1)
	}
}

// figure is the median wall and CPU time of one command.
type figure struct{ wall, cpu time.Duration }

func run(bin string, conns, rounds int) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w (build it first: make build)", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	time1 := func(name string, args ...string) (figure, error) {
		f, err := timeCmd(rounds, name, args...)
		if err != nil {
			return f, fmt.Errorf("%s %v: %w", name, args, err)
		}
		return f, nil
	}
	fmt.Printf("%s; %d rounds per command, medians of wall and CPU (user+sys) time\n\n", bin, rounds)

	// Start-up.
	trueF, err := time1("/bin/true")
	if err != nil {
		return err
	}
	noopF, err := time1(self, "-noop")
	if err != nil {
		return err
	}
	verF, err := time1(bin, "version")
	if err != nil {
		return err
	}
	fmt.Println("start-up")
	row("portpatrol version", verF)
	row("anchor: a Go program that does nothing", noopF)
	row("anchor: /bin/true", trueF)
	fmt.Printf("  version spends %.2f ms of wall time beyond a Go program's start (goal ≤ 2 ms: start-up is not where ls's time goes) %s\n\n",
		ms(verF.wall-noopF.wall), verdict(verF.wall-noopF.wall <= 2*time.Millisecond))

	// Quiet host.
	ssQ, err := time1("ss", "-tlnp")
	if err != nil {
		return err
	}
	lsQ, err := time1(bin, "ls")
	if err != nil {
		return err
	}
	fmt.Println("quiet host (whatever listens here now; no connections added)")
	row("portpatrol ls", lsQ)
	row("anchor: ss -tlnp", ssQ)
	ratio("portpatrol ls / ss -tlnp", lsQ, ssQ, 1.0)
	fmt.Println()

	// Loaded host.
	if err := raiseNoFile(uint64(2*conns + 256)); err != nil {
		return err
	}
	release, err := hold(conns)
	if err != nil {
		return err
	}
	defer release()
	ssL, err := time1("ss", "-tlnp")
	if err != nil {
		return err
	}
	lsL, err := time1(bin, "ls")
	if err != nil {
		return err
	}
	ssA, err := time1("ss", "-tanp")
	if err != nil {
		return err
	}
	lsA, err := time1(bin, "ls", "--all", "--tcp")
	if err != nil {
		return err
	}
	fmt.Printf("%d established loopback connections held (%d sockets, owned by this process)\n", conns, 2*conns)
	row("portpatrol ls", lsL)
	row("anchor: ss -tlnp", ssL)
	ratio("portpatrol ls / ss -tlnp", lsL, ssL, 0.5)
	row("portpatrol ls --all --tcp", lsA)
	row("anchor: ss -tanp", ssA)
	ratio("portpatrol ls --all --tcp / ss -tanp", lsA, ssA, 1.0)
	return nil
}

func row(name string, f figure) {
	fmt.Printf("  %-42s wall %8.2f ms   cpu %8.2f ms\n", name, ms(f.wall), ms(f.cpu))
}

func ratio(name string, f, anchor figure, goal float64) {
	w := float64(f.wall) / float64(anchor.wall)
	c := float64(f.cpu) / float64(anchor.cpu)
	fmt.Printf("  %-42s wall %.2f×  cpu %.2f×  (goal ≤ %.1f× wall) %s\n", name, w, c, goal, verdict(w <= goal))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

var devNull, _ = os.OpenFile(os.DevNull, os.O_WRONLY, 0)

// timeCmd runs name once to warm the page cache, then n times, and returns the medians.
func timeCmd(n int, name string, args ...string) (figure, error) {
	once := func() (figure, error) {
		c := exec.Command(name, args...)
		// An *os.File is handed to the child as is; io.Discard would add a pipe and a
		// copying goroutine to every timing.
		c.Stdout = devNull
		t0 := time.Now()
		if err := c.Run(); err != nil {
			return figure{}, err
		}
		wall := time.Since(t0)
		return figure{wall: wall, cpu: c.ProcessState.UserTime() + c.ProcessState.SystemTime()}, nil
	}
	if _, err := once(); err != nil {
		return figure{}, err
	}
	walls, cpus := make([]time.Duration, n), make([]time.Duration, n)
	for i := range n {
		f, err := once()
		if err != nil {
			return figure{}, err
		}
		walls[i], cpus[i] = f.wall, f.cpu
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	return figure{wall: walls[n/2], cpu: cpus[n/2]}, nil
}

// raiseNoFile lifts the soft descriptor limit to at least want, up to the hard limit.
func raiseNoFile(want uint64) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if l.Cur >= want {
		return nil
	}
	if l.Max < want {
		return fmt.Errorf("RLIMIT_NOFILE hard limit %d is below the %d descriptors needed; lower -conns", l.Max, want)
	}
	l.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("setrlimit: %w", err)
	}
	return nil
}

// hold opens n established connections to a listener on 127.0.0.1 and keeps both ends
// until release is called.
func hold(n int) (release func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var held []net.Conn
	release = func() {
		ln.Close()
		for _, c := range held {
			c.Close()
		}
	}
	accepted := make(chan net.Conn, 128)
	acceptErr := make(chan error, 1)
	go func() {
		for range n {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			accepted <- c
		}
	}()
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			release()
			return nil, fmt.Errorf("dial: %w", err)
		}
		held = append(held, c)
		select {
		case c := <-accepted:
			held = append(held, c)
		case err := <-acceptErr:
			release()
			return nil, fmt.Errorf("accept: %w", err)
		case <-time.After(10 * time.Second):
			release()
			return nil, errors.New("accept: timed out")
		}
	}
	return release, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
