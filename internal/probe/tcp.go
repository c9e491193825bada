package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// tcpStep is a compiled QueryResponse step.
type tcpStep struct {
	expect   *regexp.Regexp
	send     string
	starttls bool
}

// maxLine bounds one line read while expecting, so a hostile server cannot make the
// prober buffer without limit.
const maxLine = 64 << 10

var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxLine)

// newTCP builds the tcp prober. Query options: send, expect (one step: expect a line
// matching the regexp, after sending), tls, insecure, servername, close.
//
// The tls prober (tls://) is the tcp prober with tls forced on. A bare connect check
// of an IP address has a fast path (see newConnectOnly).
func newTCP(t patrol.Target, m *Module, env *Env, q *options) (runFunc, tryFunc, error) {
	c := m.TCP
	if t.Scheme == "tls" || m.Prober == "tls" {
		c.TLS = true
		if m.TLS != (TLSConfig{}) {
			c.TLSConfig = m.TLS
		}
	}
	if v, ok := q.bool("tls"); ok {
		c.TLS = v
	}
	if v, ok := q.bool("insecure"); ok {
		c.TLSConfig.InsecureSkipVerify = v
	}
	if v, ok := q.string("servername"); ok {
		c.TLSConfig.ServerName = v
	}
	if v, ok := q.string("close"); ok {
		c.Close = v
	}
	if v, ok := q.string("handshake"); ok {
		c.Handshake = v
	}
	send, hasSend := q.string("send")
	expect, hasExpect := q.string("expect")
	if hasSend || hasExpect {
		// A query-string step sends first, then expects the reply.
		if hasSend {
			c.QueryResponse = append(c.QueryResponse, QueryResponse{Send: unescape(send)})
		}
		if hasExpect {
			c.QueryResponse = append(c.QueryResponse, QueryResponse{Expect: expect})
		}
	}
	steps := make([]tcpStep, 0, len(c.QueryResponse))
	for i, qr := range c.QueryResponse {
		s := tcpStep{send: qr.Send, starttls: qr.StartTLS}
		if qr.Expect != "" {
			re, err := regexp.Compile(qr.Expect)
			if err != nil {
				return nil, nil, fmt.Errorf("tcp.query_response[%d].expect: %w", i, err)
			}
			s.expect = re
		}
		steps = append(steps, s)
	}
	var reset bool
	switch c.Close {
	case "", "reset":
		// A bare connect check resets: no TIME_WAIT on the prober, so thousands of
		// probes a second never exhaust ephemeral ports. A dialogue closes politely.
		reset = len(steps) == 0 && !c.TLS
	case "graceful":
	default:
		return nil, nil, fmt.Errorf("tcp.close %q: want reset or graceful", c.Close)
	}
	var tlsCfg *tls.Config
	if c.TLS || hasStartTLS(steps) {
		var err error
		if tlsCfg, err = buildTLSConfig(c.TLSConfig, t.Host, env); err != nil {
			return nil, nil, err
		}
	}
	switch c.Handshake {
	case "", "auto", "full":
	case "half":
		if !reset || env.Dial != nil {
			return nil, nil, fmt.Errorf("tcp.handshake half checks only that the port answers a SYN; it cannot be combined with a dialogue, tls or close=graceful")
		}
		if err := env.HalfOpenSupported(); errors.Is(err, errEnvClosed) {
			return nil, nil, fmt.Errorf("tcp.handshake half needs an open probe environment to hold its raw sockets: %w", err)
		} else if err != nil {
			return nil, nil, fmt.Errorf("tcp.handshake half needs CAP_NET_RAW (run as root, or setcap cap_net_raw+ep on the binary), or use handshake=auto: %w", err)
		}
	default:
		return nil, nil, fmt.Errorf("tcp.handshake %q: want auto, half or full", c.Handshake)
	}
	network := ipNet("tcp", c.IPProtocol)
	if reset && env.Dial == nil {
		run, try := newConnectOnly(t, network, c.Handshake, env)
		return run, try, nil
	}
	return func(ctx context.Context, res *patrol.Result) {
		conn := dial(ctx, env, network, t, res)
		if conn == nil {
			return
		}
		defer func() {
			if reset {
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
			}
			conn.Close()
		}()
		setDeadline(ctx, conn)
		// A dialogue may wait on a silent server: cancelling ctx must free the
		// connection at once, not when the deadline comes.
		stop := stopOnCancel(ctx, conn)
		defer stop()
		if c.TLS {
			tc := handshake(ctx, conn, tlsCfg, tlsSkipVerify(c.TLSConfig), env, res)
			if tc == nil || res.Class != patrol.ClassOK {
				return
			}
			conn = tc
		}
		runDialogue(ctx, conn, steps, tlsCfg, c.TLSConfig, env, res)
	}, nil, nil
}

// connectCheck is the bare connect check of an address. One struct, its methods the
// run and try functions, rather than three closures: a daemon holds one per target.
type connectCheck struct {
	ap        netip.AddrPort
	remote    string // ap as text, for results
	half      *halfOpener
	conn      *poller
	localOnly bool // the half-open check may only answer for ports on this host
}

func (c *connectCheck) record(res *patrol.Result, t0 time.Time, err error) {
	res.RemoteAddr = c.remote
	res.AddPhase("connect", time.Since(t0))
	if err != nil {
		classifyInto(res, err, "connect "+c.remote)
	}
}

