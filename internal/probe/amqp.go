package probe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// amqpMaxFrame bounds the Connection.Start frame; servers send about 1 KiB.
const amqpMaxFrame = 128 << 10

// amqpStart is what the probe reports from Connection.Start.
type amqpStart struct {
	Major, Minor byte
	Properties   map[string]string // string-valued server properties
	Mechanisms   string
	Locales      string
}

// newAMQP builds the amqp prober (AMQP 0-9-1): send the protocol header, read
// Connection.Start and close, as the protocol allows before Start-Ok. It takes no
// options.
func newAMQP(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error) {
	return func(ctx context.Context, res *patrol.Result) {
		conn := dial(ctx, env, "tcp", t, res)
		if conn == nil {
			return
		}
		defer conn.Close()
		setDeadline(ctx, conn)
		stop := stopOnCancel(ctx, conn)
		defer stop()
		t0 := time.Now()
		if _, err := io.WriteString(conn, "AMQP\x00\x00\x09\x01"); err != nil {
			failIO(res, err, "protocol header")
			return
		}
		start, err := readAMQPStart(bufio.NewReaderSize(conn, 4096))
		res.AddPhase("first_byte", time.Since(t0))
		if err != nil {
			failIO(res, err, "waiting for Connection.Start")
			return
		}
		res.SetDetail("protocol", fmt.Sprintf("%d-%d", start.Major, start.Minor))
		for _, k := range []string{"product", "version", "platform", "cluster_name"} {
			if v := start.Properties[k]; v != "" {
				res.SetDetail(k, truncate(v, 80))
			}
		}
		res.SetDetail("mechanisms", truncate(start.Mechanisms, 120))
	}, nil
}

// readAMQPStart reads the server's first frame, which must be Connection.Start. A
// protocol header in its place means the server wants another protocol version.
func readAMQPStart(r *bufio.Reader) (*amqpStart, error) {
	var h [7]byte
	if n, err := io.ReadFull(r, h[:]); err != nil {
		if n > 0 {
			err = midMessage(err)
		}
		return nil, err
	}
	if string(h[:4]) == "AMQP" {
		var v [1]byte
		if _, err := io.ReadFull(r, v[:]); err != nil {
			return nil, midMessage(err)
		}
		return nil, malformed("unsupported version: the server offers AMQP %d-%d-%d, not 0-9-1", h[5], h[6], v[0])
	}
	if h[0] != 1 {
		return nil, malformed("first frame has type %d, want a method frame (is this an AMQP server?)", h[0])
	}
	size := binary.BigEndian.Uint32(h[3:])
	if size > amqpMaxFrame {
		return nil, malformed("frame of %d bytes exceeds the %d-byte limit", size, amqpMaxFrame)
	}
	payload := make([]byte, size+1)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, midMessage(err)
	}
	if payload[size] != 0xCE {
		return nil, malformed("frame does not end with 0xCE")
	}
	return parseAMQPStart(payload[:size])
}

// parseAMQPStart decodes a Connection.Start method payload.
func parseAMQPStart(p []byte) (*amqpStart, error) {
	if len(p) < 6 {
		return nil, malformed("truncated method frame")
	}
	class, method := binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:])
	if class != 10 || method != 10 {
		return nil, malformed("first method is %d.%d, want Connection.Start (10.10)", class, method)
	}
	s := &amqpStart{Major: p[4], Minor: p[5], Properties: map[string]string{}}
	p = p[6:]
	table, p, ok := amqpLong(p)
	if !ok {
		return nil, malformed("truncated server-properties")
	}
	amqpTable(table, s.Properties, 0)
	mech, p, ok := amqpLong(p)
	if !ok {
		return nil, malformed("truncated mechanisms")
	}
	s.Mechanisms = strings.ToValidUTF8(string(mech), "?")
	if loc, _, ok := amqpLong(p); ok {
		s.Locales = strings.ToValidUTF8(string(loc), "?")
	}
	return s, nil
}

// amqpLong splits off a long-string (or a table's bytes): uint32 length, then data.
func amqpLong(p []byte) ([]byte, []byte, bool) {
	if len(p) < 4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(p)
	if uint64(n) > uint64(len(p)-4) {
		return nil, nil, false
	}
	return p[4 : 4+n], p[4+n:], true
}

// amqpTable records the string-valued entries of a field table into out, skipping
// every other type; it stops at the first value it cannot size.
func amqpTable(p []byte, out map[string]string, depth int) {
	fixed := map[byte]int{'t': 1, 'b': 1, 'B': 1, 's': 2, 'u': 2, 'U': 2, 'I': 4, 'i': 4, 'f': 4,
		'l': 8, 'L': 8, 'd': 8, 'T': 8, 'D': 5, 'V': 0}
	for len(p) > 0 && len(out) < 64 {
		n := int(p[0])
		if len(p) < 1+n+1 {
			return
		}
		name := string(p[1 : 1+n])
		typ := p[1+n]
		p = p[2+n:]
		if size, ok := fixed[typ]; ok {
			if len(p) < size {
				return
			}
			p = p[size:]
			continue
		}
		switch typ {
		case 'S', 'x', 'F', 'A':
			v, rest, ok := amqpLong(p)
			if !ok {
				return
			}
			if typ == 'S' && depth == 0 && bytes.IndexByte(v, 0) < 0 {
				out[strings.ToValidUTF8(name, "?")] = strings.ToValidUTF8(string(v), "?")
			}
			p = rest
		default:
			return
		}
	}
}
