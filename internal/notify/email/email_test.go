package email_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/email"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*email.Email)(nil)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// smtpServer is an SMTP server on 127.0.0.1 that offers STARTTLS and AUTH PLAIN and
// records what it is told.
type smtpServer struct {
	ln   net.Listener
	cert tls.Certificate
	pool *x509.CertPool
	// rcptReply, when set, is the reply to RCPT TO.
	rcptReply string
	noTLS     bool

	mu       sync.Mutex
	commands []string
	data     []string
	auth     []string
	wg       sync.WaitGroup
}

func newSMTPServer(t *testing.T) *smtpServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool: pool}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *smtpServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *smtpServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			s.session(c)
		}()
	}
}

func (s *smtpServer) session(c net.Conn) {
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	reply := func(l string) { w.WriteString(l + "\r\n"); w.Flush() }
	reply("220 test ESMTP")
	tlsOn := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		s.mu.Lock()
		if verb == "AUTH" {
			s.commands = append(s.commands, "AUTH PLAIN <credentials>")
		} else {
			s.commands = append(s.commands, line)
		}
		s.mu.Unlock()
		switch verb {
		case "EHLO":
			if !tlsOn && !s.noTLS {
				reply("250-test\r\n250-STARTTLS\r\n250 8BITMIME")
			} else {
				reply("250-test\r\n250-AUTH PLAIN\r\n250 8BITMIME")
			}
		case "STARTTLS":
			reply("220 go ahead")
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{s.cert}})
			if tc.Handshake() != nil {
				return
			}
			c, tlsOn = tc, true
			r, w = bufio.NewReader(c), bufio.NewWriter(c)
		case "AUTH":
			f := strings.Fields(line)
			b, _ := base64.StdEncoding.DecodeString(f[len(f)-1])
			s.mu.Lock()
			s.auth = append(s.auth, strings.ReplaceAll(string(b), "\x00", "|"))
			s.mu.Unlock()
			reply("235 ok")
		case "MAIL":
			reply("250 ok")
		case "RCPT":
			if s.rcptReply != "" {
				reply(s.rcptReply)
			} else {
				reply("250 ok")
			}
		case "DATA":
			reply("354 go ahead")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			s.mu.Lock()
			s.data = append(s.data, b.String())
			s.mu.Unlock()
			reply("250 queued")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("500 unknown")
		}
	}
}

func (s *smtpServer) recorded() (commands, data, auth []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...), append([]string(nil), s.data...), append([]string(nil), s.auth...)
}

func newEmail(t *testing.T, s *smtpServer, tp *render.Templates) *email.Email {
	t.Helper()
	e, err := email.New(email.Config{
		Host: "127.0.0.1", Port: s.port(),
		From: "portpatrol <alerts@example.com>", To: []string{"oncall@example.com", "Zhang Wei <zw@example.com>"},
		Username: "alerts", Password: "pw",
		TLSConfig: &tls.Config{RootCAs: s.pool, ServerName: "127.0.0.1"},
		Templates: tp,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestMessageGolden(t *testing.T) {
	zh, _ := render.New(render.Config{Lang: "zh"})
	cases := []struct {
		name string
		n    patrol.Notification
		tp   *render.Templates
	}{
		{"firing", notifytest.Notification(patrol.NotifyFiring), nil},
		{"resolved_zh", notifytest.Notification(patrol.NotifyResolved), zh},
		{"impact", notifytest.Notification(patrol.NotifyImpact), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSMTPServer(t)
			e := newEmail(t, s, c.tp)
			if err := e.Notify(context.Background(), c.n); err != nil {
				t.Fatal(err)
			}
			commands, data, auth := s.recorded()
			if len(data) != 1 {
				t.Fatalf("got %d messages, want 1", len(data))
			}
			notifytest.Golden(t, c.name+".golden", []byte(data[0]))
			wantCommands := []string{"EHLO localhost", "STARTTLS", "EHLO localhost", "AUTH PLAIN <credentials>",
				"MAIL FROM:<alerts@example.com> BODY=8BITMIME", "RCPT TO:<oncall@example.com>", "RCPT TO:<zw@example.com>", "DATA", "QUIT"}
			if fmt.Sprint(commands) != fmt.Sprint(wantCommands) {
				t.Errorf("got commands\n%q\nwant\n%q", commands, wantCommands)
			}
			if want := []string{"|alerts|pw"}; fmt.Sprint(auth) != fmt.Sprint(want) {
				t.Errorf("got auth %q, want %q", auth, want)
			}
		})
	}
}

func TestRequiresStartTLS(t *testing.T) {
	s := newSMTPServer(t)
	s.noTLS = true
	e := newEmail(t, s, nil)
	err := e.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
	if !send.IsPermanent(err) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("got %v, want a permanent STARTTLS error", err)
	}
	if _, data, _ := s.recorded(); len(data) != 0 {
		t.Errorf("sent %d messages without TLS", len(data))
	}
}

func TestReplyCodes(t *testing.T) {
	for reply, permanent := range map[string]bool{"550 no such user": true, "451 try again later": false} {
		s := newSMTPServer(t)
		s.rcptReply = reply
		e := newEmail(t, s, nil)
		err := e.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
		if err == nil || send.IsPermanent(err) != permanent {
			t.Errorf("%s: got %v, want permanent=%v", reply, err, permanent)
		}
		if want := strconv.Itoa(map[bool]int{true: 550, false: 451}[permanent]); !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v does not name the reply", reply, err)
		}
	}
}
