// Command daemon benchmarks the whole daemon as a user runs it: it writes a config
// with -targets TCP targets on loopback, runs the real binary (`portpatrol serve`,
// SQLite store, alerting on with a webhook receiver, host watch off) and measures it
// from outside: start-up until /-/ready, resident memory (VmRSS) over the run, CPU
// (utime+stime) per probe, the scheduler's lag from the daemon's own /metrics, and the
// size of one /metrics scrape. Each figure is printed beside its goal.
//
//	go run ./bench/daemon [-targets 100000] [-duration 2m] [-interval 60s] [-bin bin/portpatrol] [-profile DIR]
//
// With -profile DIR the binary is built with -tags benchprofile (or -bin must be such
// a build), serves net/http/pprof on a loopback port of its own, and at every report
// this program saves a heap profile (inuse_space as of the last GC) to DIR and prints
// the Go runtime's view beside RSS: heap in use, heap idle and not yet returned,
// goroutine stacks, and the heap goal.
//
// Half of the targets (-open) point at listeners this program opens on 127.x.y.z
// addresses, the others at ports nothing listens on, so failures, state changes and
// alerts happen. A process may hold only so many descriptors, so the listeners are
// spread over child processes of this program, 18,000 each. All traffic stays on
// 127.0.0.0/8.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Goals from the issue "performance round two".
const (
	goalRSS100k   = 200 << 20  // after an hour of probing, 100,000 targets
	goalRSS1M     = 1500 << 20 // 1,000,000 targets
	goalStartup1M = 10 * time.Second
	goalLagP99    = 50 * time.Millisecond
	goalIdleCPU   = 0.001                  // of a core, no targets
	goalProbeCPU  = 100 * time.Microsecond // end to end per probe at 50 probes/s
	perChild      = 18000                  // listeners per child process, under a 20,000 descriptor limit
)

type params struct {
	targets  int
	open     float64
	duration time.Duration
	interval time.Duration
	timeout  time.Duration
	report   time.Duration
	bin      string
	ports    int
	keep     bool
	suite    bool
	profile  string
	// child mode: serve listeners for open targets [from, from+count)
	childFrom, childCount int
	openBase              int
}

func main() {
	var p params
	flag.IntVar(&p.targets, "targets", 100000, "configured TCP targets")
	flag.Float64Var(&p.open, "open", 0.5, "share of targets whose port is open (the rest are refused)")
	flag.DurationVar(&p.duration, "duration", 2*time.Minute, "how long to run after the daemon is ready (an hour is -duration 1h)")
	flag.DurationVar(&p.interval, "interval", 60*time.Second, "probe interval of every target")
	flag.DurationVar(&p.timeout, "timeout", 2*time.Second, "probe timeout")
	flag.DurationVar(&p.report, "report", 15*time.Second, "print RSS and CPU this often")
	flag.StringVar(&p.bin, "bin", "", "the portpatrol binary (default: build bin/portpatrol)")
	flag.IntVar(&p.ports, "ports", 8, "ports per loopback address")
	flag.BoolVar(&p.keep, "keep", false, "keep the config and data directory")
	flag.BoolVar(&p.suite, "suite", false, "run the low-rate suite instead: no targets, 500 and 5,000 targets @10s and 100,000 @60s, each for -duration, and print CPU per probe beside the goals")
	flag.StringVar(&p.profile, "profile", "", "save heap profiles of the daemon to this directory at every report and print the Go runtime's memory figures (builds with -tags benchprofile)")
	flag.IntVar(&p.childFrom, "child-from", -1, "internal: serve listeners from this open target")
	flag.IntVar(&p.childCount, "child-count", 0, "internal: number of listeners to serve")
	flag.IntVar(&p.openBase, "open-base", 0, "internal: first open port")
	flag.Parse()
	var err error
	switch {
	case p.childFrom >= 0:
		err = child(p)
	case p.suite:
		err = suite(os.Stdout, p)
	default:
		_, err = run(os.Stdout, p)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "daemon bench:", err)
		os.Exit(1)
	}
}

