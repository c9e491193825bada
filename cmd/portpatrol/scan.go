package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/portpatrol/portpatrol/internal/probe"
	"github.com/portpatrol/portpatrol/internal/scan"
	"github.com/spf13/cobra"
)

type scanFlags struct {
	ports       string
	top         int
	allow       []string
	json        bool
	greppable   string
	identify    bool
	rate        float64
	concurrency int
	timeout     time.Duration
	retries     int
	syn         bool
	udp         bool
}

func newScanCmd() *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "scan TARGETS... [-p PORTS | --top N] [--syn] [--rate N]",
		Short: "Find open TCP ports with a fast connect scan, or a SYN scan",
		Long: `scan finds open TCP ports on hosts, IP addresses and CIDRs with connect() — no raw
sockets, no privileges. It refuses, before sending anything, to scan outside the allowed
networks (--allow, default 127.0.0.0/8 and ::1/128). Ports that do not answer are
retried and reported as filtered; local shortages (out of file descriptors or ephemeral
ports) are retried with backoff and less concurrency, never reported as closed.

--syn scans as nmap -sS does: a SYN from a raw socket to each port, SYN-ACK for open,
RST for closed, and the kernel resets the half-made connection, so no service ever
sees a connection. It needs root or CAP_NET_RAW and fails without them (it never falls
back to connecting). --rate caps connects, or with --syn the SYNs sent (retries
included), per second.

--udp scans UDP ports named with -p, as nmap -sU does: a datagram to each port (a
request the service answers for 53, 123 and 11211, empty otherwise). A reply is open;
an ICMP port unreachable is closed; silence after the retries is open|filtered, because
a service that ignores the datagram and a firewall that drops it look alike. Hosts
limit the ICMP errors they send (Linux: about one a second to each other host; none on
loopback), so closed ports of another host can come back open|filtered.

Without -p or --top it scans the 1,000 most common service ports.`,
		Example: `  # Every port of this host, nmap's greppable format to stdout
  portpatrol scan 127.0.0.1 -p - -oG -

  # The 100 most common ports of a few loopback addresses, and what speaks there
  portpatrol scan 127.0.0.0/29 --top 100 --identify

  # Every port of this host with a SYN scan (root or CAP_NET_RAW)
  sudo portpatrol scan 127.0.0.1 -p - --syn

  # A few UDP ports of this host: DNS, NTP, memcached
  portpatrol scan 127.0.0.1 --udp -p 53,123,11211

  # A SYN scan of a few loopback addresses at exactly 2,000 SYNs a second
  sudo portpatrol scan 127.0.0.0/28 --top 100 --syn --rate 2000

  # A lab network, at most 500 connects a second, as JSON
  portpatrol scan 10.20.0.0/24 --allow 10.20.0.0/16 -p 22,80,443,8000-8100 --rate 500 --json`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			if err := fl.Parse(nmapStyleArgs(args)); err != nil {
				return exitf(exitUnknown, "%v", err)
			}
			if help, _ := fl.GetBool("help"); help {
				return cmd.Help()
			}
			return runScan(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f, fl.Args(), args)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.ports, "ports", "p", "", `ports: 22,80,443 or 1-1024 or - for all 1-65535`)
	fl.IntVar(&f.top, "top", 0, "scan the N most common service ports")
	fl.StringArrayVar(&f.allow, "allow", nil, "CIDR that may be scanned (repeatable; default 127.0.0.0/8 and ::1/128)")
	fl.BoolVar(&f.json, "json", false, "print the report as JSON")
	fl.StringVar(&f.greppable, "oG", "", "write nmap's greppable format to FILE (- for stdout); -oG FILE works too")
	fl.BoolVar(&f.identify, "identify", false, "run a protocol probe on each open port to name its service")
	fl.BoolVar(&f.syn, "syn", false, "SYN scan from a raw socket, as nmap -sS (needs root or CAP_NET_RAW); -sS works too")
	fl.BoolVar(&f.udp, "udp", false, "UDP scan of the -p ports, as nmap -sU: reply open, ICMP unreachable closed, silence open|filtered; -sU works too")
	fl.Float64Var(&f.rate, "rate", 0, "at most this many connects (with --syn: SYNs) per second (0: no limit)")
	fl.IntVar(&f.concurrency, "concurrency", 0, "most connects (with --syn: SYNs) waiting for an answer at once (0: 4096 adaptive; 1024 with --syn)")
	fl.DurationVar(&f.timeout, "timeout", 0, "wait this long for an answer before retrying (0: 1s)")
	fl.IntVar(&f.retries, "retries", 0, "extra attempts for a port that does not answer (0: 1, -1: none)")
	fl.BoolP("help", "h", false, "help for scan")
	return cmd
}

// nmapStyleArgs accepts nmap's single-dash -oG spelling.
func nmapStyleArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case a == "-oG":
			a = "--oG"
		case strings.HasPrefix(a, "-oG="):
			a = "-" + a
		case a == "-sS":
			a = "--syn"
		case a == "-sU":
			a = "--udp"
		}
		out = append(out, a)
	}
	return out
}

