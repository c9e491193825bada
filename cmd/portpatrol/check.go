package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
)

type checkFlags struct {
	timeout  time.Duration
	warn     time.Duration
	count    int
	interval time.Duration
	json     bool
	module   string
	config   string
}

func newCheckCmd() *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check TARGET...",
		Short: "Probe targets once (or --count times) and print one line each",
		Long: `Probe each target once, concurrently, and print one line per target.

A target is scheme://host:port[/path][?options]; a bare host:port means tcp.
Schemes: ` + strings.Join(patrol.SchemeNames(), ", ") + `.

Exit codes follow the Nagios plugin convention: 0 OK, 1 WARNING (slow, or some of
--count probes lost), 2 CRITICAL (down), 3 UNKNOWN (bad input).

With CAP_NET_RAW (root), a bare tcp check of this host's own ports is half-open:
a SYN and the SYN-ACK or RST read back, so the service never sees a connection.
?handshake=full connects instead; ?handshake=half does half-open for any IP address.`,
		Example: `  # Is Redis's port open?
  portpatrol check 127.0.0.1:6379

  # Several at once, with a latency threshold: slower than 50ms is a WARNING
  portpatrol check --warn 50ms tcp://[::1]:22 https://127.0.0.1:8443/healthz?insecure=true

  # Protocol-aware: is the server full, starting up, asking for a password?
  portpatrol check redis://127.0.0.1:6379 mysql://root@127.0.0.1:3306 postgres://postgres@127.0.0.1:5432

  # A Prometheus scrape: /metrics parses and has the metrics a dashboard needs
  portpatrol check 'prometheus://127.0.0.1:9100?require=up,process_start_time_seconds'

  # memcached: stats answered, connections used of the -c limit
  portpatrol check --json memcached://127.0.0.1:11211

  # Connect for real (the service sees, and may log, the connection)
  portpatrol check 'tcp://127.0.0.1:6379?handshake=full'

  # A dialogue, like blackbox_exporter's query_response
  portpatrol check 'tcp://127.0.0.1:6379?send=PING&expect=^\+PONG'

  # Like ping: 10 probes a second apart, then min/avg/p95/max and loss
  portpatrol check --count 10 --interval 1s 127.0.0.1:5432

  # JSON, one object per result, for scripts
  portpatrol check --json 127.0.0.1:22 | jq .class`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), cmd.OutOrStdout(), f, args)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&f.timeout, "timeout", 5*time.Second, "give up on a probe after this long")
	fl.DurationVar(&f.warn, "warn", 0, "latency over which a successful probe is WARNING (slow)")
	fl.IntVarP(&f.count, "count", "n", 1, "probe each target this many times")
	fl.DurationVarP(&f.interval, "interval", "i", time.Second, "time between probes with --count")
	fl.BoolVar(&f.json, "json", false, "print one JSON object per result")
	fl.StringVarP(&f.module, "module", "m", "", "probe with this module (built-in, or from --config)")
	fl.StringVarP(&f.config, "config", "c", "", "config file whose modules --module may name")
	return cmd
}

