// Command engine benchmarks the scheduler driving real tcp probes on loopback, and
// prints each figure beside its goal and the same run with full connects. The
// blackbox_exporter figures it prints are cited from an earlier side-by-side run, with
// their source and date, not measured here.
//
//	go run ./bench/engine [-rate 10000] [-duration 15s] [-listeners 500] [-configured 100000]
//	go test -run '^$' -bench . -benchtime 1x ./bench/engine   (the same, with defaults)
//	go run ./bench/engine -connect [-rate 10000] [-duration 15s] [-cpuprofile f]
//	go run ./bench/engine -http [-http-rate 1000] [-duration 15s] [-cpuprofile f]
//	go run ./bench/engine -tls [-tls-rate 300] [-duration 15s] [-cpuprofile f]
//	go test -run '^$' -bench EngineHTTP -benchtime 1x ./bench/engine
//	go test -run '^$' -bench EngineTLS -benchtime 1x ./bench/engine
//
// It runs two phases, each in a process of its own so that neither's memory or CPU
// shows in the other's figures:
//
//  1. memory: a child process loads -configured tcp jobs (real probe.Probe values)
//     with a one-hour interval, runs the scheduler for a few seconds and reports its
//     resident set size (VmRSS) above the baseline taken before loading.
//  2. throughput: a child process holds -listeners loopback listeners spread over fifty
//     127.0.x.1 addresses and accepts and closes connections; this process schedules
//     -rate jobs with a one-second interval against them and measures probes per
//     second, CPU per probe (getrusage of this process only: scheduler, probes, GC,
//     and the kernel work charged to the connecting side) and the scheduler's lag.
//     Where the default is a half-open check, the same rate with full connects
//     (handshake=full, what an unprivileged prober makes) follows; then the kernel's
//     own connect+close at the same rate, the same syscalls with nothing around them.
//     -connect runs that full-connect measurement and the kernel's floor alone.
//
// With -http it runs a third phase alone: a child process serves HTTP on fifty
// loopback listeners, this process schedules -http-rate http probes per second (plain
// HTTP, a new connection per probe) and measures CPU per probe the same way, then the
// bare equivalent (dial, write the request, read the answer, close) at the same rate.
// With -tls it runs a fourth: a child process completes crypto/tls handshakes on fifty
// listeners with a self-signed ECDSA certificate, this process runs -tls-rate tls
// probes per second (connect, handshake, verify the chain, report its expiry, close),
// then the bare crypto/tls handshake at the same rate, then the bare handshake
// resuming sessions, for context.
//
// All traffic stays on 127.0.0.0/8.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
	"github.com/portpatrol/portpatrol/internal/schedule"
)

// Cited references: figures of blackbox_exporter measured side by side with portpatrol
// in an earlier run on this machine kind, not by this program. They are printed as
// cited, with their source and date, never as measured.
const (
	citedRate = "cited, not measured in this run: blackbox_exporter ≈ 2,800 tcp_connect probes/s with its load generator on the same 2 cores (earlier side-by-side run on this machine kind, docs/benchmarks.md as of 2026-11)"
	citedCPU  = "cited, not measured in this run: blackbox_exporter tcp_connect via /probe 0.35–0.39 CPU-ms/probe on loopback (DESIGN.md, measured on this machine kind, 2026-11)"
)

// childEnv, when set in the environment, makes this program (or its test binary) a
// child of the benchmark: "listen:N" or "mem:N".
const childEnv = "PORTPATROL_ENGINE_CHILD"

// memProfileEnv carries -memprofile to the memory phase's child.
const memProfileEnv = "PORTPATROL_ENGINE_MEMPROFILE"

