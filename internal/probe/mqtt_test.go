package probe

import (
	"io"
	"net"
	"testing"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

func TestMQTTLocal(t *testing.T) {
	addr := testsvc.Local(t, "Mosquitto", "127.0.0.1:1883")
	protoWant(t, protoRun(t, "mqtt://"+addr, Module{}), patrol.ClassOK, "")
}

func TestMQTTReturnCodes(t *testing.T) {
	for _, tc := range []struct {
		name, send, userinfo string
		class                patrol.Class
		want                 string
	}{
		{"accepted", "\x20\x02\x00\x00", "", patrol.ClassOK, ""},
		{"session present", "\x20\x02\x01\x00", "", patrol.ClassOK, ""},
		{"protocol version", "\x20\x02\x00\x01", "", patrol.ClassProtocol, "unacceptable protocol version"},
		{"server unavailable", "\x20\x02\x00\x03", "", patrol.ClassProtocol, "server is unavailable"},
		{"bad password", "\x20\x02\x00\x04", "u:mqtt-pw@", patrol.ClassAuth, "bad user name or password"},
		{"not authorized, no credentials", "\x20\x02\x00\x05", "", patrol.ClassOK, "authentication required"},
		{"not authorized", "\x20\x02\x00\x05", "u:mqtt-pw@", patrol.ClassAuth, "not authorized"},
		{"closed", "", "", patrol.ClassReset, "without CONNACK"},
		{"not mqtt", "SSH-2.0-x\r\n", "", patrol.ClassProtocol, "expected CONNACK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := protoServe(t, func(c net.Conn, gone <-chan struct{}) {
				_, _ = io.WriteString(c, tc.send)
				if tc.send == "" {
					waitABit()
					c.Close()
					return
				}
				<-gone
			})
			res := protoRun(t, "mqtt://"+tc.userinfo+addr, Module{})
			protoWant(t, res, tc.class, tc.want, "mqtt-pw")
		})
	}
}

func TestMQTTConnect(t *testing.T) {
	got := mqttConnect("portpatrol-1", "u", "p", 30)
	want := "\x10\x1e\x00\x04MQTT\x04\xc2\x00\x1e\x00\x0cportpatrol-1\x00\x01u\x00\x01p"
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