func runCheck(ctx context.Context, out io.Writer, f checkFlags, args []string) error {
	if f.timeout <= 0 {
		return exitf(exitUnknown, "--timeout must be positive, got %s", f.timeout)
	}
	if f.count < 1 {
		return exitf(exitUnknown, "--count must be at least 1, got %d", f.count)
	}
	if f.count > 1 && f.interval <= 0 {
		return exitf(exitUnknown, "--interval must be positive, got %s", f.interval)
	}
	modules := config.BuiltinModules()
	if f.config != "" {
		c, err := config.Load(f.config)
		if err != nil {
			return exitf(exitUnknown, "%v", err)
		}
		modules = c.Modules
	}
	var mod probe.Module
	if f.module != "" {
		m, ok := modules[f.module]
		if !ok {
			return exitf(exitUnknown, "unknown module %q; known: %s", f.module, strings.Join(sortedNames(modules), ", "))
		}
		mod = m
	}
	// One Env for the command's probes: half-open checks share its raw sockets.
	env := new(probe.Env)
	defer env.Close()
	probes := make([]*probe.Probe, 0, len(args))
	for _, a := range args {
		t, err := patrol.ParseTarget(a)
		if err != nil {
			return exitf(exitUnknown, "%v", err)
		}
		t.Timeout = f.timeout
		t.Warn = f.warn
		p, err := probe.New(t, mod, env)
		if err != nil {
			return exitf(exitUnknown, "%v", err)
		}
		probes = append(probes, p)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()

	pr := &checkPrinter{out: out, json: f.json, width: targetWidth(probes)}
	stats := make([]checkStats, len(probes))
	for round := 0; round < f.count; round++ {
		if round > 0 {
			select {
			case <-ctx.Done():
				round = f.count
				continue
			case <-time.After(f.interval):
			}
		}
		results := make([]patrol.Result, len(probes))
		var wg sync.WaitGroup
		for i, p := range probes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = p.Run(ctx)
			}()
		}
		wg.Wait()
		for i := range results {
			stats[i].add(results[i])
			pr.result(results[i])
		}
		if ctx.Err() != nil {
			break
		}
	}
	code := exitOK
	for i := range stats {
		if f.count > 1 && !f.json {
			pr.summary(probes[i].ID(), stats[i])
		}
		code = max(code, stats[i].exitCode())
	}
	if code != exitOK {
		return exitCode(code)
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	n := make([]string, 0, len(m))
	for k := range m {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func targetWidth(ps []*probe.Probe) int {
	w := 0
	for _, p := range ps {
		w = max(w, len(p.ID()))
	}
	return min(w, 60)
}

// checkStats accumulates --count results for one target.
type checkStats struct {
	durations []time.Duration // of successful probes
	sent      int
	slow      int
}

func (s *checkStats) add(r patrol.Result) {
	s.sent++
	if r.Up() {
		s.durations = append(s.durations, r.Duration)
	}
	if r.Class == patrol.ClassSlow {
		s.slow++
	}
}

// exitCode: CRITICAL when every probe failed, WARNING when some failed or were slow.
func (s *checkStats) exitCode() int {
	switch {
	case len(s.durations) == 0:
		return exitCritical
	case len(s.durations) < s.sent || s.slow > 0:
		return exitWarning
	}
	return exitOK
}

type checkPrinter struct {
	out   io.Writer
	json  bool
	width int
}

func (p *checkPrinter) result(r patrol.Result) {
	if p.json {
		b, _ := json.Marshal(r)
		fmt.Fprintf(p.out, "%s\n", b)
		return
	}
	fmt.Fprintf(p.out, "%-4s %-*s  %s\n", statusWord(r.Class), p.width, r.Target, describe(r))
}

func (p *checkPrinter) summary(id string, s checkStats) {
	loss := 100 * float64(s.sent-len(s.durations)) / float64(s.sent)
	if len(s.durations) == 0 {
		fmt.Fprintf(p.out, "--- %s: %d probes, %.0f%% loss\n", id, s.sent, loss)
		return
	}
	d := append([]time.Duration(nil), s.durations...)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	p95 := d[(len(d)*95+99)/100-1]
	fmt.Fprintf(p.out, "--- %s: %d probes, %.0f%% loss, min/avg/p95/max = %s/%s/%s/%s\n",
		id, s.sent, loss, ms(d[0]), ms(sum/time.Duration(len(d))), ms(p95), ms(d[len(d)-1]))
}

// statusWord is the Nagios-style status of a result.
func statusWord(c patrol.Class) string {
	switch {
	case c == patrol.ClassOK:
		return "OK"
	case c == patrol.ClassSlow:
		return "WARN"
	default:
		return "CRIT"
	}
}

// describe renders what a person wants to read about a result on one line.
func describe(r patrol.Result) string {
	var parts []string
	if !r.Up() || r.Class == patrol.ClassSlow {
		parts = append(parts, fmt.Sprintf("%s: %s", r.Class, r.Error))
	}
	if r.HTTP != nil {
		parts = append(parts, fmt.Sprintf("HTTP %d", r.HTTP.Status))
	}
	// A bare connect reads "connect 0.21ms"; anything that talked reads "in 4.04ms".
	main := "connect"
	for _, p := range r.Phases {
		if p.Name != "dns" && p.Name != "connect" {
			main = "in"
		}
	}
	if r.Up() {
		parts = append(parts, fmt.Sprintf("%s %s", main, ms(r.Duration)))
	} else {
		parts = append(parts, fmt.Sprintf("after %s", ms(r.Duration)))
	}
	if len(r.Phases) > 1 {
		var ph []string
		for _, x := range r.Phases {
			ph = append(ph, fmt.Sprintf("%s %s", x.Name, ms(x.Duration)))
		}
		parts = append(parts, "("+strings.Join(ph, ", ")+")")
	}
	if r.TLS != nil {
		parts = append(parts, fmt.Sprintf("%s, cert expires in %.0f days", r.TLS.Version, r.TLS.DaysLeft))
	}
	if c := r.Capacity; c != nil && c.Limit > 0 {
		parts = append(parts, fmt.Sprintf("%s %d/%d (%.0f%%)", c.What, c.Used, c.Limit, 100*c.Ratio()))
	}
	if len(r.Details) > 0 {
		keys := sortedNames(r.Details)
		var kv []string
		for _, k := range keys {
			kv = append(kv, fmt.Sprintf("%s=%s", k, r.Details[k]))
		}
		parts = append(parts, strings.Join(kv, " "))
	}
	return strings.Join(parts, "  ")
}

// ms renders a duration in milliseconds with two decimals, as ping does.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
