// Package doctor works from a failed connection (or a failed bind) to its likely cause,
// step by step, keeping each step's evidence: name resolution, the route and source
// address, the connect result, who listens on the port and on which address, the accept
// queue and the kernel's overflow counters, the owning process and its file limit, and
// nftables rules that drop the traffic. A Report ends with the likely cause and the
// next step.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Status is the verdict of one step.
type Status string

// The step verdicts.
const (
	StatusOK      Status = "ok"
	StatusProblem Status = "problem"
	StatusInfo    Status = "info"
	StatusSkipped Status = "skipped"
)

// Step is one piece of detective work and what it found.
type Step struct {
	Name     string   `json:"name"`
	Status   Status   `json:"status"`
	Summary  string   `json:"summary"`
	Evidence []string `json:"evidence,omitempty"`
}

// Report is the outcome of a diagnosis.
type Report struct {
	// Subject is what was diagnosed: "connect 127.0.0.1:8080" or "bind 0.0.0.0:80".
	Subject string `json:"subject"`
	Steps   []Step `json:"steps"`
	// Problem is true when something is wrong; Cause and Next then say what and what to
	// do. When nothing is wrong they say so.
	Problem bool   `json:"problem"`
	Cause   string `json:"likely_cause"`
	Next    string `json:"next_step"`
}

func (r *Report) add(s Step) *Step {
	r.Steps = append(r.Steps, s)
	return &r.Steps[len(r.Steps)-1]
}

func (r *Report) conclude(problem bool, cause, next string) {
	r.Problem, r.Cause, r.Next = problem, cause, next
}

// WriteTo renders the report for people.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "portpatrol doctor: %s\n\n", r.Subject)
	for _, s := range r.Steps {
		mark := map[Status]string{StatusOK: "ok  ", StatusProblem: "FAIL", StatusInfo: "info", StatusSkipped: "skip"}[s.Status]
		fmt.Fprintf(&b, "  [%s] %-13s %s\n", mark, s.Name, s.Summary)
		for _, e := range s.Evidence {
			fmt.Fprintf(&b, "         %-13s %s\n", "", e)
		}
	}
	fmt.Fprintf(&b, "\nLikely cause: %s\nNext step: %s\n", r.Cause, r.Next)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// Config configures a Doctor. The zero value inspects the live system.
type Config struct {
	// Inventory reads sockets and owners; nil means inventory.New with defaults.
	Inventory *inventory.Inventory
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// Timeout bounds the connect attempt; 0 means 3s.
	Timeout time.Duration
	// Classify names a connect error's class and says it in words; nil classifies by
	// errno alone. portpatrol passes probe.Classify.
	Classify func(error) (patrol.Class, string)
	// Nft is the nft binary used to read the firewall; "" means the one in PATH, "-"
	// skips the firewall step.
	Nft string
	// SysctlRoot is where /proc/sys is mounted; "" means /proc/sys.
	SysctlRoot string
}

// Doctor diagnoses connections and binds. It is safe for concurrent use.
type Doctor struct {
	cfg Config
	inv *inventory.Inventory
}

// New returns a Doctor for cfg.
func New(cfg Config) *Doctor {
	if cfg.Inventory == nil {
		cfg.Inventory = inventory.New(inventory.Config{})
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.Classify == nil {
		cfg.Classify = classifyErrno
	}
	if cfg.SysctlRoot == "" {
		cfg.SysctlRoot = "/proc/sys"
	}
	return &Doctor{cfg: cfg, inv: cfg.Inventory}
}

// classifyErrno is the fallback classification when Config.Classify is nil.
func classifyErrno(err error) (patrol.Class, string) {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return patrol.ClassRefused, "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return patrol.ClassReset, "connection reset by peer"
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return patrol.ClassTimeout, "timed out"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return patrol.ClassRefused, "unreachable"
	}
	return patrol.ClassError, err.Error()
}