func (c *connectCheck) try(res *patrol.Result) bool {
	t0 := time.Now()
	var done bool
	var err error
	if c.half != nil {
		done, err = c.half.tryLocal(c.ap)
	} else {
		done, err = tryConnect(c.ap, c.conn)
	}
	if done {
		c.record(res, t0, err)
	}
	return done
}

func (c *connectCheck) run(ctx context.Context, res *patrol.Result) {
	t0 := time.Now()
	err := errHalfOpenBusy
	if c.half != nil {
		err = c.half.check(ctx, c.ap, c.localOnly)
	}
	if err == errHalfOpenBusy {
		err = connectOnly(ctx, c.ap, c.conn)
	}
	c.record(res, t0, err)
}

// newConnectOnly is the bare connect check. For an address (parsed once, here) it is
// a half-open check where handshake allows it and env can (halfopen_linux.go), else a
// connect and a reset; a host name is resolved and connected to. With a half-open
// check, or a connect to a loopback address, it also returns try, the form the
// scheduler runs on its loop; otherwise try is nil.
func newConnectOnly(t patrol.Target, network, handshake string, env *Env) (run runFunc, try tryFunc) {
	port := uint16(t.Port)
	if a, err := netip.ParseAddr(t.Host); err == nil && a.Zone() == "" {
		ap := netip.AddrPortFrom(a, port)
		remote := ap.String()
		if env.Allow != nil {
			// The address is fixed: asked once, here, rather than on every run.
			if err := env.Allow(ap); err != nil {
				return func(_ context.Context, res *patrol.Result) {
					res.RemoteAddr = remote
					res.Fail(patrol.ClassError, "connect %s: %v", remote, err)
				}, nil
			}
		}
		c := &connectCheck{ap: ap, remote: remote, conn: &env.conn, localOnly: handshake != "half"}
		if handshake != "full" {
			c.half, _ = env.halfOpen()
		}
		// A connect to loopback is answered within the connect calls: it can run on
		// the scheduler's loop too (tryConnect), where the Env's poller makes them.
		if c.half != nil || (ap.Addr().IsLoopback() && connectsRaw && !env.isClosed()) {
			try = c.try
		}
		return c.run, try
	}
	return func(ctx context.Context, res *patrol.Result) {
		conn := dial(ctx, env, network, t, res)
		if conn == nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		conn.Close()
	}, nil
}

// dialReset checks that ap accepts a TCP connection through net.Dialer and closes it
// with a reset: the connect check where there is no poller of the Env's to wait in.
func dialReset(ctx context.Context, ap netip.AddrPort) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ap.String())
	if err != nil {
		return err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return c.Close()
}

func hasStartTLS(steps []tcpStep) bool {
	for _, s := range steps {
		if s.starttls {
			return true
		}
	}
	return false
}

// runDialogue runs query_response steps on conn, as blackbox_exporter does: an expect
// reads lines until one matches; a send writes the text and a newline.
func runDialogue(ctx context.Context, conn net.Conn, steps []tcpStep, tlsCfg *tls.Config, tc TLSConfig, env *Env, res *patrol.Result) {
	if len(steps) == 0 {
		return
	}
	r := bufio.NewReaderSize(conn, 4096)
	for i, s := range steps {
		if s.expect != nil {
			var seen []string
			for {
				line, err := readLine(r)
				if err != nil {
					if len(seen) > 0 {
						classifyInto(res, err, fmt.Sprintf("step %d: waiting for %q (last line %q)", i+1, s.expect, seen[len(seen)-1]))
					} else {
						classifyInto(res, err, fmt.Sprintf("step %d: waiting for %q", i+1, s.expect))
					}
					if (res.Class == patrol.ClassReset && len(seen) > 0) || errors.Is(err, errLineTooLong) {
						res.Class = patrol.ClassProtocol
					}
					return
				}
				if s.expect.MatchString(line) {
					res.SetDetail(fmt.Sprintf("expect_%d", i+1), line)
					break
				}
				if len(seen) < 8 {
					seen = append(seen, line)
				}
			}
		}
		if s.send != "" {
			if _, err := conn.Write([]byte(s.send + "\n")); err != nil {
				classifyInto(res, err, fmt.Sprintf("step %d: send", i+1))
				return
			}
		}
		if s.starttls {
			tconn := handshake(ctx, conn, tlsCfg, tlsSkipVerify(tc), env, res)
			if tconn == nil || res.Class != patrol.ClassOK {
				return
			}
			conn = tconn
			r = bufio.NewReaderSize(conn, 4096)
		}
	}
}

// readLine reads one line without its line ending, at most maxLine bytes.
func readLine(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		frag, isPrefix, err := r.ReadLine()
		if err != nil {
			return b.String(), err
		}
		b.Write(frag)
		if b.Len() > maxLine {
			return "", errLineTooLong
		}
		if !isPrefix {
			return b.String(), nil
		}
	}
}

// ipNet picks "tcp4"/"tcp6" for a preferred_ip_protocol of ip4/ip6.
func ipNet(base, pref string) string {
	switch pref {
	case "ip4":
		return base + "4"
	case "ip6":
		return base + "6"
	}
	return base
}

// unescape interprets Go escapes (\n, \r, \x00…) in a payload written on one line.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case '0':
			b.WriteByte(0)
		case '\\':
			b.WriteByte('\\')
		case 'x':
			if i+2 < len(s) {
				if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
					b.WriteByte(byte(v))
					i += 2
					continue
				}
			}
			b.WriteString(`\x`)
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
