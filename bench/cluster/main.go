// Command cluster benchmarks cluster mode as users run it: real `portpatrol serve`
// processes in cluster mode on one NATS JetStream server started in this process, each
// with its own SQLite store.
//
//	go run ./bench/cluster [-targets 30000] [-interval 30s] [-window 60s] [-kills 5] [-bin bin/portpatrol]
//
// It measures, from outside, scaling and failover. Scaling is the share of its schedule
// (owned targets / interval) a member keeps, probes per second from its /metrics: one
// member alone with -targets targets, then each of three members sharing 3 × -targets
// targets; the efficiency is the three's mean share over the share alone (goal ≥ 90 %). Failover: -kills times a member is killed with SIGKILL, and for
// every target it probed, the time from the kill until another member's first result
// for it on the results stream (goal p99 ≤ TTL + one interval).
//
// Targets are TCP ports nothing listens on, spread over 127.x.y.z addresses (refused at
// once, as the daemon benchmark's closed half). All traffic stays on 127.0.0.0/8.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

const goalEfficiency = 0.90

type params struct {
	targets   int
	interval  time.Duration
	window    time.Duration
	kills     int
	heartbeat time.Duration
	ttl       time.Duration
	bin       string
	keep      bool
}

func main() {
	var p params
	flag.IntVar(&p.targets, "targets", 30000, "targets per member")
	flag.DurationVar(&p.interval, "interval", 30*time.Second, "probe interval")
	flag.DurationVar(&p.window, "window", 60*time.Second, "how long each rate is measured, after a warm-up of one interval")
	flag.IntVar(&p.kills, "kills", 5, "SIGKILLs of a member for the failover figure")
	flag.DurationVar(&p.heartbeat, "heartbeat", 2*time.Second, "cluster.heartbeat")
	flag.DurationVar(&p.ttl, "ttl", 10*time.Second, "cluster.ttl")
	flag.StringVar(&p.bin, "bin", "", "portpatrol binary (default: build one)")
	flag.BoolVar(&p.keep, "keep", false, "keep the work directory")
	flag.Parse()
	if err := run(p); err != nil {
		fmt.Fprintln(os.Stderr, "bench/cluster:", err)
		os.Exit(1)
	}
}

type member struct {
	name string
	base string
	cmd  *exec.Cmd
	log  *os.File
}

type bench struct {
	p    params
	dir  string
	nats string
	mu   sync.Mutex
	live []*member
}

