package probe

import (
	"crypto/tls"
	"math"
	"net"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

func TestTLS(t *testing.T) {
	leakCheck(t)
	ca := newCA(t, "Patrol Test CA")
	now := time.Now()
	valid := ca.validCert(t)
	validAddr := serveTLS(t, valid)
	expiredAddr := serveTLS(t, ca.issue(t, "old", []string{"127.0.0.1"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour)))
	futureAddr := serveTLS(t, ca.issue(t, "early", []string{"127.0.0.1"}, now.Add(24*time.Hour), now.Add(48*time.Hour)))
	wrongHostAddr := serveTLS(t, ca.issue(t, "other", []string{"other.test"}, now.Add(-time.Hour), now.Add(24*time.Hour)))
	self := newCA(t, "self") // a CA nobody trusts, standing in for a self-signed server
	selfAddr := serveTLS(t, self.validCert(t))
	// A valid chain plus an extra, expired certificate the server still sends (the
	// expired cross-signed root case): the chain that verifies is what counts.
	stale := self.issue(t, "stale cross-sign", nil, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	extra := valid
	extra.Certificate = append([][]byte{}, valid.Certificate[0], stale.Certificate[0])
	extraAddr := serveTLS(t, extra)
	plain := serveTCP(t, pingServer)

	trusted := &Env{RootCAs: ca.pool}
	tests := []struct {
		name      string
		target    string
		module    Module
		env       *Env
		class     patrol.Class
		fragments []string
		verified  bool
	}{
		{name: "trusted via Env.RootCAs", target: "tls://" + validAddr, env: trusted, class: patrol.ClassOK, verified: true},
		{name: "trusted via ca_file", target: "tls://" + validAddr, module: Module{TLS: TLSConfig{CAFile: ca.pemFile}}, class: patrol.ClassOK, verified: true},
		{name: "tcp module tls with ca_file", target: validAddr, module: Module{TCP: TCPModule{TLS: true, TLSConfig: TLSConfig{CAFile: ca.pemFile}}}, class: patrol.ClassOK, verified: true},
		{name: "tls prober named by the module", target: validAddr, module: Module{Prober: "tls", TLS: TLSConfig{CAFile: ca.pemFile}}, class: patrol.ClassOK, verified: true},
		{name: "untrusted self-signed", target: "tls://" + selfAddr, env: trusted, class: patrol.ClassTLS,
			fragments: []string{"unknown authority", `"self"`}},
		{name: "system roots do not trust a test CA", target: "tls://" + validAddr, class: patrol.ClassTLS, fragments: []string{"unknown authority"}},
		{name: "expired", target: "tls://" + expiredAddr, env: trusted, class: patrol.ClassTLS, fragments: []string{`certificate "old" expired`}},
		{name: "not yet valid", target: "tls://" + futureAddr, env: trusted, class: patrol.ClassTLS, fragments: []string{"not valid before"}},
		{name: "wrong host", target: "tls://" + wrongHostAddr, env: trusted, class: patrol.ClassTLS,
			fragments: []string{`not valid for "127.0.0.1"`, "other.test"}},
		{name: "servername option picks the name to verify", target: "tls://" + wrongHostAddr + "?servername=other.test", env: trusted, class: patrol.ClassOK, verified: true},
		{name: "insecure skips verification", target: "tls://" + selfAddr + "?insecure", class: patrol.ClassOK},
		{name: "insecure via module", target: "tls://" + expiredAddr, module: Module{TLS: TLSConfig{InsecureSkipVerify: true}}, class: patrol.ClassOK},
		{name: "expired extra certificate beside a valid chain", target: "tls://" + extraAddr, env: trusted, class: patrol.ClassOK, verified: true},
		{name: "clock past expiry", target: "tls://" + validAddr, env: &Env{RootCAs: ca.pool, Now: func() time.Time { return now.Add(31 * 24 * time.Hour) }},
			class: patrol.ClassTLS, fragments: []string{`certificate "localhost" expired`}},
		{name: "plain server", target: "tls://" + plain + "?timeout=1s", env: trusted, class: patrol.ClassTLS, fragments: []string{"TLS handshake with 127.0.0.1"}},
		{name: "min version TLS13", target: "tls://" + validAddr, env: trusted, module: Module{TLS: TLSConfig{MinVersion: "TLS13"}}, class: patrol.ClassOK, verified: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runProbe(t, tt.target, tt.module, tt.env)
			wantResult(t, res, tt.class, tt.fragments...)
			if tt.name == "plain server" {
				return
			}
			if res.TLS == nil {
				t.Fatal("got no TLS info, want it")
			}
			if res.TLS.Verified != tt.verified {
				t.Errorf("got Verified %v, want %v", res.TLS.Verified, tt.verified)
			}
			if _, ok := res.Phase("tls"); !ok {
				t.Errorf("got phases %v, want a tls phase", res.Phases)
			}
		})
	}
}

func TestTLSInfo(t *testing.T) {
	leakCheck(t)
	ca := newCA(t, "Patrol Test CA")
	cert := ca.validCert(t)
	addr := serveTLS(t, cert)
	now := time.Now()
	res := runProbe(t, "tls://"+addr, Module{}, &Env{RootCAs: ca.pool, Now: func() time.Time { return now }})
	wantResult(t, res, patrol.ClassOK)
	info := res.TLS
	if info == nil {
		t.Fatal("got no TLS info, want it")
	}
	if info.Version != "TLS 1.3" {
		t.Errorf("got version %q, want TLS 1.3", info.Version)
	}
	if info.ServerName != "127.0.0.1" {
		t.Errorf("got server name %q, want 127.0.0.1", info.ServerName)
	}
	if !info.EarliestExpiry.Equal(cert.Leaf.NotAfter) {
		t.Errorf("got earliest expiry %s, want %s", info.EarliestExpiry, cert.Leaf.NotAfter)
	}
	// The verified chain is leaf + CA; the leaf expires first.
	if !info.LastChainExpiry.Equal(cert.Leaf.NotAfter) {
		t.Errorf("got last chain expiry %s, want %s", info.LastChainExpiry, cert.Leaf.NotAfter)
	}
	wantDays := cert.Leaf.NotAfter.Sub(now).Hours() / 24
	if math.Abs(info.DaysLeft-wantDays) > 0.001 {
		t.Errorf("got %.3f days left, want %.3f", info.DaysLeft, wantDays)
	}
	if info.Subject != "localhost" || info.Issuer != "Patrol Test CA" {
		t.Errorf("got subject %q issuer %q, want localhost and Patrol Test CA", info.Subject, info.Issuer)
	}
}

func TestTLSMaxVersion(t *testing.T) {
	leakCheck(t)
	ca := newCA(t, "Patrol Test CA")
	cfg := &tls.Config{Certificates: []tls.Certificate{ca.validCert(t)}, MaxVersion: tls.VersionTLS12}
	addr := serveTCP(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if tc.Handshake() == nil {
			tc.Read(make([]byte, 1))
		}
	})
	res := runProbe(t, "tls://"+addr, Module{}, &Env{RootCAs: ca.pool})
	wantResult(t, res, patrol.ClassOK)
	if res.TLS.Version != "TLS 1.2" {
		t.Errorf("got version %q, want TLS 1.2", res.TLS.Version)
	}
	res = runProbe(t, "tls://"+addr, Module{TLS: TLSConfig{MinVersion: "TLS13"}}, &Env{RootCAs: ca.pool})
	wantResult(t, res, patrol.ClassTLS, "TLS handshake")
}