// params are the benchmark's settings.
type params struct {
	rate       int
	duration   time.Duration
	listeners  int
	configured int
	cpuProfile string
	// concurrency is the scheduler's Config.Concurrency for the throughput phase;
	// zero means the scheduler's default.
	concurrency int
	// httpOnly runs the http phase alone, at httpRate probes per second.
	httpOnly bool
	httpRate int
	// connectOnly runs the full-connect phase alone, beside the kernel's floor.
	connectOnly bool
	// tlsOnly runs the tls phase alone, at tlsRate probes per second.
	tlsOnly bool
	tlsRate int
}

var defaults = params{rate: 10000, duration: 15 * time.Second, listeners: 500, configured: 100000, httpRate: 1000, tlsRate: 300}

// summary holds the headline figures, for Go benchmark metrics.
type summary struct {
	probesPerSec   float64
	cpuPerProbe    time.Duration
	lagP99         time.Duration
	bytesPerTarget float64
}

func main() {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := runChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "engine child:", err)
			os.Exit(1)
		}
		return
	}
	p := defaults
	flag.IntVar(&p.rate, "rate", p.rate, "probes per second to schedule (jobs with a 1s interval)")
	flag.DurationVar(&p.duration, "duration", p.duration, "measured time of the throughput phase, after a 2s warm-up")
	flag.IntVar(&p.listeners, "listeners", p.listeners, "loopback listeners for the throughput phase")
	flag.IntVar(&p.configured, "configured", p.configured, "jobs loaded in the memory phase")
	flag.StringVar(&p.cpuProfile, "cpuprofile", "", "write a CPU profile of the throughput phase to this file")
	memProfile := flag.String("memprofile", "", "write a heap profile of the memory phase, taken when its RSS is read, to this file")
	flag.IntVar(&p.concurrency, "concurrency", 0, "scheduler concurrency cap in the throughput phase (0: the scheduler's default)")
	flag.BoolVar(&p.httpOnly, "http", false, "run only the http phase: CPU per http probe beside the bare equivalent")
	flag.IntVar(&p.httpRate, "http-rate", p.httpRate, "http probes per second in the http phase")
	flag.BoolVar(&p.connectOnly, "connect", false, "run only the full-connect phase: CPU per handshake=full probe beside the kernel's own connect+close")
	flag.BoolVar(&p.tlsOnly, "tls", false, "run only the tls phase: CPU per tls probe beside a bare crypto/tls handshake")
	flag.IntVar(&p.tlsRate, "tls-rate", p.tlsRate, "tls probes per second in the tls phase")
	flag.Parse()
	if *memProfile != "" {
		os.Setenv(memProfileEnv, *memProfile)
	}
	if p.tlsOnly {
		if _, err := tlsThroughput(os.Stdout, p); err != nil {
			fmt.Fprintln(os.Stderr, "engine:", err)
			os.Exit(1)
		}
		return
	}
	if p.connectOnly {
		if _, err := connectPhase(os.Stdout, p); err != nil {
			fmt.Fprintln(os.Stderr, "engine:", err)
			os.Exit(1)
		}
		return
	}
	if p.httpOnly {
		if _, err := httpThroughput(os.Stdout, p); err != nil {
			fmt.Fprintln(os.Stderr, "engine:", err)
			os.Exit(1)
		}
		return
	}
	if _, err := run(os.Stdout, p); err != nil {
		fmt.Fprintln(os.Stderr, "engine:", err)
		os.Exit(1)
	}
}

// run runs both phases and prints their figures to w.
func run(w io.Writer, p params) (summary, error) {
	var sum summary
	out, err := child("mem:" + strconv.Itoa(p.configured))
	if err != nil {
		return sum, err
	}
	defer out.Wait()
	sc := bufio.NewScanner(out.stdout)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "bytes-per-target "); ok {
			sum.bytesPerTarget, _ = strconv.ParseFloat(v, 64)
			continue
		}
		fmt.Fprintln(w, line)
	}
	if err := out.Wait(); err != nil {
		return sum, fmt.Errorf("memory phase: %w", err)
	}
	return throughput(w, p, sum)
}

// childProc is a running child.
type childProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.Reader
	once   sync.Once
	err    error
}