// addr is the loopback address of the a-th group of targets: 127.1.0.1 onwards,
// skipping .0 and .255 in the last byte.
func addr(a int) string {
	return fmt.Sprintf("127.%d.%d.%d", 1+a/(250*250), a/250%250, a%250+1)
}

// openTarget and closedTarget are the host:port of the j-th open and closed target.
func openTarget(j, ports, base int) string {
	return net.JoinHostPort(addr(j/ports), strconv.Itoa(base+j%ports))
}

func closedTarget(j, ports, base int) string {
	return net.JoinHostPort(addr(j/ports), strconv.Itoa(base+j%ports))
}

// child binds its share of the open targets' listeners, says "ready", and accepts and
// closes connections until its parent closes its stdin.
func child(p params) error {
	lns := make([]net.Listener, 0, p.childCount)
	for j := p.childFrom; j < p.childFrom+p.childCount; j++ {
		ln, err := net.Listen("tcp4", openTarget(j, p.ports, p.openBase))
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				c.Close()
			}
		}()
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, ln := range lns {
		ln.Close()
	}
	return nil
}

// freePorts finds two runs of p ports, one for listeners and one left closed, that
// nothing on this machine holds on the wildcard or loopback addresses.
func freePorts(p int) (open, closed int, err error) {
	free := func(base int) bool {
		for port := base; port < base+p; port++ {
			for _, h := range []string{"0.0.0.0", "127.0.0.1", addr(0)} {
				ln, err := net.Listen("tcp4", net.JoinHostPort(h, strconv.Itoa(port)))
				if err != nil {
					return false
				}
				ln.Close()
			}
		}
		return true
	}
	var found []int
	for base := 42000; base < 60000 && len(found) < 2; base += 100 {
		if free(base) {
			found = append(found, base)
		}
	}
	if len(found) < 2 {
		return 0, 0, errors.New("no free port range")
	}
	return found[0], found[1], nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// summary is what one run measured, for the suite's table.
type summary struct {
	targets  int
	interval time.Duration
	ready    time.Duration // how long the daemon ran after ready
	cpu      time.Duration // its CPU over that time
	probes   float64
	rss      int64
}

// suite runs the daemon at low and moderate rates and prints CPU per probe and idle
// CPU beside the goals of issue "performance round two" (goal 6).
func suite(w io.Writer, p params) error {
	runs := []struct {
		targets  int
		interval time.Duration
	}{{0, 10 * time.Second}, {500, 10 * time.Second}, {5000, 10 * time.Second}, {100000, 60 * time.Second}}
	var sums []summary
	for _, r := range runs {
		q := p
		q.targets, q.interval = r.targets, r.interval
		q.timeout = min(p.timeout, r.interval)
		fmt.Fprintf(w, "\n=== %d targets @ %s for %s\n", r.targets, r.interval, p.duration)
		s, err := run(w, q)
		if err != nil {
			return err
		}
		sums = append(sums, s)
	}
	fmt.Fprintf(w, "\nthe daemon at low rates (each run %s after ready; load average %s now)\n", p.duration, loadavg())
	fmt.Fprintf(w, "%10s %9s %10s %12s %14s %10s  %s\n", "targets", "interval", "probes/s", "CPU (core)", "CPU per probe", "RSS", "goal")
	for _, s := range sums {
		secs := s.ready.Seconds()
		cores := s.cpu.Seconds() / secs
		perProbe, goal := "-", ""
		if s.probes > 0 {
			pp := time.Duration(float64(s.cpu) / s.probes)
			perProbe = fmt.Sprintf("%.1f µs", float64(pp)/1e3)
			if rate := float64(s.targets) / s.interval.Seconds(); rate <= 60 {
				goal = verdict(pp <= goalProbeCPU, "goal ≤ 100 µs per probe at 50 probes/s")
			}
		} else if s.targets == 0 {
			goal = verdict(cores <= goalIdleCPU, "goal idle ≤ 0.1 % of a core")
		}
		fmt.Fprintf(w, "%10d %9s %10.1f %11.3f%% %14s %10s  %s\n", s.targets, s.interval, s.probes/secs, 100*cores, perProbe, mb(s.rss), goal)
	}
	fmt.Fprintf(w, "CPU is the daemon's user+system time from /proc over the run after ready (ticks of 10 ms), probes from its /metrics.\n")
	return nil
}

func run(w io.Writer, p params) (sum summary, err error) {
	dir, err := os.MkdirTemp("", "portpatrol-daemon-bench-")
	if err != nil {
		return sum, err
	}
	if !p.keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintln(w, "keeping", dir)
	}
	bin := p.bin
	if bin == "" {
		bin = filepath.Join("bin", "portpatrol")
		t0 := time.Now()
		args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", bin}
		if p.profile != "" {
			bin = filepath.Join("bin", "portpatrol-benchprofile")
			args = []string{"build", "-tags", "benchprofile", "-trimpath", "-o", bin}
		}
		out, err := exec.Command("go", append(args, "./cmd/portpatrol")...).CombinedOutput()
		if err != nil {
			return sum, fmt.Errorf("build: %w: %s", err, out)
		}
		fmt.Fprintf(w, "built %s in %s\n", bin, time.Since(t0).Round(time.Millisecond))
	}
	openBase, closedBase, err := freePorts(p.ports)
	if err != nil {
		return sum, err
	}
	nOpen := int(math.Round(float64(p.targets) * p.open))
	nClosed := p.targets - nOpen

	// Listeners for the open targets, in child processes.
	self, err := os.Executable()
	if err != nil {
		return sum, err
	}
	var children []*exec.Cmd
	defer func() {
		for _, c := range children {
			c.Process.Kill()
			c.Wait()
		}
	}()
	t0 := time.Now()
	for from := 0; from < nOpen; from += perChild {
		n := min(perChild, nOpen-from)
		c := exec.Command(self, "-child-from", strconv.Itoa(from), "-child-count", strconv.Itoa(n),
			"-ports", strconv.Itoa(p.ports), "-open-base", strconv.Itoa(openBase))
		c.Stderr = os.Stderr
		stdin, err := c.StdinPipe()
		if err != nil {
			return sum, err
		}
		defer stdin.Close()
		stdout, err := c.StdoutPipe()
		if err != nil {
			return sum, err
		}
		if err := c.Start(); err != nil {
			return sum, err
		}
		children = append(children, c)
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "ready" {
			return sum, fmt.Errorf("listener process %d: %q %v", len(children), line, err)
		}
	}
	fmt.Fprintf(w, "%d listeners in %d processes on %d addresses (ports %d–%d; %d refused targets on ports %d–%d) in %s\n",
		nOpen, len(children), (nOpen+p.ports-1)/p.ports, openBase, openBase+p.ports-1, nClosed, closedBase, closedBase+p.ports-1,
		time.Since(t0).Round(time.Millisecond))

	// The webhook receiver the alerts go to.
	var notifications atomic.Int64
	sinkLn, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return sum, err
	}
	sink := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		notifications.Add(1)
	})}
	go sink.Serve(sinkLn)
	defer sink.Close()

	listen, err := freeAddr()
	if err != nil {
		return sum, err
	}
	cfgPath := filepath.Join(dir, "portpatrol.yaml")
	if err := writeConfig(cfgPath, p, nOpen, nClosed, openBase, closedBase, sinkLn.Addr().String()); err != nil {
		return sum, err
	}
	dataDir := filepath.Join(dir, "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		return sum, err
	}

	cmd := exec.Command(bin, "serve", "-c", cfgPath, "--data-dir", dataDir, "--listen", listen)
	var pprofBase string
	if p.profile != "" {
		if err := os.MkdirAll(p.profile, 0o755); err != nil {
			return sum, err
		}
		pa, err := freeAddr()
		if err != nil {
			return sum, err
		}
		pprofBase = "http://" + pa
		cmd.Env = append(os.Environ(), "PORTPATROL_BENCH_PPROF="+pa)
		fmt.Fprintf(w, "net/http/pprof of the daemon on %s; heap profiles to %s\n", pprofBase, p.profile)
	}
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return sum, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sum, err
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	base := "http://" + listen
	client := &http.Client{Timeout: 60 * time.Second}
	var peakStart int64
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logf.Name())
			return sum, fmt.Errorf("serve exited before ready: %v\n%s", err, tail(log, 2000))
		default:
		}
		if rss, _, err := sample(pid); err == nil {
			peakStart = max(peakStart, rss)
		}
		if resp, err := client.Get(base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(start) > 10*time.Minute {
			return sum, errors.New("serve not ready within 10 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	startup := time.Since(start)
	rss0, cpu0, err := sample(pid)
	if err != nil {
		return sum, err
	}
	fmt.Fprintf(w, "\nportpatrol serve, %d TCP targets every %s (timeout %s), SQLite, alerting on (webhook), host watch off; load average %s\n",
		p.targets, p.interval, p.timeout, loadavg())
	goalStart := "(goal < 10 s at 1,000,000 targets)"
	if p.targets >= 1000000 {
		goalStart = verdict(startup <= goalStartup1M, "goal < 10 s")
	}
	fmt.Fprintf(w, "start-up to /-/ready: %s %s; RSS %s at ready, peak during start-up %s\n",
		startup.Round(time.Millisecond), goalStart, mb(rss0), mb(peakStart))

	fmt.Fprintf(w, "%10s %10s %10s %12s\n", "t", "RSS", "CPU", "cores")
	var cpu time.Duration
	var lastRSS, peak int64 = rss0, rss0
	lastCPU, lastT := cpu0, time.Now()
	ready := time.Now()
	end := ready.Add(p.duration)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	nextReport := ready.Add(p.report)
	for now := range tick.C {
		r, c, err := sample(pid)
		if err != nil {
			return sum, fmt.Errorf("sample: %w", err)
		}
		lastRSS, peak, cpu = r, max(peak, r), c
		if !now.Before(nextReport) || !now.Before(end) {
			fmt.Fprintf(w, "%10s %10s %10s %12.3f\n", now.Sub(ready).Round(time.Second), mb(r), (c - cpu0).Round(time.Millisecond),
				(c-lastCPU).Seconds()/now.Sub(lastT).Seconds())
			lastCPU, lastT = c, now
			nextReport = nextReport.Add(p.report)
			if pprofBase != "" {
				if err := heapProfile(w, client, pprofBase, filepath.Join(p.profile, fmt.Sprintf("heap-%ds.pb.gz", int(now.Sub(ready).Round(time.Second).Seconds())))); err != nil {
					fmt.Fprintf(w, "%10s profile: %v\n", "", err)
				}
			}
		}
		if !now.Before(end) {
			break
		}
	}
	// The scrape comes after the last CPU sample, so its cost is not counted per probe.
	t1 := time.Now()
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return sum, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return sum, err
	}
	scrape := time.Since(t1)
	m := parseMetrics(string(body))
	probes := m.sum("portpatrol_probes_total")
	fmt.Fprintf(w, "\nafter %s of probing (%s per target, %.0f probes, %.0f failed; %d notifications at the webhook):\n",
		p.duration, p.interval, probes, probes-m.sumWhere("portpatrol_probes_total", `class="ok"`), notifications.Load())
	goalRSS := "(goal ≤ 200 MB at 100,000 targets after an hour)"
	switch {
	case p.targets == 100000 && p.duration >= time.Hour:
		goalRSS = verdict(lastRSS <= goalRSS100k, "goal ≤ 200 MB after an hour")
	case p.targets >= 1000000:
		goalRSS = verdict(lastRSS <= goalRSS1M, "goal ≤ 1.5 GB at 1,000,000 targets")
	case p.targets == 100000:
		goalRSS = "(goal ≤ 200 MB after an hour; this run: " + verdict(lastRSS <= goalRSS100k, "≤ 200 MB so far") + ")"
	}
	fmt.Fprintf(w, "  RSS at the end: %s, peak %s, %s per target %s\n", mb(lastRSS), mb(peak), perTarget(lastRSS, p.targets), goalRSS)
	ran := lastT.Sub(ready)
	sum = summary{targets: p.targets, interval: p.interval, ready: ran, cpu: cpu - cpu0, probes: probes, rss: lastRSS}
	if probes > 0 {
		goal := "(the engine's TCP probe alone: goal ≤ 30 µs)"
		if rate := float64(p.targets) / p.interval.Seconds(); rate <= 60 {
			goal = verdict(time.Duration(float64(cpu-cpu0)/probes) <= goalProbeCPU, "goal ≤ 100 µs end to end at 50 probes/s")
		}
		fmt.Fprintf(w, "  CPU per probe: %.1f µs (all the daemon's CPU since ready: %s over %.0f probes, %.3f%% of a core) %s\n",
			float64((cpu-cpu0).Microseconds())/probes, (cpu - cpu0).Round(time.Millisecond), probes, 100*(cpu-cpu0).Seconds()/ran.Seconds(), goal)
	} else if p.targets == 0 {
		cores := (cpu - cpu0).Seconds() / ran.Seconds()
		fmt.Fprintf(w, "  idle CPU: %.3f%% of a core (%s over %s) %s\n", 100*cores, (cpu - cpu0).Round(time.Millisecond), ran.Round(time.Second),
			verdict(cores <= goalIdleCPU, "goal ≤ 0.1 % of a core"))
	}
	const lag = "portpatrol_scheduler_lag_seconds"
	p50, p99, mx := m.histQuantile(lag, 0.5), m.histQuantile(lag, 0.99), m.histMax(lag)
	fmt.Fprintf(w, "  scheduler lag (histogram bucket bounds): p50 %s, p99 %s, max %s %s\n", bound(p50, m, lag), bound(p99, m, lag), bound(mx, m, lag),
		verdict(p99 <= goalLagP99, "goal p99 < 50 ms"))
	fmt.Fprintf(w, "  results by class: %s\n", m.byLabel("portpatrol_probes_total", "class"))
	fmt.Fprintf(w, "  /metrics: %s in %s, %d series (%.2f per target)\n", mb(int64(len(body))), scrape.Round(time.Millisecond), m.series,
		float64(m.series)/float64(max(p.targets, 1)))
	return sum, nil
}

// heapProfile saves the daemon's heap profile to path and prints the runtime's
// memory figures from the same endpoint's text form.
func heapProfile(w io.Writer, client *http.Client, base, path string) error {
	get := func(u string) ([]byte, error) {
		resp, err := client.Get(u)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s", u, resp.Status)
		}
		return io.ReadAll(resp.Body)
	}
	b, err := get(base + "/debug/pprof/heap")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	txt, err := get(base + "/debug/pprof/heap?debug=1")
	if err != nil {
		return err
	}
	stats := map[string]int64{}
	for _, line := range strings.Split(string(txt), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), " = ")
		if !ok || !strings.HasPrefix(line, "# ") {
			continue
		}
		v, _, _ = strings.Cut(v, " / ") // "# Stack = inuse / sys"
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			stats[k] = n
		}
	}
	fmt.Fprintf(w, "%10s Go: heap in use %s, idle not returned %s, stacks %s, other runtime %s, next GC at %s; %s\n", "",
		mb(stats["HeapInuse"]), mb(stats["HeapIdle"]-stats["HeapReleased"]), mb(stats["Stack"]),
		mb(stats["MSpanInuse"]+stats["MCacheInuse"]+stats["BuckHashSys"]+stats["GCSys"]+stats["OtherSys"]),
		mb(stats["NextGC"]), filepath.Base(path))
	return nil
}

