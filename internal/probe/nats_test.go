package probe

import (
	"io"
	"net"
	"testing"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

func TestNATSLocal(t *testing.T) {
	addr := testsvc.Local(t, "NATS", "127.0.0.1:4222")
	res := protoRun(t, "nats://"+addr, Module{})
	protoWant(t, res, patrol.ClassOK, "")
	for _, k := range []string{"server_id", "version", "max_payload"} {
		if res.Details[k] == "" {
			t.Errorf("no %s in details %v", k, res.Details)
		}
	}
}

func TestNATSReplies(t *testing.T) {
	const info = `INFO {"server_id":"NABC","version":"2.10.7","max_payload":1048576}` + "\r\n"
	const authInfo = `INFO {"server_id":"NABC","version":"2.10.7","auth_required":true}` + "\r\n"
	for _, tc := range []struct {
		name, send, userinfo string
		class                patrol.Class
		want                 string
	}{
		{"pong", info + "PONG\r\n", "", patrol.ClassOK, ""},
		{"ping first", info + "PING\r\nPONG\r\n", "", patrol.ClassOK, ""},
		{"full", info + "-ERR 'maximum connections exceeded'\r\n", "", patrol.ClassOverloaded, "maximum connections exceeded"},
		{"auth required, no credentials", authInfo, "", patrol.ClassOK, "authentication required"},
		{"auth rejected", authInfo + "-ERR 'Authorization Violation'\r\n", "u:nats-pw@", patrol.ClassAuth, "Authorization Violation"},
		{"not nats", "220 smtp ready\r\n", "", patrol.ClassProtocol, "expected INFO"},
		{"bad json", "INFO {nope\r\n", "", patrol.ClassProtocol, "not valid JSON"},
		{"other error", info + "-ERR 'Unknown Protocol Operation'\r\n", "", patrol.ClassProtocol, "Unknown Protocol Operation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := protoServe(t, func(c net.Conn, gone <-chan struct{}) {
				_, _ = io.WriteString(c, tc.send)
				<-gone
			})
			res := protoRun(t, "nats://"+tc.userinfo+addr, Module{})
			protoWant(t, res, tc.class, tc.want, "nats-pw")
		})
	}
}
