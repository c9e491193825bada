package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/portpatrol/portpatrol/internal/inventory"
)

// maxWhoConns bounds the connections who prints per listener.
const maxWhoConns = 20

func newWhoCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "who PORT|:PORT|ADDR:PORT",
		Short: "Show which process holds a port, since when, and its connections",
		Long: `Show which process listens on a port (TCP and UDP): its pid, command line, user,
start time, container, resources (CPU, memory, open files against ulimit -n), the
accept queue, and its established connections with their traffic.

Exit status: 0 when something holds the port, 1 when nothing does, 3 on bad input.`,
		Example: `  # Who holds port 5432?
  portpatrol who 5432

  # Only the listener bound to ::1
  portpatrol who '[::1]:6379'

  # In a script: is port 8080 taken?
  portpatrol who :8080 >/dev/null || echo "8080 is free"

  # As JSON
  portpatrol who 3306 --json | jq '.[0].owner.cmdline'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, port, err := parsePortSpec(args[0])
			if err != nil {
				return exitf(exitUnknown, "%v", err)
			}
			return runWho(cmd.Context(), cmd.OutOrStdout(), addr, port, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

// parsePortSpec parses "8080", ":8080", "127.0.0.1:8080" or "[::1]:8080". The Addr is
// the zero Addr when the spec names none.
func parsePortSpec(s string) (netip.Addr, uint16, error) {
	s = strings.TrimSpace(s)
	bad := func(why string) (netip.Addr, uint16, error) {
		return netip.Addr{}, 0, fmt.Errorf("invalid port %q: %s; want PORT, :PORT or ADDR:PORT", s, why)
	}
	host, p := "", s
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, p = s[:i], s[i+1:]
		if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
			return bad("IPv6 addresses go in brackets, e.g. [::1]:8080")
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return bad("port out of range 1-65535")
	}
	var addr netip.Addr
	if host != "" {
		if addr, err = netip.ParseAddr(host); err != nil {
			return bad("not an IP address: " + host)
		}
		addr = addr.Unmap()
	}
	return addr, uint16(n), nil
}

func runWho(ctx context.Context, out io.Writer, addr netip.Addr, port uint16, asJSON bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	entries, err := inventory.New(inventory.Config{}).Holders(ctx, addr, port)
	if err != nil {
		return exitf(exitUnknown, "%v", err)
	}
	spec := ":" + strconv.Itoa(int(port))
	if addr.IsValid() {
		spec = netip.AddrPortFrom(addr, port).String()
	}
	if len(entries) == 0 {
		if asJSON {
			fmt.Fprintln(out, "[]")
		}
		return exitf(exitWarning, "nothing listens on %s", spec)
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	for n, e := range entries {
		if n > 0 {
			fmt.Fprintln(out)
		}
		printWho(out, &e)
	}
	return nil
}

func printWho(out io.Writer, e *inventory.Holder) {
	s := &e.Socket
	line := func(k, format string, args ...any) { fmt.Fprintf(out, "  %-11s %s\n", k, fmt.Sprintf(format, args...)) }
	if s.Owner == nil {
		fmt.Fprintf(out, "%s %s %s  held by uid %d; its process is not visible (run as root, or it lives in another PID namespace)\n",
			s.Network(), s.State, s.Local, s.UID)
	} else {
		o := s.Owner
		fmt.Fprintf(out, "%s %s %s  %s (pid %d), user %s\n", s.Network(), s.State, s.Local, o.Command, o.PID, o.User)
		if !o.Start.IsZero() {
			line("since", "%s (%s)", o.Start.Local().Format("2006-01-02 15:04:05 MST"), humanize.Time(o.Start))
		}
		line("command", "%s", strings.TrimRight(strings.Join(o.Cmdline, " "), " "))
		if o.Container != "" {
			line("container", "%s", o.Container[:12])
		}
		if o.Cgroup != "" && o.Cgroup != "/" {
			line("cgroup", "%s", o.Cgroup)
		}
		line("fd", "%d (socket inode %d)", o.FD, s.Inode)
	}
	if r := e.Resources; r != nil {
		limit := "unlimited"
		if r.MaxOpenFiles != inventory.Unlimited {
			limit = strconv.FormatInt(r.MaxOpenFiles, 10)
		}
		line("resources", "CPU %s, RSS %s, %d threads, open files %d of %s (ulimit -n)",
			r.CPU.Round(10*time.Millisecond), humanize.IBytes(uint64(r.RSS)), r.Threads, r.OpenFiles, limit)
	}
	if s.Proto != inventory.TCP {
		return
	}
	full := ""
	if s.QueueFull() {
		full = " — FULL: new connections are dropped"
	}
	line("queue", "%d waiting for accept(), backlog %d%s", s.RecvQ, s.SendQ, full)
	line("traffic", "%s in, %s out over %d established", humanize.IBytes(s.BytesIn), humanize.IBytes(s.BytesOut), s.Established)
	fmt.Fprintf(out, "  connections (%d):\n", len(e.Connections))
	for n, c := range e.Connections {
		if n == maxWhoConns {
			fmt.Fprintf(out, "    … and %d more (portpatrol ls --state estab --port %d)\n", len(e.Connections)-n, s.Local.Port())
			break
		}
		fmt.Fprintf(out, "    %-10s %s ← %s  in %s, out %s\n", c.State, c.Local, c.Remote, humanize.IBytes(c.BytesIn), humanize.IBytes(c.BytesOut))
	}
}
