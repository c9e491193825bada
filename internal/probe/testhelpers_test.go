package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// leakCheck fails t when goroutines started during the test outlive it. Register it
// first, so that it runs after every other cleanup, the Envs' Close among them.
func leakCheck(t *testing.T) {
	t.Helper()
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

// closeAtEnd closes env when the test ends, failing it if Close does.
func closeAtEnd(t *testing.T, env *Env) {
	t.Helper()
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("Env.Close: %v", err)
		}
	})
}

// build parses target and builds its probe, failing the test on any error. env is
// closed when the test ends.
func build(t *testing.T, target string, m Module, env *Env) *Probe {
	t.Helper()
	tg, err := patrol.ParseTarget(target)
	if err != nil {
		t.Fatalf("ParseTarget(%q): %v", target, err)
	}
	closeAtEnd(t, env)
	p, err := New(tg, m, env)
	if err != nil {
		t.Fatalf("New(%q): %v", target, err)
	}
	return p
}

// runProbe builds and runs one probe of target.
func runProbe(t *testing.T, target string, m Module, env *Env) patrol.Result {
	t.Helper()
	return build(t, target, m, env).Run(context.Background())
}

// buildErr returns the error New gives for target, or nil.
func buildErr(t *testing.T, target string, m Module) error {
	t.Helper()
	tg, err := patrol.ParseTarget(target)
	if err != nil {
		t.Fatalf("ParseTarget(%q): %v", target, err)
	}
	env := &Env{}
	closeAtEnd(t, env)
	_, err = New(tg, m, env)
	return err
}

// wantResult checks a result's class and that its error contains every fragment.
func wantResult(t *testing.T, res patrol.Result, class patrol.Class, fragments ...string) {
	t.Helper()
	if res.Class != class {
		t.Fatalf("got class %s (%q), want %s", res.Class, res.Error, class)
	}
	for _, f := range fragments {
		if !strings.Contains(res.Error, f) {
			t.Errorf("got error %q, want it to contain %q", res.Error, f)
		}
	}
	if class == patrol.ClassOK && res.Error != "" {
		t.Errorf("got error %q on an ok result, want none", res.Error)
	}
}

// serveTCP runs handle for every connection to a loopback listener and returns its
// address. Cleanup closes the listener and every connection and waits for handlers.
func serveTCP(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// closedTCPAddr returns a loopback address where nothing listens.
func closedTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// closedUDPAddr returns a loopback UDP address where nothing listens.
func closedUDPAddr(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// certAuthority issues test certificates.
type certAuthority struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pool    *x509.CertPool
	pemFile string // the CA certificate in PEM, for tls_config.ca_file
}

var serial atomic.Int64

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func template(cn string, names []string, notBefore, notAfter time.Time) *x509.Certificate {
	c := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			c.IPAddresses = append(c.IPAddresses, ip)
		} else {
			c.DNSNames = append(c.DNSNames, n)
		}
	}
	return c
}

// newCA makes a CA valid from an hour ago for a year.
func newCA(t *testing.T, cn string) *certAuthority {
	t.Helper()
	key := newKey(t)
	tmpl := template(cn, nil, time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour))
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = nil
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &certAuthority{cert: cert, key: key, pool: pool, pemFile: file}
}

// issue signs a server certificate for names (host names or IP literals).
func (ca *certAuthority) issue(t *testing.T, cn string, names []string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, template(cn, names, notBefore, notAfter), ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// validCert issues a certificate for 127.0.0.1 and "localhost", valid for 30 days.
func (ca *certAuthority) validCert(t *testing.T) tls.Certificate {
	t.Helper()
	return ca.issue(t, "localhost", []string{"127.0.0.1", "localhost"}, time.Now().Add(-time.Hour), time.Now().Add(30*24*time.Hour))
}

// serveTLS runs a TLS server on loopback that completes the handshake and then reads
// until the client goes away.
func serveTLS(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	return serveTCP(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			return
		}
		buf := make([]byte, 512)
		for {
			if _, err := tc.Read(buf); err != nil {
				return
			}
		}
	})
}

// writeFile writes content to a file in a temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
