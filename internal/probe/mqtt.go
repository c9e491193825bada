package probe

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// MQTTModule configures the mqtt prober. Credentials in the target URL
// (mqtt://user:pass@host) take precedence over the module's. The zero value connects
// anonymously with a random client id.
type MQTTModule struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// ClientID is sent in CONNECT; empty means "portpatrol-" and random hex, so
	// probes never take over a real client's session.
	ClientID string `yaml:"client_id"`
}

// newMQTT builds the mqtt prober: MQTT 3.1.1 CONNECT with a clean session, read
// CONNACK, send DISCONNECT. Query options: client_id.
//
// CONNACK return codes: 0 up; 1 (protocol level) and 2 (identifier) protocol; 3
// (server unavailable) protocol, as MQTT gives no reason; 4 (bad user name or
// password) auth; 5 (not authorized) auth, or up with a note when no credentials were
// given, since the broker answered correctly.
func newMQTT(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error) {
	c := m.MQTT
	user, pass := credentials(t, c.Username, c.Password)
	if v, ok := q.string("client_id"); ok {
		c.ClientID = v
	}
	if len(c.ClientID) > 65535 || len(user) > 65535 || len(pass) > 65535 {
		return nil, fmt.Errorf("mqtt: client id, user name and password must be under 64 KiB")
	}
	return func(ctx context.Context, res *patrol.Result) {
		conn := dial(ctx, env, "tcp", t, res)
		if conn == nil {
			return
		}
		defer conn.Close()
		setDeadline(ctx, conn)
		stop := stopOnCancel(ctx, conn)
		defer stop()
		id := c.ClientID
		if id == "" {
			b := make([]byte, 6)
			_, _ = rand.Read(b)
			id = "portpatrol-" + hex.EncodeToString(b)
		}
		t0 := time.Now()
		if _, err := conn.Write(mqttConnect(id, user, pass, 30)); err != nil {
			failIO(res, err, "CONNECT")
			return
		}
		rc, err := readMQTTConnack(bufio.NewReaderSize(conn, 64))
		res.AddPhase("first_byte", time.Since(t0))
		if err != nil {
			if err == io.EOF {
				res.Fail(patrol.ClassReset, "broker closed the connection without CONNACK (connection limit reached, listener or ACL refusing this client, or not MQTT)")
				return
			}
			failIO(res, err, "waiting for CONNACK")
			return
		}
		res.SetDetail("return_code", fmt.Sprint(rc))
		switch rc {
		case 0:
			_, _ = conn.Write([]byte{0xE0, 0x00}) // DISCONNECT
		case 1:
			res.Fail(patrol.ClassProtocol, "broker refuses MQTT 3.1.1 (CONNACK 1: unacceptable protocol version)")
		case 2:
			res.Fail(patrol.ClassProtocol, "broker rejects the client identifier %q (CONNACK 2)", id)
		case 3:
			res.Fail(patrol.ClassProtocol, "broker says the server is unavailable (CONNACK 3)")
		case 4:
			res.Fail(patrol.ClassAuth, "bad user name or password (CONNACK 4)")
		case 5:
			if user == "" && pass == "" {
				res.SetDetail("note", "authentication required")
				return
			}
			res.Fail(patrol.ClassAuth, "not authorized (CONNACK 5)")
		default:
			res.Fail(patrol.ClassProtocol, "CONNACK with unknown return code %d", rc)
		}
	}, nil
}

// mqttConnect encodes an MQTT 3.1.1 CONNECT packet with a clean session.
func mqttConnect(id, user, pass string, keepAlive uint16) []byte {
	str := func(b []byte, s string) []byte {
		b = append(b, byte(len(s)>>8), byte(len(s)))
		return append(b, s...)
	}
	flags := byte(0x02) // clean session
	var body []byte
	body = str(body, "MQTT")
	body = append(body, 4) // protocol level 3.1.1
	if user != "" {
		flags |= 0x80
	}
	if pass != "" {
		flags |= 0x40
	}
	body = append(body, flags, byte(keepAlive>>8), byte(keepAlive))
	body = str(body, id)
	if user != "" {
		body = str(body, user)
	}
	if pass != "" {
		body = str(body, pass)
	}
	pkt := []byte{0x10}
	for n := len(body); ; {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		pkt = append(pkt, b)
		if n == 0 {
			break
		}
	}
	return append(pkt, body...)
}

// readMQTTConnack reads the first packet, which must be a 4-byte CONNACK, and returns
// its return code.
func readMQTTConnack(r *bufio.Reader) (byte, error) {
	var p [4]byte
	if n, err := io.ReadFull(r, p[:]); err != nil {
		if n > 0 {
			err = midMessage(err)
		}
		return 0, err
	}
	if p[0] != 0x20 || p[1] != 0x02 {
		return 0, malformed("expected CONNACK (20 02), got %02x %02x (is this an MQTT broker?)", p[0], p[1])
	}
	if p[2]&^0x01 != 0 {
		return 0, malformed("CONNACK with reserved flag bits set")
	}
	return p[3], nil
}