func runScan(ctx context.Context, stdout, stderr io.Writer, f scanFlags, targets, rawArgs []string) error {
	if len(targets) == 0 {
		return exitf(exitUnknown, "scan: name at least one target (host, IP or CIDR)")
	}
	if f.udp {
		switch {
		case f.syn:
			return exitf(exitUnknown, "scan: --udp and --syn do not combine; a SYN scan is TCP")
		case f.identify:
			return exitf(exitUnknown, "scan: --identify runs TCP protocol probes; it does not combine with --udp")
		case f.ports == "":
			return exitf(exitUnknown, "scan --udp: name the ports with -p (e.g. -p 53,123,161); the --top ranking is of TCP ports")
		}
	}
	ports, err := scanPorts(f)
	if err != nil {
		return exitf(exitUnknown, "%v", err)
	}
	allow, err := allowList(f.allow)
	if err != nil {
		return exitf(exitUnknown, "%v", err)
	}
	if f.rate < 0 {
		return exitf(exitUnknown, "--rate must not be negative, got %g", f.rate)
	}
	s := &scan.Scanner{Concurrency: f.concurrency, Rate: f.rate, Timeout: f.timeout, Retries: f.retries, Allow: allow, UDP: f.udp}
	if fd, ok := stderr.(*os.File); ok && isatty.IsTerminal(fd.Fd()) {
		s.Progress = progressLine(stderr)
	}
	// Targets are resolved and checked against the allow list before anything is
	// opened or sent.
	hosts, err := scan.Resolve(ctx, nil, targets, s.Allow, s.MaxHosts)
	if err != nil {
		return scanError(err)
	}
	if f.syn {
		sock, closer, err := openSYN()
		if err != nil {
			return synError(err)
		}
		defer closer.Close()
		s.SYN = sock
	}
	rep, err := s.ScanHosts(ctx, hosts, ports)
	if err != nil {
		return scanError(err)
	}
	if f.identify {
		env := new(probe.Env)
		defer env.Close()
		scan.IdentifyOpen(ctx, rep, probeIdentifier{timeout: 3 * time.Second, env: env}, 16)
	}
	if f.greppable != "" {
		cmdline := "portpatrol scan " + strings.Join(rawArgs, " ")
		if f.greppable == "-" {
			if err := scan.WriteGreppable(stdout, rep, cmdline); err != nil {
				return exitf(exitUnknown, "write: %v", err)
			}
			return nil
		}
		file, err := os.Create(f.greppable)
		if err != nil {
			return exitf(exitUnknown, "-oG: %v", err)
		}
		err = scan.WriteGreppable(file, rep, cmdline)
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return exitf(exitUnknown, "-oG %s: %v", f.greppable, err)
		}
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return exitf(exitUnknown, "write: %v", err)
		}
		return nil
	}
	if err := scan.WriteTable(stdout, rep); err != nil {
		return exitf(exitUnknown, "write: %v", err)
	}
	return nil
}

func scanPorts(f scanFlags) (scan.PortList, error) {
	switch {
	case f.ports != "" && f.top != 0:
		return nil, fmt.Errorf("-p and --top exclude each other")
	case f.top < 0:
		return nil, fmt.Errorf("--top must be positive, got %d", f.top)
	case f.ports != "":
		return scan.ParsePorts(f.ports)
	case f.top > 0:
		return scan.Top(f.top), nil
	}
	return scan.Top(1000), nil
}

// allowList parses --allow; none means the scanner's default (loopback only).
func allowList(specs []string) ([]netip.Prefix, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	return scan.ParseAllow(specs)
}

// scanError maps scanner errors to exit codes: every one is bad input or a scan that
// could not run.
func scanError(err error) error {
	var na *scan.NotAllowedError
	var te *scan.TargetError
	switch {
	case errors.As(err, &na), errors.As(err, &te):
		return exitf(exitUnknown, "%v", err)
	}
	return exitf(exitUnknown, "scan: %v", err)
}

// synError explains why scan --syn could not open its raw sockets.
func synError(err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return exitf(exitUnknown, "scan --syn needs root or CAP_NET_RAW to send SYNs from a raw socket (%v); "+
			"run it as root, grant the capability (sudo setcap cap_net_raw+ep %s), or scan without --syn, which connects and needs no privileges",
			err, selfPath())
	}
	return exitf(exitUnknown, "scan --syn: %v", err)
}

func selfPath() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return "portpatrol"
}

// progressLine rewrites one stderr line with the scan's progress, for scans long enough
// to wait for.
func progressLine(w io.Writer) func(done, total int64) {
	start := time.Now()
	shown := false
	return func(done, total int64) {
		if total < 5000 || (!shown && time.Since(start) < 500*time.Millisecond && done < total) {
			return
		}
		if done >= total {
			if shown {
				fmt.Fprint(w, "\r\033[K")
			}
			return
		}
		shown = true
		fmt.Fprintf(w, "\r\033[Kscanning: %d%% (%d/%d ports) %s", done*100/max(total, 1), done, total, time.Since(start).Round(time.Second))
	}
}

// probeIdentifier is probe.Identify as a scan.Identifier.
type probeIdentifier struct {
	timeout time.Duration
	env     *probe.Env // the probes' environment, owned by the caller
}

var _ scan.Identifier = probeIdentifier{}

// Identify implements scan.Identifier.
func (p probeIdentifier) Identify(ctx context.Context, addr netip.AddrPort) scan.Ident {
	id := probe.Identify(ctx, addr, p.timeout, p.env)
	return scan.Ident{Service: id.Service, Class: string(id.Class), Detail: id.Detail}
}