// Connect diagnoses a TCP connection to host:port.
func (d *Doctor) Connect(ctx context.Context, host string, port uint16) *Report {
	r := &Report{Subject: "connect " + net.JoinHostPort(host, strconv.Itoa(int(port)))}

	// 1. Resolution.
	ip, ok := d.resolve(ctx, r, host)
	if !ok {
		return r
	}
	target := netip.AddrPortFrom(ip, port)

	// 2. Route and source address: connecting a UDP socket sends nothing but makes the
	// kernel choose the route.
	local, ok := d.route(r, target)
	if !ok {
		return r
	}

	// 3. Connect, with the overflow counters around it when the target is this host.
	before, cerr := d.inv.Counters()
	haveCounters := cerr == nil && local
	class, msg, took := d.dial(ctx, target)
	step := r.add(Step{Name: "connect"})
	if class.Up() {
		step.Status, step.Summary = StatusOK, fmt.Sprintf("connected to %s in %s", target, round(took))
	} else {
		step.Status, step.Summary = StatusProblem, fmt.Sprintf("%s after %s: %s", class, round(took), msg)
	}
	var overflows int64
	if haveCounters {
		if after, err := d.inv.Counters(); err == nil {
			overflows = after.ListenOverflows - before.ListenOverflows
		}
	}

	if !local {
		r.add(Step{Name: "listeners", Status: StatusSkipped,
			Summary: fmt.Sprintf("%s is not an address of this host; run portpatrol doctor --bind %d there", ip, port)})
		fw := d.firewall(ctx, r, port)
		d.concludeRemote(r, target, class, fw)
		return r
	}

	// 4. Who listens, on which address, with which queue.
	socks, err := d.inv.Listeners(ctx, inventory.Filter{Proto: inventory.TCP, Port: port, Owners: true, Established: true})
	lst := r.add(Step{Name: "listeners"})
	if err != nil {
		lst.Status, lst.Summary = StatusSkipped, "cannot read sockets: "+err.Error()
	}
	var covering []inventory.Socket
	for _, s := range socks {
		lst.Evidence = append(lst.Evidence, describe(&s))
		if s.Covers(ip) {
			covering = append(covering, s)
		}
	}
	switch {
	case err != nil:
	case len(socks) == 0:
		lst.Status, lst.Summary = StatusProblem, fmt.Sprintf("nothing listens on TCP port %d on this host", port)
	case len(covering) == 0:
		lst.Status, lst.Summary = StatusProblem, fmt.Sprintf("port %d listens only on %s, not on %s", port, bindList(socks), ip)
	default:
		lst.Status, lst.Summary = StatusOK, fmt.Sprintf("%s listens on %s", ownerName(&covering[0]), covering[0].Local)
	}

	// 5. Accept queue.
	var full *inventory.Socket
	if len(covering) > 0 {
		q := r.add(Step{Name: "accept queue", Status: StatusOK})
		for n := range covering {
			s := &covering[n]
			q.Evidence = append(q.Evidence, fmt.Sprintf("%s: %d waiting for accept(), backlog %d", s.Local, s.RecvQ, s.SendQ))
			if s.QueueFull() && full == nil {
				full = s
			}
		}
		if haveCounters {
			q.Evidence = append(q.Evidence, fmt.Sprintf("kernel ListenOverflows grew by %d during the connect attempt", overflows))
		}
		if full != nil {
			q.Status, q.Summary = StatusProblem, fmt.Sprintf("full: %d connections wait for accept(), backlog is %d", full.RecvQ, full.SendQ)
		} else if overflows > 0 {
			q.Summary = "not full now, but the kernel dropped connections to some listener meanwhile"
		} else {
			q.Summary = "has room"
		}
	}

	// 6. The owning process and its limits.
	var fdShort *inventory.Socket
	var res inventory.Resources
	if len(covering) > 0 && covering[0].Owner != nil {
		o := covering[0].Owner
		p := r.add(Step{Name: "process", Status: StatusOK})
		p.Evidence = append(p.Evidence, fmt.Sprintf("pid %d %s, user %s, running since %s", o.PID, o.Command, o.User, o.Start.Format(time.RFC3339)),
			"command line: "+strings.Join(o.Cmdline, " "))
		if rr, err := d.inv.Resources(o.PID); err == nil {
			res = rr
			p.Evidence = append(p.Evidence, fmt.Sprintf("open files %d of %s (ulimit -n), RSS %d MiB, CPU %s", rr.OpenFiles, limitText(rr.MaxOpenFiles), rr.RSS>>20, rr.CPU.Round(time.Millisecond)))
			if rr.MaxOpenFiles > 0 && float64(rr.OpenFiles) >= 0.9*float64(rr.MaxOpenFiles) {
				p.Status, fdShort = StatusProblem, &covering[0]
				p.Summary = fmt.Sprintf("%s uses %d of its %d file descriptors", o.Command, rr.OpenFiles, rr.MaxOpenFiles)
			}
		}
		if p.Summary == "" {
			p.Summary = fmt.Sprintf("%s (pid %d) is running", o.Command, o.PID)
		}
	} else if len(covering) > 0 {
		r.add(Step{Name: "process", Status: StatusSkipped, Summary: "the owner is not visible (another PID namespace, or run as root)"})
	}

	// 7. Firewall.
	fw := d.firewall(ctx, r, port)

	// Conclusion.
	switch {
	case len(socks) == 0 && class == patrol.ClassRefused:
		r.conclude(true, fmt.Sprintf("nothing listens on TCP port %d: the service is not running, or listens on another port", port),
			"start the service, or check its configured port (systemctl status <unit>; journalctl -u <unit>); portpatrol ls shows what does listen")
	case len(fw) > 0 && !class.Up():
		r.conclude(true, fmt.Sprintf("the firewall %ss it: %s", fw[0].Verdict, fw[0]),
			"allow the port in that chain (nft -a list ruleset; nft delete rule … handle N, or add an accept rule before it)")
	case len(socks) > 0 && len(covering) == 0:
		r.conclude(true, fmt.Sprintf("the service listens on %s only, and you dialled %s", bindList(socks), ip),
			fmt.Sprintf("dial %s instead, or make the service bind %s (or a wildcard address) in its configuration and restart it", socks[0].Local, ip))
	case full != nil:
		r.conclude(true, fmt.Sprintf("the accept queue of %s is full (%d waiting, backlog %d): %s does not accept() fast enough, so the kernel drops new connections",
			full.Local, full.RecvQ, full.SendQ, ownerName(full)),
			fmt.Sprintf("see why the process is stuck or slow (portpatrol who :%d; top -p PID; its logs); raise its listen backlog and net.core.somaxconn only if it is merely bursty", port))
	case fdShort != nil:
		r.conclude(true, fmt.Sprintf("%s is at %d of %d open files: accept() fails with EMFILE", ownerName(fdShort), res.OpenFiles, res.MaxOpenFiles),
			"raise its limit (LimitNOFILE= in the systemd unit, or ulimit -n) and look for a descriptor leak")
	case class.Up():
		r.conclude(false, fmt.Sprintf("none: %s accepts connections", target), "nothing to do")
	case len(covering) == 0:
		r.conclude(true, fmt.Sprintf("the connection failed (%s) and nothing visible listens on TCP port %d", class, port),
			"start the service; if it runs in a container or another network namespace, check its port mapping")
	case class == patrol.ClassTimeout:
		r.conclude(true, "the connection attempt timed out although something listens: packets are dropped (a firewall other than nftables, or the listener's network namespace)",
			"check iptables -S and the listener's namespace; watch the SYNs with tcpdump -ni any port "+strconv.Itoa(int(port)))
	default:
		r.conclude(true, fmt.Sprintf("the connection failed (%s) although %s listens", class, ownerName(&covering[0])),
			"look at the service's logs, and repeat with portpatrol check --count 10 "+target.String())
	}
	return r
}

