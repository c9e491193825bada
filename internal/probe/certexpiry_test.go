package probe

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// TestLeafNotAfter checks that every probe speaking TLS reports the leaf certificate's
// NotAfter and names in Result.TLS, the one field the cert_expiry alert rule reads.
func TestLeafNotAfter(t *testing.T) {
	ca := newCA(t, "Patrol Test CA")
	notAfter := time.Now().Add(5 * 24 * time.Hour).Truncate(time.Second)
	cert := ca.issue(t, "", []string{"127.0.0.1", "localhost"}, time.Now().Add(-time.Hour), notAfter)
	tlsAddr := serveTLS(t, cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	trust := TLSConfig{CAFile: ca.pemFile}

	tests := []struct {
		name   string
		target string
		module Module
	}{
		{"tls", "tls://" + tlsAddr, Module{TLS: trust}},
		{"tcp with tls", tlsAddr, Module{TCP: TCPModule{TLS: true, TLSConfig: trust}}},
		{"https", srv.URL + "/", Module{HTTP: HTTPModule{TLSConfig: trust}}},
		{"insecure tls still reports", "tls://" + tlsAddr + "?insecure", Module{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runProbe(t, tt.target, tt.module, nil)
			wantResult(t, res, patrol.ClassOK)
			if res.TLS == nil {
				t.Fatal("got no TLS info, want it")
			}
			if !res.TLS.NotAfter.Equal(notAfter) {
				t.Errorf("got NotAfter %s, want %s", res.TLS.NotAfter, notAfter)
			}
			if res.TLS.SAN != "localhost" || res.TLS.Issuer != "Patrol Test CA" {
				t.Errorf("got SAN %q issuer %q, want localhost and Patrol Test CA", res.TLS.SAN, res.TLS.Issuer)
			}
		})
	}

	t.Run("smtp starttls", func(t *testing.T) {
		res := protoRun(t, "smtp://"+smtpServe(t, "220 mx.test ESMTP\r\n", true)+"?starttls=true&insecure=true", Module{})
		protoWant(t, res, patrol.ClassOK, "")
		if res.TLS == nil || res.TLS.NotAfter.IsZero() {
			t.Errorf("got TLS %+v, want the leaf's NotAfter", res.TLS)
		}
	})
	t.Run("postgres sslmode=require", func(t *testing.T) {
		addr := testsvc.Local(t, "PostgreSQL", "127.0.0.1:5432")
		res := protoRun(t, "postgres://postgres@"+addr+"/test?sslmode=require", Module{})
		if res.Class == patrol.ClassTLS {
			t.Skipf("the local PostgreSQL does not offer TLS: %s", res.Error)
		}
		protoWant(t, res, patrol.ClassOK, "")
		if res.TLS == nil || res.TLS.NotAfter.IsZero() {
			t.Errorf("got TLS %+v, want the leaf's NotAfter", res.TLS)
		}
	})
}

// TestNoSessionResumption checks that every run of a TLS-speaking probe makes a full
// handshake and reports the certificate the server presents at that moment: the
// cert_expiry rule reads it from every result, and a resumed session would show the
// certificate of the session it resumes. The server offers session tickets and, between
// two runs of the same probe, starts presenting a renewed certificate.
func TestNoSessionResumption(t *testing.T) {
	ca := newCA(t, "Patrol Test CA")
	old := time.Now().Add(3 * 24 * time.Hour).Truncate(time.Second)
	renewed := time.Now().Add(60 * 24 * time.Hour).Truncate(time.Second)
	certs := []tls.Certificate{
		ca.issue(t, "", []string{"127.0.0.1"}, time.Now().Add(-time.Hour), old),
		ca.issue(t, "", []string{"127.0.0.1"}, time.Now().Add(-time.Hour), renewed),
	}
	var (
		mu      sync.Mutex
		current int
		resumed int
	)
	cfg := &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			mu.Lock()
			defer mu.Unlock()
			return &certs[current], nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.DidResume {
				mu.Lock()
				resumed++
				mu.Unlock()
			}
			return nil
		},
	}
	tlsAddr := serveTCP(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if tc.Handshake() == nil {
			_, _ = io.Copy(io.Discard, tc)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(tls.NewListener(ln, cfg)) }()
	t.Cleanup(func() { srv.Close() })
	trust := TLSConfig{CAFile: ca.pemFile}

	for _, tt := range []struct {
		name   string
		target string
		module Module
	}{
		{"tls", "tls://" + tlsAddr, Module{TLS: trust}},
		{"https", "https://" + ln.Addr().String() + "/", Module{HTTP: HTTPModule{TLSConfig: trust}}},
		{"insecure tls", "tls://" + tlsAddr + "?insecure", Module{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			current, resumed = 0, 0
			mu.Unlock()
			p := build(t, tt.target, tt.module, &Env{})
			for run, want := range []time.Time{old, old, renewed, renewed} {
				if run == 2 {
					mu.Lock()
					current = 1
					mu.Unlock()
				}
				res := p.Run(context.Background())
				wantResult(t, res, patrol.ClassOK)
				if res.TLS == nil || !res.TLS.NotAfter.Equal(want) {
					t.Fatalf("run %d: got TLS %+v, want NotAfter %s", run+1, res.TLS, want)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if resumed != 0 {
				t.Errorf("the server saw %d resumed sessions, want none", resumed)
			}
		})
	}
}