// child starts this program (or its test binary) as a child running spec.
func child(spec string) (*childProc, error) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+spec)
	cmd.Stderr = os.Stderr
	c := &childProc{cmd: cmd}
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if c.stdout, err = cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

// Stop kills the child and waits for it.
func (c *childProc) Stop() {
	_ = c.cmd.Process.Kill()
	_ = c.Wait()
}

// Wait closes the child's input and waits for it to exit.
func (c *childProc) Wait() error {
	c.once.Do(func() {
		c.stdin.Close()
		c.err = c.cmd.Wait()
	})
	return c.err
}

// runChild runs the child side named by spec.
func runChild(spec string) error {
	mode, arg, _ := strings.Cut(spec, ":")
	n, err := strconv.Atoi(arg)
	if err != nil {
		return fmt.Errorf("bad %s %q", childEnv, spec)
	}
	switch mode {
	case "listen":
		return listen(n)
	case "mem":
		return memory(n)
	case "http":
		return httpServe(n)
	case "tls":
		return tlsServe(n)
	}
	return fmt.Errorf("bad %s %q", childEnv, spec)
}

// listenHost returns the loopback address of listener i: fifty hosts, so that the
// default per-host cap applies as it would across a fleet.
func listenHost(i int) string { return fmt.Sprintf("127.0.%d.1", i%50) }

// listen opens n listeners, prints their addresses and "ready", then accepts and
// closes connections until its standard input closes.
func listen(n int) error {
	out := bufio.NewWriter(os.Stdout)
	for i := range n {
		ln, err := net.Listen("tcp", listenHost(i)+":0")
		if err != nil {
			return err
		}
		fmt.Fprintln(out, ln.Addr())
		go func() {
			for {
				c, err := ln.Accept()
				if errors.Is(err, net.ErrClosed) {
					return
				}
				if err != nil { // out of descriptors, aborted connection: keep going
					time.Sleep(time.Millisecond)
					continue
				}
				c.Close()
			}
		}()
	}
	return announceReady(out)
}

// tcpJob builds a scheduler job running a real tcp probe of addr on env.
func tcpJob(env *probe.Env, id, addr, handshake string, interval, timeout time.Duration) (schedule.Job, error) {
	target := "tcp://" + addr
	if handshake != "auto" {
		target += "?handshake=" + handshake
	}
	t, err := patrol.ParseTarget(target)
	if err != nil {
		return schedule.Job{}, err
	}
	t.Timeout = timeout
	p, err := probe.New(t, probe.Module{}, env)
	if err != nil {
		return schedule.Job{}, err
	}
	return schedule.Job{ID: id, Host: t.Host, Interval: interval, Timeout: timeout, Run: p.Run, Try: p.Try()}, nil
}

// figures are what one measured run of the scheduler yields.
type figures struct {
	runs, failed  int64
	firstFailure  string
	perSec        float64
	cpuPerRun     time.Duration
	p50, p99, max time.Duration
	stats         schedule.Stats
}