func (d *Doctor) concludeRemote(r *Report, target netip.AddrPort, class patrol.Class, fw []FirewallFinding) {
	switch {
	case class.Up():
		r.conclude(false, fmt.Sprintf("none: %s accepts connections", target), "nothing to do")
	case len(fw) > 0 && fw[0].Hook == "output":
		r.conclude(true, fmt.Sprintf("this host's firewall %ss it on the way out: %s", fw[0].Verdict, fw[0]), "allow it in that chain (nft list ruleset -a)")
	case class == patrol.ClassRefused:
		r.conclude(true, fmt.Sprintf("%s refused: nothing listens on port %d there, or its firewall rejects", target.Addr(), target.Port()),
			fmt.Sprintf("on %s, run portpatrol doctor --bind %d and portpatrol ls", target.Addr(), target.Port()))
	case class == patrol.ClassTimeout:
		r.conclude(true, "no answer: packets are dropped on the way (a firewall or security group) or the host is down",
			fmt.Sprintf("check the path with mtr -T -P %d %s and the remote firewall", target.Port(), target.Addr()))
	default:
		r.conclude(true, fmt.Sprintf("the connection failed: %s", class), "see the connect step's message")
	}
}

func (d *Doctor) resolve(ctx context.Context, r *Report, host string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(host); err == nil {
		r.add(Step{Name: "resolve", Status: StatusOK, Summary: host + " is an address; nothing to resolve"})
		return ip.Unmap(), true
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	ips, err := d.cfg.Resolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		_, msg := d.cfg.Classify(err)
		if err == nil {
			msg = "no addresses"
		}
		r.add(Step{Name: "resolve", Status: StatusProblem, Summary: fmt.Sprintf("%s does not resolve: %s", host, msg)})
		r.conclude(true, fmt.Sprintf("the name %s does not resolve", host),
			fmt.Sprintf("check the spelling, /etc/hosts and the resolvers in /etc/resolv.conf (getent hosts %s; dig %s)", host, host))
		return netip.Addr{}, false
	}
	ev := make([]string, len(ips))
	for n, a := range ips {
		ev[n] = a.String()
	}
	r.add(Step{Name: "resolve", Status: StatusOK, Summary: fmt.Sprintf("%s is %s", host, ips[0].Unmap()), Evidence: ev})
	return ips[0].Unmap(), true
}

