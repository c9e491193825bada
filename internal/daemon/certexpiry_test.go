package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// testCA makes a CA and a server certificate for 127.0.0.1 that expires at notAfter;
// it returns the server's certificate and the CA's PEM.
func testCA(t *testing.T, notAfter time.Time) (tls.Certificate, []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Expiry Test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "shop.test"},
		DNSNames: []string{"shop.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

// An HTTPS target whose certificate, from a CA the target's module trusts, expires in
// five days pages a P2 cert_expiry alert through the webhook receiver.
func TestServeCertFiveDaysFromExpiryPagesP2(t *testing.T) {
	notAfter := time.Now().Add(5 * 24 * time.Hour)
	cert, caPEM := testCA(t, notAfter)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	hook := testsvc.NewWebhook(t)

	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	testsvc.WriteFile(t, caFile, string(caPEM))
	path := filepath.Join(dir, "pp.yaml")
	testsvc.WriteFile(t, path, fmt.Sprintf(`host_watch: {disabled: true}
defaults: {interval: 500ms, timeout: 500ms}
alerting: {grouping: {group_wait: -1s, group_interval: -1s}}
notify:
  receivers: [{name: default, type: webhook, url: %s}]
modules:
  https_test_ca:
    prober: http
    http: {tls_config: {ca_file: %s}}
targets: [{url: %s/, module: https_test_ca}]
`, hook.URL, caFile, srv.URL))
	d, _ := startDaemon(t, path)

	var a patrol.Alert
	eventually(t, "a cert_expiry alert", func() bool {
		for _, x := range d.engine().List(alert.Filter{}) {
			if x.Class == patrol.AlertCertExpiry {
				a = x
				return true
			}
		}
		return false
	})
	if a.Severity != patrol.P2 || a.Rule != "cert_expiry" {
		t.Errorf("got %s %s, want a P2 cert_expiry", a.Severity, a.Rule)
	}
	when := notAfter.UTC().Format("2006-01-02 15:04 UTC")
	for _, w := range []string{`"shop.test"`, `issued by "Expiry Test CA"`, "expires in 5 days", "on " + when} {
		if !strings.Contains(a.Summary, w) {
			t.Errorf("got summary %q, want it to say %q", a.Summary, w)
		}
	}
	if len(a.Evidence) == 0 || a.Evidence[len(a.Evidence)-1].Class != patrol.ClassOK {
		t.Errorf("got evidence %+v, want the target up: the certificate is still valid", a.Evidence)
	}

	msgs := hook.WaitAbout(t, a.Target, 1, 15*time.Second)
	got := msgs[0]
	if got.Status != "firing" || got.Alerts[0].Labels["alertname"] != "cert_expiry" || got.Alerts[0].Labels["severity"] != "P2" {
		t.Errorf("the receiver got %+v, want a firing P2 cert_expiry", got)
	}
}
