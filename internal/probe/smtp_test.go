package probe

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// waitABit gives a peer time to act on what was just sent.
func waitABit() { time.Sleep(50 * time.Millisecond) }

// smtpServe runs a scripted SMTP server: greeting, then EHLO, STARTTLS (when cert is
// set) and QUIT answered as a small MTA does.
func smtpServe(t *testing.T, greeting string, starttls bool) string {
	t.Helper()
	var cert tls.Certificate
	if starttls {
		ts := httptest.NewTLSServer(nil)
		cert = ts.TLS.Certificates[0]
		ts.Close()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.WriteString(c, greeting)
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					cmd := strings.ToUpper(strings.TrimSpace(line))
					switch {
					case strings.HasPrefix(cmd, "EHLO"):
						ext := "250-mx.test\r\n250-SIZE 10240000\r\n"
						if starttls {
							ext += "250-STARTTLS\r\n"
						}
						_, _ = io.WriteString(c, ext+"250 8BITMIME\r\n")
					case cmd == "STARTTLS":
						_, _ = io.WriteString(c, "220 2.0.0 Ready to start TLS\r\n")
						tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
						if tc.Handshake() != nil {
							return
						}
						c, r = tc, bufio.NewReader(tc)
					case cmd == "QUIT":
						_, _ = io.WriteString(c, "221 2.0.0 Bye\r\n")
						return
					default:
						_, _ = io.WriteString(c, "502 5.5.2 Error: command not recognized\r\n")
					}
				}
			}(c)
		}
	}()
	return l.Addr().String()
}

func TestSMTP(t *testing.T) {
	ok := smtpServe(t, "220 mx.test ESMTP Postfix\r\n", false)
	multi := smtpServe(t, "220-mx.test ESMTP\r\n220 welcome\r\n", true)
	full := smtpServe(t, "421 4.7.0 mx.test Error: too many connections from 127.0.0.1\r\n", false)
	down := smtpServe(t, "421 4.3.2 Service shutting down\r\n", false)
	refused := smtpServe(t, "554 5.7.1 No SMTP service here\r\n", false)
	for _, tc := range []struct {
		target string
		class  patrol.Class
		want   string
	}{
		{"smtp://" + ok, patrol.ClassOK, ""},
		{"smtp://" + ok + "?ehlo=probe.example", patrol.ClassOK, ""},
		{"smtp://" + ok + "?starttls=true", patrol.ClassProtocol, "STARTTLS is not offered"},
		{"smtp://" + multi, patrol.ClassOK, ""},
		{"smtp://" + multi + "?starttls=true", patrol.ClassTLS, "unknown authority"},
		{"smtp://" + multi + "?starttls=true&insecure=true", patrol.ClassOK, ""},
		{"smtp://" + full, patrol.ClassOverloaded, "too many connections"},
		{"smtp://" + down, patrol.ClassProtocol, "service not available"},
		{"smtp://" + refused, patrol.ClassProtocol, "refuses SMTP service"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			res := protoRun(t, tc.target, Module{})
			protoWant(t, res, tc.class, tc.want)
		})
	}
}
