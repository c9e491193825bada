package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// dnsProbe is a validated dns module.
type dnsProbe struct {
	name      string
	qtype     uint16
	qclass    uint16
	recursion bool
	network   string // udp or tcp, with a 4/6 suffix for preferred_ip_protocol
	tlsCfg    *tls.Config
	skip      bool
	rcodes    []int
	rules     []rrRules
}

// rrRules are the compiled validators for one section of the reply.
type rrRules struct {
	section string // answer, authority, additional
	rules   []rrRule
}

type rrRule struct {
	name string // the blackbox field the rule came from
	re   *regexp.Regexp
}

// newDNS builds the dns prober: it sends one query to the server the target names
// (dns://127.0.0.1:53) and checks the rcode and the record sets, as blackbox_exporter's
// dns prober. Query options: name, type, transport (udp or tcp), recursion, rcode
// (valid rcodes, comma-separated). As in blackbox_exporter, the query type defaults to
// ANY and the valid rcodes to NOERROR.
func newDNS(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error) {
	c := m.DNS
	if v, ok := q.string("name"); ok {
		c.QueryName = v
	}
	if v, ok := q.string("type"); ok {
		c.QueryType = v
	}
	if v, ok := q.string("transport"); ok {
		c.TransportProtocol = v
	}
	if v, ok := q.bool("recursion"); ok {
		c.Recursion = &v
	}
	if v, ok := q.string("rcode"); ok {
		c.ValidRcodes = strings.Split(v, ",")
	}
	p := &dnsProbe{recursion: true}
	if c.Recursion != nil {
		p.recursion = *c.Recursion
	}
	if c.QueryName == "" {
		return nil, errors.New("dns.query_name is required (or ?name= on the target)")
	}
	if _, ok := dns.IsDomainName(c.QueryName); !ok {
		return nil, fmt.Errorf("dns.query_name %q is not a domain name", c.QueryName)
	}
	p.name = dns.Fqdn(c.QueryName)

	qt := strings.ToUpper(c.QueryType)
	if qt == "" {
		qt = "ANY"
	}
	var ok bool
	if p.qtype, ok = dns.StringToType[qt]; !ok {
		return nil, fmt.Errorf("dns.query_type %q is not a record type", c.QueryType)
	}
	qc := strings.ToUpper(c.QueryClass)
	if qc == "" {
		qc = "IN"
	}
	if p.qclass, ok = dns.StringToClass[qc]; !ok {
		return nil, fmt.Errorf("dns.query_class %q is not a class", c.QueryClass)
	}

	switch strings.ToLower(c.TransportProtocol) {
	case "", "udp":
		p.network = "udp"
	case "tcp":
		p.network = "tcp"
	default:
		return nil, fmt.Errorf("dns.transport_protocol %q: want udp or tcp", c.TransportProtocol)
	}
	if c.DNSOverTLS {
		if p.network != "tcp" {
			return nil, errors.New("dns.dns_over_tls needs transport_protocol tcp")
		}
		var err error
		if p.tlsCfg, err = buildTLSConfig(c.TLSConfig, t.Host, env); err != nil {
			return nil, fmt.Errorf("dns.%w", err)
		}
		p.skip = tlsSkipVerify(c.TLSConfig)
	}
	p.network = ipNet(p.network, c.IPProtocol)

	if len(c.ValidRcodes) == 0 {
		c.ValidRcodes = []string{"NOERROR"}
	}
	for _, s := range c.ValidRcodes {
		rc, ok := dns.StringToRcode[strings.ToUpper(strings.TrimSpace(s))]
		if !ok {
			return nil, fmt.Errorf("dns.valid_rcodes: %q is not an rcode such as NOERROR or NXDOMAIN", s)
		}
		p.rcodes = append(p.rcodes, rc)
	}

	for _, sec := range []struct {
		name string
		v    RRValidator
	}{{"answer", c.ValidateAnswer}, {"authority", c.ValidateAuthority}, {"additional", c.ValidateAdditional}} {
		rs := rrRules{section: sec.name}
		for _, r := range []struct {
			name string
			res  []string
		}{
			{"fail_if_matches_regexp", sec.v.FailIfMatchesRegexp},
			{"fail_if_all_match_regexp", sec.v.FailIfAllMatchRegexp},
			{"fail_if_not_matches_regexp", sec.v.FailIfNotMatchesRegexp},
			{"fail_if_none_matches_regexp", sec.v.FailIfNoneMatchesRegexp},
		} {
			for i, s := range r.res {
				re, err := regexp.Compile(s)
				if err != nil {
					return nil, fmt.Errorf("dns.validate_%s_rrs.%s[%d]: %w", sec.name, r.name, i, err)
				}
				rs.rules = append(rs.rules, rrRule{name: r.name, re: re})
			}
		}
		if len(rs.rules) > 0 {
			p.rules = append(p.rules, rs)
		}
	}
	return func(ctx context.Context, res *patrol.Result) { p.run(ctx, t, env, res) }, nil
}