// route finds the source address the kernel would use, and whether the target is an
// address of this host.
func (d *Doctor) route(r *Report, target netip.AddrPort) (local bool, ok bool) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(target))
	if err != nil {
		r.add(Step{Name: "route", Status: StatusProblem, Summary: fmt.Sprintf("no route to %s: %v", target.Addr(), unwrapSys(err))})
		r.conclude(true, fmt.Sprintf("this host has no route to %s", target.Addr()),
			fmt.Sprintf("check ip route get %s and the interface's address and default gateway", target.Addr()))
		return false, false
	}
	src := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	c.Close()
	local = target.Addr().IsLoopback() || src == target.Addr()
	if !local {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == target.Addr() {
					local = true
				}
			}
		}
	}
	where := "another host"
	if local {
		where = "this host"
	}
	r.add(Step{Name: "route", Status: StatusOK, Summary: fmt.Sprintf("source address %s; %s is %s", src, target.Addr(), where)})
	return local, true
}

func (d *Doctor) dial(ctx context.Context, target netip.AddrPort) (patrol.Class, string, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	var dl net.Dialer
	t0 := time.Now()
	c, err := dl.DialContext(ctx, "tcp", target.String())
	took := time.Since(t0)
	if err != nil {
		class, msg := d.cfg.Classify(err)
		return class, msg, took
	}
	c.Close()
	return patrol.ClassOK, "", took
}

