package probe

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// udpSilence is how long a probe with no Send and no Expect waits for an ICMP port
// unreachable before it counts the port as open.
const udpSilence = time.Second

// maxDatagram bounds one UDP read: the largest possible datagram.
const maxDatagram = 64 << 10

// newUDP builds the udp prober. Query options: send (Go escapes interpreted), expect
// (a regexp the reply must match). The socket is connected, so an ICMP port
// unreachable that answers the datagram surfaces as ECONNREFUSED on the read and the
// result is refused.
func newUDP(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error) {
	c := m.UDP
	if v, ok := q.string("send"); ok {
		c.Send = v
	}
	if v, ok := q.string("expect"); ok {
		c.Expect = v
	}
	payload := []byte(unescape(c.Send))
	var expect *regexp.Regexp
	if c.Expect != "" {
		var err error
		if expect, err = regexp.Compile(c.Expect); err != nil {
			return nil, fmt.Errorf("udp.expect: %w", err)
		}
	}
	// With neither Send nor Expect no reply is required: silence means open.
	needReply := c.Send != "" || c.Expect != ""
	return func(ctx context.Context, res *patrol.Result) {
		conn := dial(ctx, env, "udp", t, res)
		if conn == nil {
			return
		}
		defer conn.Close()
		setDeadline(ctx, conn)
		stop := stopOnCancel(ctx, conn)
		defer stop()
		if !needReply {
			wait := time.Now().Add(udpSilence)
			if d, ok := ctx.Deadline(); !ok || wait.Before(d) {
				_ = conn.SetDeadline(wait)
			}
		}
		t0 := time.Now()
		if _, err := conn.Write(payload); err != nil {
			classifyInto(res, err, "send")
			return
		}
		buf := make([]byte, maxDatagram)
		n, err := conn.Read(buf)
		res.AddPhase("request", time.Since(t0))
		if err != nil {
			if !needReply && isTimeout(err) {
				res.SetDetail("reply", fmt.Sprintf("none within %s (open, or filtered)", round(time.Since(t0))))
				return
			}
			classifyInto(res, err, "wait for reply")
			return
		}
		reply := buf[:n]
		res.SetDetail("reply", clip(fmt.Sprintf("%q", reply)))
		if expect != nil && !expect.Match(reply) {
			res.Fail(patrol.ClassProtocol, "reply %s does not match %q", clip(fmt.Sprintf("%q", reply)), expect)
		}
	}, nil
}