func (p *dnsProbe) run(ctx context.Context, t patrol.Target, env *Env, res *patrol.Result) {
	conn := dial(ctx, env, p.network, t, res)
	if conn == nil {
		return
	}
	defer conn.Close()
	setDeadline(ctx, conn)
	stop := stopOnCancel(ctx, conn)
	defer stop()
	if p.tlsCfg != nil {
		tc := handshake(ctx, conn, p.tlsCfg, p.skip, env, res)
		if tc == nil || res.Class != patrol.ClassOK {
			return
		}
		conn = tc
	}

	msg := new(dns.Msg)
	msg.Id = dns.Id()
	msg.RecursionDesired = p.recursion
	msg.Question = []dns.Question{{Name: p.name, Qtype: p.qtype, Qclass: p.qclass}}
	co := &dns.Conn{Conn: conn, UDPSize: dns.MaxMsgSize}

	t0 := time.Now()
	reply, err := exchange(co, msg)
	res.AddPhase("request", time.Since(t0))
	if err != nil {
		var pe *dnsParseError
		if errors.As(err, &pe) {
			res.Fail(patrol.ClassProtocol, "malformed reply from %s: %v", res.RemoteAddr, pe.err)
			return
		}
		classifyInto(res, err, fmt.Sprintf("query %s %s", p.name, dns.TypeToString[p.qtype]))
		return
	}
	p.check(reply, res)
}

// dnsParseError is a reply that could not be unpacked.
type dnsParseError struct{ err error }

func (e *dnsParseError) Error() string { return e.err.Error() }

// exchange writes msg and reads the reply with the same ID, skipping strays (only
// possible over UDP). Every read obeys the connection's deadline.
func exchange(co *dns.Conn, msg *dns.Msg) (*dns.Msg, error) {
	if err := co.WriteMsg(msg); err != nil {
		return nil, err
	}
	for {
		b, err := co.ReadMsgHeader(nil)
		if errors.Is(err, dns.ErrShortRead) {
			return nil, &dnsParseError{err}
		}
		if err != nil {
			return nil, err
		}
		reply := new(dns.Msg)
		if err := reply.Unpack(b); err != nil {
			return nil, &dnsParseError{err}
		}
		if reply.Id == msg.Id {
			return reply, nil
		}
	}
}

func (p *dnsProbe) check(reply *dns.Msg, res *patrol.Result) {
	rcode := dns.RcodeToString[reply.Rcode]
	if rcode == "" {
		rcode = fmt.Sprint(reply.Rcode)
	}
	res.SetDetail("rcode", rcode)
	res.SetDetail("answers", fmt.Sprint(len(reply.Answer)))
	if len(reply.Answer) > 0 {
		res.SetDetail("answer", clip(reply.Answer[0].String()))
	}
	if reply.Truncated {
		res.SetDetail("truncated", "true")
	}
	valid := false
	for _, rc := range p.rcodes {
		if rc == reply.Rcode {
			valid = true
			break
		}
	}
	if !valid {
		want := make([]string, len(p.rcodes))
		for i, rc := range p.rcodes {
			want[i] = dns.RcodeToString[rc]
		}
		res.Fail(patrol.ClassProtocol, "rcode %s, want %s", rcode, strings.Join(want, ", "))
		return
	}
	for _, rs := range p.rules {
		var rrs []dns.RR
		switch rs.section {
		case "answer":
			rrs = reply.Answer
		case "authority":
			rrs = reply.Ns
		case "additional":
			rrs = reply.Extra
		}
		if msg := checkRRs(rs.rules, rrs); msg != "" {
			res.Fail(patrol.ClassProtocol, "%s: %s", rs.section, msg)
			return
		}
	}
}

// checkRRs applies blackbox_exporter's record-set rules and returns why they failed, or
// "" when they pass.
func checkRRs(rules []rrRule, rrs []dns.RR) string {
	strs := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if _, ok := rr.(*dns.OPT); ok {
			continue
		}
		strs = append(strs, rr.String())
	}
	for _, r := range rules {
		switch r.name {
		case "fail_if_matches_regexp":
			for _, s := range strs {
				if r.re.MatchString(s) {
					return fmt.Sprintf("%s %q: record %q matches", r.name, r.re, clip(s))
				}
			}
		case "fail_if_all_match_regexp":
			all := len(strs) > 0
			for _, s := range strs {
				if !r.re.MatchString(s) {
					all = false
					break
				}
			}
			if all {
				return fmt.Sprintf("%s %q: all %d records match", r.name, r.re, len(strs))
			}
		case "fail_if_not_matches_regexp":
			for _, s := range strs {
				if !r.re.MatchString(s) {
					return fmt.Sprintf("%s %q: record %q does not match", r.name, r.re, clip(s))
				}
			}
		case "fail_if_none_matches_regexp":
			any := false
			for _, s := range strs {
				if r.re.MatchString(s) {
					any = true
					break
				}
			}
			if !any {
				return fmt.Sprintf("%s %q: none of %d records match", r.name, r.re, len(strs))
			}
		}
	}
	return ""
}
