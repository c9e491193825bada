package probe

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

func TestAMQPLocal(t *testing.T) {
	addr := testsvc.Local(t, "RabbitMQ", "127.0.0.1:5672")
	res := protoRun(t, "amqp://"+addr, Module{})
	protoWant(t, res, patrol.ClassOK, "")
	if res.Details["product"] == "" || res.Details["version"] == "" || res.Details["mechanisms"] == "" {
		t.Errorf("got details %v, want product, version and mechanisms", res.Details)
	}
}

// amqpStartFrame builds a Connection.Start frame with a few server properties.
func amqpStartFrame() []byte {
	var table []byte
	add := func(k string, typ byte, v []byte) {
		table = append(table, byte(len(k)))
		table = append(table, k...)
		table = append(table, typ)
		table = append(table, v...)
	}
	long := func(s string) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...) }
	add("capabilities", 'F', long("\x09publisher\x74\x01"))
	add("product", 'S', long("TestMQ"))
	add("weight", 'I', []byte{0, 0, 0, 1})
	add("version", 'S', long("1.2.3"))
	p := []byte{0, 10, 0, 10, 0, 9}
	p = append(p, long(string(table))...)
	p = append(p, long("PLAIN AMQPLAIN")...)
	p = append(p, long("en_US")...)
	f := []byte{1, 0, 0}
	f = binary.BigEndian.AppendUint32(f, uint32(len(p)))
	return append(append(f, p...), 0xCE)
}

func TestAMQPReplies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		send  []byte
		class patrol.Class
		want  string
	}{
		{"start", amqpStartFrame(), patrol.ClassOK, ""},
		{"other version", []byte("AMQP\x01\x01\x00\x0a"), patrol.ClassProtocol, "unsupported version"},
		{"not a method", []byte("\x08\x00\x00\x00\x00\x00\x00\xce"), patrol.ClassProtocol, "want a method frame"},
		{"bad frame end", append(amqpStartFrame()[:len(amqpStartFrame())-1], 0), patrol.ClassProtocol, "0xCE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := protoServe(t, func(c net.Conn, gone <-chan struct{}) {
				_, _ = c.Write(tc.send)
				<-gone
			})
			res := protoRun(t, "amqp://"+addr, Module{})
			protoWant(t, res, tc.class, tc.want)
			if tc.class == patrol.ClassOK && (res.Details["product"] != "TestMQ" || res.Details["version"] != "1.2.3" || res.Details["protocol"] != "0-9") {
				t.Errorf("got details %v, want product TestMQ, version 1.2.3, protocol 0-9", res.Details)
			}
		})
	}
}

func FuzzAMQPStart(f *testing.F) {
	fr := amqpStartFrame()
	f.Add(fr[7 : len(fr)-1])
	f.Fuzz(func(t *testing.T, p []byte) { _, _ = parseAMQPStart(p) })
}