// measure runs jobs for warmup plus duration and measures the second part.
func measure(jobs []schedule.Job, concurrency int, warmup, duration time.Duration, cpuProfile string) (figures, error) {
	var (
		measuring atomic.Bool
		done      atomic.Int64
		failed    atomic.Int64
		nLag      atomic.Int64
		lags      = make([]time.Duration, 2*len(jobs)*int(duration/time.Second+1))
		firstErr  sync.Once
		f         figures
	)
	s := schedule.New(schedule.Config{Concurrency: concurrency, OnResult: func(ev schedule.Event) {
		done.Add(1)
		if !ev.Result.Up() {
			failed.Add(1)
			firstErr.Do(func() { f.firstFailure = ev.Result.String() })
		}
		if measuring.Load() {
			if i := nLag.Add(1) - 1; int(i) < len(lags) {
				lags[i] = ev.Lag
			}
		}
	}})
	if err := s.Update(jobs); err != nil {
		return f, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		_ = s.Run(ctx)
		close(stopped)
	}()
	defer func() {
		cancel()
		<-stopped
	}()

	time.Sleep(warmup)
	if cpuProfile != "" {
		pf, err := os.Create(cpuProfile)
		if err != nil {
			return f, err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return f, err
		}
		defer pprof.StopCPUProfile()
	}
	measuring.Store(true)
	d0, f0, cpu0, t0 := done.Load(), failed.Load(), cpuTime(), time.Now()
	time.Sleep(duration)
	d1, f1, cpu1, t1 := done.Load(), failed.Load(), cpuTime(), time.Now()
	measuring.Store(false)
	f.stats = s.Stats()

	f.runs, f.failed = d1-d0, f1-f0
	if f.runs == 0 {
		return f, fmt.Errorf("no runs completed in %s", duration)
	}
	f.perSec = float64(f.runs) / t1.Sub(t0).Seconds()
	f.cpuPerRun = (cpu1 - cpu0) / time.Duration(f.runs)
	n := min(int(nLag.Load()), len(lags))
	sample := lags[:n]
	slices.Sort(sample)
	if n > 0 {
		f.p50, f.p99, f.max = sample[n/2], sample[min(n-1, n*99/100)], sample[n-1]
	}
	return f, nil
}

// throughput measures real tcp probes against a listener child, then the scheduler
// alone with no-op jobs at the same rate.
func throughput(w io.Writer, p params, sum summary) (summary, error) {
	const interval, warmup = time.Second, 2 * time.Second

	ls, err := child("listen:" + strconv.Itoa(p.listeners))
	if err != nil {
		return sum, err
	}
	defer ls.Stop()
	stdout := ls.stdout
	sc := bufio.NewScanner(stdout)
	addrs, err := readAddrs(sc, p.listeners, "listener child")
	if err != nil {
		return sum, err
	}

	env := new(probe.Env)
	defer env.Close()
	jobs := make([]schedule.Job, p.rate)
	for i := range jobs {
		addr := addrs[i%len(addrs)]
		j, err := tcpJob(env, fmt.Sprintf("tcp://%s#%d", addr, i), addr, "auto", interval, interval)
		if err != nil {
			return sum, err
		}
		jobs[i] = j
	}
	f, err := measure(jobs, p.concurrency, warmup, p.duration, p.cpuProfile)
	if err != nil {
		return sum, err
	}
	sum.probesPerSec, sum.cpuPerProbe, sum.lagP99 = f.perSec, f.cpuPerRun, f.p99
	conc := p.concurrency
	if conc <= 0 {
		conc = schedule.DefaultConcurrency
	}
	fmt.Fprintf(w, "throughput: %d tcp jobs every %s over %d listeners on 50 addresses (child process), concurrency %d, %s measured after %s warm-up, GOMAXPROCS %d\n",
		p.rate, interval, p.listeners, conc, p.duration, warmup, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "tcp probes/s: %.0f (goal ≥ 10000)\n", f.perSec)
	fmt.Fprintf(w, "  %s\n", citedRate)
	fmt.Fprintf(w, "failed probes: %d of %d", f.failed, f.runs)
	if f.firstFailure != "" {
		fmt.Fprintf(w, " (first: %s)", f.firstFailure)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "scheduler lag p50: %s  p99: %s (goal < 50ms)  max: %s\n", ms(f.p50), ms(f.p99), ms(f.max))
	fmt.Fprintf(w, "CPU per tcp probe: %.1f µs (goal ≤ 30 µs)\n", us(f.cpuPerRun))
	fmt.Fprintf(w, "  %s\n", citedCPU)
	fmt.Fprintf(w, "scheduler: %d runs recorded, %d slots missed, %d runs queued at the end\n", f.stats.Runs, f.stats.Missed, f.stats.Queued)
	var full figures
	if err := env.HalfOpenSupported(); err != nil {
		fmt.Fprintf(w, "handshake: full connects; half-open checks are unavailable here (%v)\n", err)
		full = f
	} else {
		fmt.Fprintf(w, "handshake: half-open (SYN from a raw socket, SYN-ACK or RST read back); the same rate with full connects follows\n")
		if full, err = measureFull(env, addrs, p, ""); err != nil {
			return sum, err
		}
	}
	if err := printFull(w, full, addrs, p); err != nil {
		return sum, err
	}

	if err := schedulerAlone(w, p); err != nil {
		return sum, err
	}
	return sum, nil
}