func run(p params) error {
	dir, err := os.MkdirTemp("", "portpatrol-cluster-bench-")
	if err != nil {
		return err
	}
	if !p.keep {
		defer os.RemoveAll(dir)
	}
	if p.bin == "" {
		p.bin = filepath.Join(dir, "portpatrol")
		if out, err := exec.Command("go", "build", "-o", p.bin, "./cmd/portpatrol").CombinedOutput(); err != nil {
			return fmt.Errorf("build: %v: %s", err, out)
		}
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: filepath.Join(dir, "nats"),
		NoLog: true, NoSigs: true, JetStreamMaxMemory: 1 << 30, JetStreamMaxStore: 8 << 30})
	if err != nil {
		return err
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("nats server not ready")
	}
	b := &bench{p: p, dir: dir, nats: fmt.Sprintf("nats://127.0.0.1:%d", port)}
	defer b.stopAll()
	load := func() string {
		d, _ := os.ReadFile("/proc/loadavg")
		return strings.Join(strings.Fields(string(d))[:3], " ")
	}
	fmt.Printf("cluster mode, %d targets per member @ %s, heartbeat %s, TTL %s; load average %s; %s\n",
		p.targets, p.interval, p.heartbeat, p.ttl, load(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))

	// One member alone.
	if err := b.config("one", p.targets); err != nil {
		return err
	}
	one, err := b.start("one", "a1")
	if err != nil {
		return err
	}
	if err := b.waitMembers(one, 1); err != nil {
		return err
	}
	time.Sleep(2 * p.interval) // past the first failures' fast confirmations
	rates, err := b.rates([]*member{one})
	if err != nil {
		return err
	}
	owned, err := b.owned(one)
	if err != nil {
		return err
	}
	alone := rates[0] / (float64(owned[one.name]) / p.interval.Seconds())
	fmt.Printf("one member, %d targets: %.1f probes/s of %.1f/s scheduled (%.1f%%); load average %s\n", p.targets, rates[0],
		float64(owned[one.name])/p.interval.Seconds(), 100*alone, load())
	b.stop(one)

	// Three members sharing three times the targets.
	if err := b.config("three", 3*p.targets); err != nil {
		return err
	}
	var ms []*member
	for _, n := range []string{"m1", "m2", "m3"} {
		m, err := b.start("three", n)
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}
	for _, m := range ms {
		if err := b.waitMembers(m, 3); err != nil {
			return err
		}
	}
	// The shares settle as the members see each other; the targets a member takes are
	// new to it, and their first failures are confirmed at once: measure after that.
	time.Sleep(2 * p.interval)
	rates, err = b.rates(ms)
	if err != nil {
		return err
	}
	owned, err = b.owned(ms[0])
	if err != nil {
		return err
	}
	mean := 0.0
	var parts []string
	for i, m := range ms {
		sched := float64(owned[m.name]) / p.interval.Seconds()
		mean += rates[i] / sched / 3
		parts = append(parts, fmt.Sprintf("%s %.1f of %.1f/s", m.name, rates[i], sched))
	}
	eff := mean / alone
	verdict := "met"
	if eff < goalEfficiency {
		verdict = "MISSED"
	}
	fmt.Printf("three members, %d targets: %s (%.1f%% of their schedule on average); load average %s\n", 3*p.targets, strings.Join(parts, ", "), 100*mean, load())
	fmt.Printf("scaling efficiency %.1f%%: the share of its schedule each of three members kept, over the share one member alone kept (goal ≥ %.0f%%: %s; anchor: Prometheus hashmod sharding, static and manual)\n", 100*eff, 100*goalEfficiency, verdict)

	// Failover.
	nc, err := nats.Connect(b.nats)
	if err != nil {
		return err
	}
	defer nc.Close()
	type seen struct {
		member string
		at     time.Time
	}
	var smu sync.Mutex
	last := map[string][]seen{}
	if _, err := nc.Subscribe("portpatrol.results.>", func(m *nats.Msg) {
		var r struct{ Member, Target string }
		if json.Unmarshal(m.Data, &r) != nil {
			return
		}
		smu.Lock()
		last[r.Target] = append(last[r.Target], seen{r.Member, time.Now()})
		smu.Unlock()
	}); err != nil {
		return err
	}
	var took []time.Duration
	missing := 0
	for k := range p.kills {
		time.Sleep(p.interval + p.heartbeat) // every target probed since the last change
		victim := ms[k%len(ms)]
		cut := time.Now()
		smu.Lock()
		var owned []string
		for t, ss := range last {
			if len(ss) > 0 && ss[len(ss)-1].member == victim.name && cut.Sub(ss[len(ss)-1].at) < p.interval+p.heartbeat {
				owned = append(owned, t)
			}
		}
		clear(last)
		smu.Unlock()
		killed := time.Now()
		b.kill(victim)
		deadline := killed.Add(p.ttl + 3*p.interval)
		for time.Now().Before(deadline) {
			time.Sleep(250 * time.Millisecond)
		}
		smu.Lock()
		for _, t := range owned {
			found := false
			for _, s := range last[t] {
				if s.member != victim.name && s.at.After(killed) {
					took = append(took, s.at.Sub(killed))
					found = true
					break
				}
			}
			if !found {
				missing++
			}
		}
		smu.Unlock()
		fmt.Printf("kill %d: SIGKILL of %s, which probed %d targets\n", k+1, victim.name, len(owned))
		nm, err := b.start("three", victim.name)
		if err != nil {
			return err
		}
		ms[k%len(ms)] = nm
		if err := b.waitMembers(nm, 3); err != nil {
			return err
		}
	}
	if len(took) > 0 {
		slices.Sort(took)
		p50, p99 := took[len(took)/2], took[min(len(took)-1, len(took)*99/100)]
		goal := p.ttl + p.interval
		v := "met"
		if p99 > goal || missing > 0 {
			v = "MISSED"
		}
		fmt.Printf("failover over %d kills, %d targets moved: p50 %s, p99 %s, max %s, %d not probed again within TTL + 3 intervals (goal p99 ≤ TTL + interval = %s: %s)\n",
			p.kills, len(took), p50.Round(time.Millisecond), p99.Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), missing, goal, v)
	}
	return nil
}