// firewall reads nftables and adds a step with the rules that would stop TCP to port.
func (d *Doctor) firewall(ctx context.Context, r *Report, port uint16) []FirewallFinding {
	if d.cfg.Nft == "-" {
		return nil
	}
	nft := d.cfg.Nft
	if nft == "" {
		p, err := exec.LookPath("nft")
		if err != nil {
			r.add(Step{Name: "firewall", Status: StatusSkipped, Summary: "nft is not installed; nftables rules not checked"})
			return nil
		}
		nft = p
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, nft, "-j", "list", "ruleset").Output()
	if err != nil {
		r.add(Step{Name: "firewall", Status: StatusSkipped, Summary: fmt.Sprintf("nft -j list ruleset: %v (run as root to read the rules)", err)})
		return nil
	}
	found, err := FirewallRules(out, "tcp", int(port))
	if err != nil {
		r.add(Step{Name: "firewall", Status: StatusSkipped, Summary: err.Error()})
		return nil
	}
	s := r.add(Step{Name: "firewall", Status: StatusOK, Summary: fmt.Sprintf("no nftables rule drops TCP port %d", port)})
	if len(found) > 0 {
		s.Status, s.Summary = StatusProblem, fmt.Sprintf("%d nftables rule(s) drop or reject TCP port %d", len(found), port)
		for _, f := range found {
			e := f.String()
			if !f.Certain {
				e += " (has other conditions)"
			}
			s.Evidence = append(s.Evidence, e)
		}
	}
	return found
}

// Bind diagnoses a failure to bind proto ("tcp" or "udp") port on addr (the zero Addr
// means the wildcard address): who holds the port, or whether the port is privileged.
// It tries the bind itself when no holder is visible, and releases it at once.
func (d *Doctor) Bind(ctx context.Context, proto inventory.Proto, addr netip.Addr, port uint16) *Report {
	shown := addr
	if !shown.IsValid() {
		shown = netip.IPv4Unspecified()
	}
	r := &Report{Subject: fmt.Sprintf("bind %s %s", proto, netip.AddrPortFrom(shown, port))}

	socks, err := d.inv.Listeners(ctx, inventory.Filter{Proto: proto, Port: port, Owners: true})
	h := r.add(Step{Name: "holder"})
	var holders []inventory.Socket
	for _, s := range socks {
		if !addr.IsValid() || addr.IsUnspecified() || s.Covers(addr) || s.Local.Addr().Unmap() == addr.Unmap() {
			holders = append(holders, s)
		}
		h.Evidence = append(h.Evidence, describe(&s))
	}
	switch {
	case err != nil:
		h.Status, h.Summary = StatusSkipped, "cannot read sockets: "+err.Error()
	case len(holders) > 0:
		h.Status, h.Summary = StatusProblem, fmt.Sprintf("%s %d is held by %s on %s", proto, port, ownerName(&holders[0]), holders[0].Local)
	default:
		h.Status, h.Summary = StatusOK, fmt.Sprintf("no visible socket holds %s port %d", proto, port)
	}

	start := d.unprivilegedStart()
	priv := r.add(Step{Name: "privilege", Status: StatusOK})
	privileged := int(port) < start
	hasCap := hasBindCap()
	if privileged {
		priv.Summary = fmt.Sprintf("port %d is below net.ipv4.ip_unprivileged_port_start=%d: binding needs CAP_NET_BIND_SERVICE", port, start)
		priv.Evidence = append(priv.Evidence, fmt.Sprintf("this portpatrol runs as uid %d, %s CAP_NET_BIND_SERVICE", os.Geteuid(), map[bool]string{true: "with", false: "without"}[hasCap]))
		if !hasCap {
			priv.Status = StatusProblem
		} else {
			priv.Status = StatusInfo
		}
	} else {
		priv.Summary = fmt.Sprintf("port %d is unprivileged (net.ipv4.ip_unprivileged_port_start=%d)", port, start)
	}

	var tryErr error
	if len(holders) == 0 {
		tryErr = tryBind(proto, addr, port)
		t := r.add(Step{Name: "trial bind", Status: StatusOK, Summary: "bound and released at once: the port is free now"})
		if tryErr != nil {
			t.Status, t.Summary = StatusProblem, fmt.Sprintf("bind failed: %v", unwrapSys(tryErr))
		}
	}

	holder := func(s *inventory.Socket) string {
		if s.Owner == nil {
			return fmt.Sprintf("an unseen process (socket inode %d; run as root, or it lives in another PID namespace)", s.Inode)
		}
		return fmt.Sprintf("pid %d (%s, user %s, since %s)", s.Owner.PID, s.Owner.Command, s.Owner.User, s.Owner.Start.Format(time.RFC3339))
	}
	switch {
	case len(holders) > 0:
		r.conclude(true, fmt.Sprintf("%s port %d is already in use by %s on %s", proto, port, holder(&holders[0]), holders[0].Local),
			fmt.Sprintf("stop that process or move one of them to another port (portpatrol who :%d shows its command line and connections)", port))
	case errors.Is(tryErr, syscall.EADDRNOTAVAIL):
		r.conclude(true, fmt.Sprintf("%s is not an address of this host", addr), "bind an address this host has (ip -br addr), or the wildcard address")
	case errors.Is(tryErr, syscall.EACCES) || privileged && !hasCap:
		r.conclude(true, fmt.Sprintf("port %d is privileged (below %d) and the process lacks CAP_NET_BIND_SERVICE", port, start),
			"grant it: AmbientCapabilities=CAP_NET_BIND_SERVICE in the systemd unit, or setcap cap_net_bind_service=+ep on the binary; or use a port ≥ "+strconv.Itoa(start))
	case errors.Is(tryErr, syscall.EADDRINUSE):
		r.conclude(true, fmt.Sprintf("the port is in use, but no visible socket holds it: a process in another network or PID namespace, or a socket without SO_REUSEADDR in TIME-WAIT"),
			fmt.Sprintf("look with ss -tanp sport = :%d as root, and in containers' namespaces", port))
	case tryErr != nil:
		r.conclude(true, fmt.Sprintf("bind fails: %v", unwrapSys(tryErr)), "see the trial bind step")
	case privileged:
		r.conclude(false, fmt.Sprintf("none for this user; but a service running without root or CAP_NET_BIND_SERVICE cannot bind port %d", port),
			"if the service runs as another user, grant it AmbientCapabilities=CAP_NET_BIND_SERVICE in its systemd unit")
	default:
		r.conclude(false, fmt.Sprintf("none: %s port %d is free and binding works", proto, port), "start the service again; if it still fails, read its log for the address it binds")
	}
	return r
}