// measureFull runs p.rate full-connect checks a second (handshake=full: connect,
// then reset) against addrs for p.duration.
func measureFull(env *probe.Env, addrs []string, p params, cpuProfile string) (figures, error) {
	const interval, warmup = time.Second, 2 * time.Second
	jobs := make([]schedule.Job, p.rate)
	for i := range jobs {
		addr := addrs[i%len(addrs)]
		var err error
		if jobs[i], err = tcpJob(env, fmt.Sprintf("tcp://%s#%d", addr, i), addr, "full", interval, interval); err != nil {
			return figures{}, err
		}
	}
	return measure(jobs, p.concurrency, warmup, p.duration, cpuProfile)
}

// printFull prints the full-connect figures beside the kernel's own connect and
// close, measured right after them against the same listeners at the same rate.
func printFull(w io.Writer, full figures, addrs []string, p params) error {
	floor, n, failed, err := connectFloor(addrs, p.rate, time.Second, p.duration/2)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "CPU per tcp probe with handshake=full (connect, then reset; the unprivileged path): %.1f µs at %.0f probes/s, %d failed of %d, lag p99 %s\n",
		us(full.cpuPerRun), full.perSec, full.failed, full.runs, ms(full.p99))
	if full.firstFailure != "" {
		fmt.Fprintf(w, "  first failure: %s\n", full.firstFailure)
	}
	fmt.Fprintf(w, "  measured in the same run: the kernel's own connect+close (socket, connect, SO_LINGER 0, close; same listeners, %d/s in 10 ms batches, no scheduler) %.1f µs per connect, %d failed of %d\n",
		p.rate, us(floor), failed, n)
	fmt.Fprintf(w, "  full connect / kernel floor: %.2f× (goal ≤ 1.15×); above the floor: %.1f µs per probe, of which the scheduler's own share is the figure of the scheduler alone below\n",
		float64(full.cpuPerRun)/float64(floor), us(full.cpuPerRun-floor))
	return nil
}

// connectPhase runs the full-connect phase alone: p.rate checks a second with
// handshake=full against a listener child, then the kernel's floor.
func connectPhase(w io.Writer, p params) (figures, error) {
	ls, err := child("listen:" + strconv.Itoa(p.listeners))
	if err != nil {
		return figures{}, err
	}
	defer ls.Stop()
	sc := bufio.NewScanner(ls.stdout)
	addrs, err := readAddrs(sc, p.listeners, "listener child")
	if err != nil {
		return figures{}, err
	}
	env := new(probe.Env)
	defer env.Close()
	full, err := measureFull(env, addrs, p, p.cpuProfile)
	if err != nil {
		return full, err
	}
	fmt.Fprintf(w, "full connect: %d tcp jobs (handshake=full) every 1s over %d listeners on 50 addresses (child process), %s measured after 2s warm-up, GOMAXPROCS %d\n",
		p.rate, p.listeners, p.duration, runtime.GOMAXPROCS(0))
	if err := printFull(w, full, addrs, p); err != nil {
		return full, err
	}
	return full, schedulerAlone(w, p)
}