// config writes the configuration of a run with n targets.
func (b *bench) config(name string, n int) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, `host_watch: {disabled: true}
api: {anonymous_read: true}
defaults: {interval: %s, timeout: 2s}
scheduler: {concurrency: 2048}
cluster: {url: %q, heartbeat: %s, ttl: %s}
targets:
`, b.p.interval, b.nats, b.p.heartbeat, b.p.ttl)
	for j := range n {
		// 127.1.x.y, ports from 20000: refused at once.
		fmt.Fprintf(&sb, "  - url: tcp://127.%d.%d.%d:%d\n", 1+j/(250*250*40)%200, j/(250*40)%250, 1+j/40%250, 20000+j%40)
	}
	return os.WriteFile(filepath.Join(b.dir, name+".yaml"), []byte(sb.String()), 0o600)
}

func (b *bench) start(cfg, name string) (*member, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(b.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	m := &member{name: name, base: fmt.Sprintf("http://127.0.0.1:%d", port), log: logf}
	m.cmd = exec.Command(b.p.bin, "serve", "-c", filepath.Join(b.dir, cfg+".yaml"), "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--data-dir", filepath.Join(b.dir, "data-"+name+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)), "--name", name)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.live = append(b.live, m)
	b.mu.Unlock()
	return m, nil
}

func (b *bench) waitMembers(m *member, n int) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(m.base + "/api/v1/cluster")
		if err == nil {
			var st struct {
				Members []json.RawMessage `json:"members"`
				Leader  string            `json:"leader"`
			}
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil && len(st.Members) == n && st.Leader != "" {
				return nil
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("%s did not see %d members and a leader within 5 minutes; its log: %s", m.name, n, filepath.Join(b.dir, m.name+".log"))
}

// owned returns the targets each member owns, as m sees the cluster.
func (b *bench) owned(m *member) (map[string]int, error) {
	resp, err := http.Get(m.base + "/api/v1/cluster")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st struct {
		Members []struct {
			ID    string `json:"id"`
			Owned int    `json:"owned"`
		} `json:"members"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, x := range st.Members {
		out[x.ID] = x.Owned
	}
	return out, nil
}

// rates measures each member's probes per second over the window, from its /metrics.
func (b *bench) rates(ms []*member) ([]float64, error) {
	start := make([]float64, len(ms))
	for i, m := range ms {
		v, err := probes(m.base)
		if err != nil {
			return nil, err
		}
		start[i] = v
	}
	t0 := time.Now()
	time.Sleep(b.p.window)
	out := make([]float64, len(ms))
	for i, m := range ms {
		v, err := probes(m.base)
		if err != nil {
			return nil, err
		}
		out[i] = (v - start[i]) / time.Since(t0).Seconds()
	}
	return out, nil
}

// probes sums portpatrol_probes_total over its series.
func probes(base string) (float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "portpatrol_probes_total") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, sc.Err()
}

func (b *bench) kill(m *member) {
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	_ = m.cmd.Wait()
	m.log.Close()
	b.mu.Lock()
	b.live = slices.DeleteFunc(b.live, func(x *member) bool { return x == m })
	b.mu.Unlock()
}

func (b *bench) stop(m *member) {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		<-done
	}
	m.log.Close()
	b.mu.Lock()
	b.live = slices.DeleteFunc(b.live, func(x *member) bool { return x == m })
	b.mu.Unlock()
}

func (b *bench) stopAll() {
	b.mu.Lock()
	live := slices.Clone(b.live)
	b.mu.Unlock()
	sort.Slice(live, func(i, j int) bool { return live[i].name < live[j].name })
	for _, m := range live {
		b.stop(m)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
