package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
	"github.com/portpatrol/portpatrol/internal/schedule"
)

// citedHTTP is the /probe comparison this program does not measure: it would need the
// daemon and blackbox_exporter each in a process of its own and a load generator.
const citedHTTP = "cited, not measured in this run: through the same /probe?module=http_2xx request, blackbox_exporter 561–580 µs and portpatrol 390–410 µs of CPU per probe (issue \"performance round two\", side by side on this machine kind); goal ≤ 0.3× blackbox_exporter"

// httpBody is what the HTTP child answers: a small health page, as a probe meets.
const httpBody = "status: healthy\n"

// httpServe opens n listeners, prints their addresses and "ready", and serves every
// request on them with httpBody until its standard input closes. It is a net/http
// server, as the probed services mostly are, in a process of its own so that its CPU
// is not the prober's.
func httpServe(n int) error {
	out := bufio.NewWriter(os.Stdout)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, httpBody)
	})
	for i := range n {
		ln, err := net.Listen("tcp", listenHost(i)+":0")
		if err != nil {
			return err
		}
		fmt.Fprintln(out, ln.Addr())
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
	}
	return announceReady(out)
}

// httpJob builds a scheduler job running a real http probe of http://addr/ on env.
func httpJob(env *probe.Env, id, addr string, interval, timeout time.Duration) (schedule.Job, error) {
	t, err := patrol.ParseTarget("http://" + addr + "/")
	if err != nil {
		return schedule.Job{}, err
	}
	t.Timeout = timeout
	p, err := probe.New(t, probe.Module{}, env)
	if err != nil {
		return schedule.Job{}, err
	}
	return schedule.Job{ID: id, Host: t.Host, Interval: interval, Timeout: timeout, Run: p.Run}, nil
}

// bareHTTP is the simplest equivalent of an http probe, the anchor its CPU is read
// against: connect with net.Dialer (no keep-alive, as the probes), write the request the probe writes, read the
// answer to the end (the server closes after it), check the status line, close. No
// phases, no redirects, no rules.
func bareHTTP(addr string) func(context.Context) patrol.Result {
	req := []byte("GET / HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: portpatrol\r\nConnection: close\r\n\r\n")
	return func(ctx context.Context) patrol.Result {
		d := net.Dialer{KeepAlive: -1} // as the probes dial
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return patrol.Result{Class: patrol.ClassRefused, Error: err.Error()}
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		if _, err := c.Write(req); err != nil {
			return patrol.Result{Class: patrol.ClassError, Error: err.Error()}
		}
		var b [1024]byte
		n, total := 0, 0
		for {
			m, err := c.Read(b[n:])
			n, total = min(n+m, 12), total+m
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return patrol.Result{Class: patrol.ClassError, Error: err.Error()}
			}
		}
		if n < 12 || string(b[9:12]) != "200" {
			return patrol.Result{Class: patrol.ClassProtocol, Error: "not 200: " + strconv.Quote(string(b[:n]))}
		}
		return patrol.Result{Class: patrol.ClassOK}
	}
}

// httpThroughput measures real http probes (plain HTTP, a new connection per probe)
// at rate per second against an HTTP child, then the bare equivalent at the same rate.
func httpThroughput(w io.Writer, p params) (time.Duration, error) {
	const interval, warmup, listeners = time.Second, 2 * time.Second, 50
	srv, err := child("http:" + strconv.Itoa(listeners))
	if err != nil {
		return 0, err
	}
	defer srv.Stop()
	sc := bufio.NewScanner(srv.stdout)
	addrs, err := readAddrs(sc, listeners, "http child")
	if err != nil {
		return 0, err
	}
	env := new(probe.Env)
	defer env.Close()
	jobs := make([]schedule.Job, p.httpRate)
	for i := range jobs {
		addr := addrs[i%len(addrs)]
		j, err := httpJob(env, fmt.Sprintf("http://%s/#%d", addr, i), addr, interval, interval)
		if err != nil {
			return 0, err
		}
		jobs[i] = j
	}
	f, err := measure(jobs, p.concurrency, warmup, p.duration, p.cpuProfile)
	if err != nil {
		return 0, err
	}
	for i := range jobs {
		jobs[i].Run = bareHTTP(addrs[i%len(addrs)])
	}
	bare, err := measure(jobs, p.concurrency, warmup, p.duration/2, "")
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(w, "http: %d jobs every %s (plain HTTP, a new connection per probe) over %d net/http listeners (child process), %s measured after %s warm-up\n",
		p.httpRate, interval, listeners, p.duration, warmup)
	fmt.Fprintf(w, "http probes/s: %.0f, failed %d of %d", f.perSec, f.failed, f.runs)
	if f.firstFailure != "" {
		fmt.Fprintf(w, " (first: %s)", f.firstFailure)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "CPU per http probe in the engine: %.1f µs (goal ≤ 120 µs), lag p99 %s\n", us(f.cpuPerRun), ms(f.p99))
	fmt.Fprintf(w, "  measured in the same run: the bare equivalent (net.Dialer, write the request, read to EOF, close) %.1f µs per run at %.0f/s, %d failed (probe/bare %.2f×)\n",
		us(bare.cpuPerRun), bare.perSec, bare.failed, float64(f.cpuPerRun)/float64(bare.cpuPerRun))
	fmt.Fprintf(w, "  %s\n", citedHTTP)
	return f.cpuPerRun, nil
}