// schedulerAlone measures the scheduler with p.rate no-op jobs run inline (as a check
// that finishes at once is), the part of a probe's CPU that is not the probe's.
func schedulerAlone(w io.Writer, p params) error {
	const interval, warmup = time.Second, 2 * time.Second
	jobs := make([]schedule.Job, p.rate)
	for i := range jobs {
		jobs[i] = schedule.Job{ID: fmt.Sprintf("noop#%d", i), Host: listenHost(i % p.listeners), Interval: interval, Timeout: interval,
			Run: func(context.Context) patrol.Result { return patrol.Result{Class: patrol.ClassOK} },
			Try: func() (patrol.Result, bool) { return patrol.Result{Class: patrol.ClassOK}, true }}
	}
	schedProfile := ""
	if p.cpuProfile != "" {
		schedProfile = p.cpuProfile + ".sched"
	}
	f, err := measure(jobs, p.concurrency, warmup, p.duration/3, schedProfile)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "scheduler alone (no-op jobs run inline like half-open checks, same rate, %s): %.0f runs/s, CPU per run %.1f µs, lag p50 %s p99 %s\n",
		(p.duration / 3).Round(100*time.Millisecond), f.perSec, us(f.cpuPerRun), ms(f.p50), ms(f.p99))
	return nil
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }

// cpuTime returns this process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memory loads n tcp jobs with a one-hour interval and reports the RSS they cost.
func memory(n int) error {
	runtime.GC()
	base, err := rss()
	if err != nil {
		return err
	}
	env := new(probe.Env)
	defer env.Close()
	jobs := make([]schedule.Job, n)
	for i := range jobs {
		// 1000 hosts with 100 ports each; nothing listens there, so the few jobs due
		// during the run are refused at once.
		addr := fmt.Sprintf("127.1.%d.%d:%d", 1+i/100/250, 1+i/100%250, 20000+i%100)
		j, err := tcpJob(env, "tcp://"+addr, addr, "auto", time.Hour, 5*time.Second)
		if err != nil {
			return err
		}
		jobs[i] = j
	}
	s := schedule.New(schedule.Config{})
	if err := s.Update(jobs); err != nil {
		return err
	}
	jobs = nil
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		_ = s.Run(ctx)
		close(stopped)
	}()
	time.Sleep(3 * time.Second)
	runtime.GC()
	time.Sleep(time.Second)
	total, err := rss()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if path := os.Getenv(memProfileEnv); path != "" && err == nil {
		err = writeHeapProfile(path)
	}
	st := s.Stats()
	cancel()
	<-stopped
	if err != nil {
		return err
	}

	used := total - base
	fmt.Printf("memory: %d configured tcp jobs (real probes, 1h interval, %d runs so far)\n", st.Jobs, st.Runs)
	fmt.Printf("RSS for %d configured targets: %.1f MB above a %.1f MB baseline, %.1f MB total (goal < 200 MB)\n",
		n, float64(used)/1e6, float64(base)/1e6, float64(total)/1e6)
	fmt.Printf("RSS per configured target: %.0f B (goal ≤ 640 B); Go heap in use %.1f MB\n",
		float64(used)/float64(n), float64(ms.HeapInuse)/1e6)
	fmt.Printf("bytes-per-target %.0f\n", float64(used)/float64(n))
	return nil
}

// writeHeapProfile writes the heap profile of this process to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// rss reads VmRSS of this process, in bytes.
func rss() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}

// announceReady tells the parent a child's listeners are up, then serves until the
// parent closes the child's stdin.
func announceReady(out *bufio.Writer) error {
	fmt.Fprintln(out, "ready")
	if err := out.Flush(); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// readAddrs reads the addresses a child prints, one a line, up to "ready", and
// checks it printed as many as asked for.
func readAddrs(sc *bufio.Scanner, want int, what string) ([]string, error) {
	var addrs []string
	for sc.Scan() && sc.Text() != "ready" {
		addrs = append(addrs, sc.Text())
	}
	if len(addrs) != want {
		return nil, fmt.Errorf("%s gave %d addresses, want %d", what, len(addrs), want)
	}
	return addrs, nil
}
