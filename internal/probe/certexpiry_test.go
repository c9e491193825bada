package probe

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
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