func tryBind(proto inventory.Proto, addr netip.Addr, port uint16) error {
	host := ""
	if addr.IsValid() {
		host = addr.String()
	}
	hp := net.JoinHostPort(host, strconv.Itoa(int(port)))
	if proto == inventory.UDP {
		c, err := net.ListenPacket("udp", hp)
		if err != nil {
			return err
		}
		return c.Close()
	}
	l, err := net.Listen("tcp", hp)
	if err != nil {
		return err
	}
	return l.Close()
}

// unprivilegedStart reads net.ipv4.ip_unprivileged_port_start (1024 when unreadable).
func (d *Doctor) unprivilegedStart() int {
	b, err := os.ReadFile(filepath.Join(d.cfg.SysctlRoot, "net", "ipv4", "ip_unprivileged_port_start"))
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}

func describe(s *inventory.Socket) string {
	who := "owner unknown"
	if s.Owner != nil {
		who = fmt.Sprintf("pid %d %s (user %s)", s.Owner.PID, s.Owner.Command, s.Owner.User)
	}
	if s.Proto == inventory.TCP {
		return fmt.Sprintf("%s %s %s  %s  queue %d/%d, %d established", s.Network(), s.State, s.Local, who, s.RecvQ, s.SendQ, s.Established)
	}
	return fmt.Sprintf("%s %s %s  %s", s.Network(), s.State, s.Local, who)
}

func ownerName(s *inventory.Socket) string {
	if s.Owner == nil {
		return "a process"
	}
	return fmt.Sprintf("%s (pid %d)", s.Owner.Command, s.Owner.PID)
}

func bindList(socks []inventory.Socket) string {
	var b []string
	for _, s := range socks {
		b = append(b, s.Local.Addr().String())
	}
	return strings.Join(b, " and ")
}

func limitText(n int64) string {
	if n == inventory.Unlimited {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

func unwrapSys(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}