func writeConfig(path string, p params, nOpen, nClosed, openBase, closedBase int, sink string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	b := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(b, "host_watch: {disabled: true}\n")
	fmt.Fprintf(b, "defaults: {interval: %s, timeout: %s}\n", p.interval, p.timeout)
	fmt.Fprintf(b, "scheduler: {concurrency: 512, per_host: 8}\n")
	fmt.Fprintf(b, "notify:\n  receivers:\n    - {name: default, type: webhook, url: \"http://%s/\"}\n", sink)
	fmt.Fprintf(b, "targets:\n")
	// Interleaved, so open and refused targets share the schedule evenly; a few labels
	// as a fleet would carry them.
	for i, j, k := 0, 0, 0; j < nOpen || k < nClosed; i++ {
		var hp string
		if (i%2 == 0 && j < nOpen) || k >= nClosed {
			hp, j = openTarget(j, p.ports, openBase), j+1
		} else {
			hp, k = closedTarget(k, p.ports, closedBase), k+1
		}
		fmt.Fprintf(b, "  - {url: \"tcp://%s\", labels: {team: t%d, env: prod}}\n", hp, i%20)
	}
	if err := b.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sample reads a process's resident set and its CPU time (user + system).
func sample(pid int) (rss int64, cpu time.Duration, err error) {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			rss = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const hz = 100 // USER_HZ, 100 on Linux
	return rss, time.Duration(utime+stime) * time.Second / hz, nil
}

// metrics is a parsed text exposition: the value of every sample by its series line.
type metrics struct {
	samples map[string][]sample_
	series  int
}

type sample_ struct {
	labels string
	value  float64
}

func parseMetrics(text string) metrics {
	m := metrics{samples: map[string][]sample_{}}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		m.series++
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, _ := strconv.ParseFloat(line[sp+1:], 64)
		name, labels := line[:sp], ""
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name, labels = name[:i], name[i:]
		}
		m.samples[name] = append(m.samples[name], sample_{labels, v})
	}
	return m
}

func (m metrics) sum(name string) float64 { return m.sumWhere(name, "") }

func (m metrics) sumWhere(name, has string) float64 {
	var s float64
	for _, x := range m.samples[name] {
		if strings.Contains(x.labels, has) {
			s += x.value
		}
	}
	return s
}

// buckets returns a histogram's cumulative buckets, by upper bound.
func (m metrics) buckets(name string) (les []float64, counts []float64) {
	type b struct{ le, n float64 }
	var bs []b
	for _, x := range m.samples[name+"_bucket"] {
		i := strings.Index(x.labels, `le="`)
		if i < 0 {
			continue
		}
		s := x.labels[i+4:]
		s = s[:strings.IndexByte(s, '"')]
		le, err := strconv.ParseFloat(s, 64)
		if err != nil {
			continue
		}
		bs = append(bs, b{le, x.value})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	for _, x := range bs {
		les, counts = append(les, x.le), append(counts, x.n)
	}
	return les, counts
}

// histQuantile is the upper bound of the bucket that holds quantile q.
func (m metrics) histQuantile(name string, q float64) time.Duration {
	les, counts := m.buckets(name)
	if len(counts) == 0 || counts[len(counts)-1] == 0 {
		return 0
	}
	total := counts[len(counts)-1]
	for i, n := range counts {
		if n >= q*total {
			return secs(les[i])
		}
	}
	return secs(les[len(les)-1])
}

// histMax is the upper bound of the highest bucket that gained a sample.
func (m metrics) histMax(name string) time.Duration {
	les, counts := m.buckets(name)
	for i := range counts {
		if counts[i] == counts[len(counts)-1] {
			return secs(les[i])
		}
	}
	return 0
}

// bound prints a bucket bound: "≤ 25ms", or "> 5s" past the last finite bucket.
func bound(d time.Duration, m metrics, name string) string {
	if d != time.Duration(math.MaxInt64) {
		return "≤ " + d.String()
	}
	les, _ := m.buckets(name)
	if len(les) < 2 {
		return "?"
	}
	return "> " + secs(les[len(les)-2]).String()
}

// byLabel sums a counter by one label, largest first: "ok 1200, refused 900".
func (m metrics) byLabel(name, label string) string {
	sums := map[string]float64{}
	for _, x := range m.samples[name] {
		i := strings.Index(x.labels, label+`="`)
		if i < 0 {
			continue
		}
		v := x.labels[i+len(label)+2:]
		sums[v[:strings.IndexByte(v, '"')]] += x.value
	}
	keys := make([]string, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return sums[keys[i]] > sums[keys[j]] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.0f", k, sums[k])
	}
	return strings.Join(parts, ", ")
}

func secs(s float64) time.Duration {
	if math.IsInf(s, 1) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(s * float64(time.Second))
}

func verdict(ok bool, goal string) string {
	if ok {
		return "(" + goal + ": met)"
	}
	return "(" + goal + ": MISSED)"
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func perTarget(b int64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f B", float64(b)/float64(n))
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
