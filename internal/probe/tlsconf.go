package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// buildTLSConfig turns a TLSConfig into a crypto/tls config. Verification is done by
// verifyChain after the handshake, not by crypto/tls, so that an untrusted or expired
// chain is still inspected and reported with its reason.
func buildTLSConfig(c TLSConfig, defaultServerName string, env *Env) (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName:         c.ServerName,
		InsecureSkipVerify: true, // verified in verifyChain, so failures carry a reason
		RootCAs:            env.RootCAs,
	}
	if cfg.ServerName == "" {
		cfg.ServerName = defaultServerName
	}
	if c.CAFile != "" || c.CA != "" {
		pem := []byte(c.CA)
		if c.CAFile != "" {
			b, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("tls_config.ca_file: %w", err)
			}
			pem = b
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			if c.CAFile != "" {
				return nil, fmt.Errorf("tls_config.ca_file %s: no PEM certificates found", c.CAFile)
			}
			return nil, errors.New("tls_config.ca: no PEM certificates found")
		}
		cfg.RootCAs = pool
	}
	if c.CAFile != "" && c.CA != "" {
		return nil, errors.New("tls_config: ca and ca_file exclude each other")
	}
	cert, key := c.CertFile != "" || c.Cert != "", c.KeyFile != "" || c.Key != ""
	if cert != key {
		return nil, errors.New("tls_config: a client certificate (cert or cert_file) and its key (key or key_file) go together")
	}
	if cert {
		certPEM, keyPEM := []byte(c.Cert), []byte(c.Key)
		var err error
		if c.CertFile != "" {
			if certPEM, err = os.ReadFile(c.CertFile); err != nil {
				return nil, fmt.Errorf("tls_config.cert_file: %w", err)
			}
		}
		if c.KeyFile != "" {
			if keyPEM, err = os.ReadFile(c.KeyFile); err != nil {
				return nil, fmt.Errorf("tls_config.key_file: %w", err)
			}
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("tls_config: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	var err error
	if cfg.MinVersion, err = tlsVersion("min_version", c.MinVersion); err != nil {
		return nil, err
	}
	if cfg.MaxVersion, err = tlsVersion("max_version", c.MaxVersion); err != nil {
		return nil, err
	}
	if cfg.MinVersion != 0 && cfg.MaxVersion != 0 && cfg.MaxVersion < cfg.MinVersion {
		return nil, fmt.Errorf("tls_config: max_version %s is below min_version %s", c.MaxVersion, c.MinVersion)
	}
	return cfg, nil
}

// tlsVersion reads a Prometheus TLS version name; empty is 0, Go's default.
func tlsVersion(field, v string) (uint16, error) {
	switch strings.ToUpper(v) {
	case "":
		return 0, nil
	case "TLS10":
		return tls.VersionTLS10, nil
	case "TLS11":
		return tls.VersionTLS11, nil
	case "TLS12":
		return tls.VersionTLS12, nil
	case "TLS13":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("tls_config.%s %q: want TLS10, TLS11, TLS12 or TLS13", field, v)
}

// tlsSkipVerify reports whether the user asked not to verify the chain.
func tlsSkipVerify(c TLSConfig) bool { return c.InsecureSkipVerify }

// handshake runs a TLS client handshake over conn, records the "tls" phase and the
// session in res, and verifies the chain unless skip is set. It returns the TLS
// connection, or nil after classifying the failure into res.
func handshake(ctx context.Context, conn net.Conn, cfg *tls.Config, skip bool, env *Env, res *patrol.Result) *tls.Conn {
	tc := tls.Client(conn, cfg)
	t0 := time.Now()
	err := tc.HandshakeContext(ctx)
	res.AddPhase("tls", time.Since(t0))
	if err != nil {
		c, msg := Classify(err)
		if c == patrol.ClassError || c == patrol.ClassProtocol {
			c = patrol.ClassTLS
		}
		res.Fail(c, "TLS handshake with %s: %s", cfg.ServerName, msg)
		return nil
	}
	state := tc.ConnectionState()
	res.TLS = tlsInfo(state, cfg.ServerName, env)
	if skip {
		return tc
	}
	chains, err := verifyChain(state, cfg, env)
	if err != nil {
		res.Fail(patrol.ClassTLS, "%s", err)
		return tc
	}
	res.TLS.Verified = true
	res.TLS.LastChainExpiry = lastChainExpiry(chains)
	return tc
}

// verifyChain verifies the peer's chain and host name and returns the verified chains,
// or an error that says which certificate is wrong and why. A chain that verifies is
// accepted even when the server also sends an expired certificate it does not need
// (such as an expired cross-signed root).
func verifyChain(state tls.ConnectionState, cfg *tls.Config, env *Env) ([][]*x509.Certificate, error) {
	certs := state.PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("server sent no certificate")
	}
	now := env.now()
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		DNSName:       cfg.ServerName,
		Roots:         cfg.RootCAs,
		Intermediates: inter,
		CurrentTime:   now,
	})
	if err == nil {
		return chains, nil
	}
	for _, c := range certs {
		if now.After(c.NotAfter) {
			return nil, fmt.Errorf("certificate %q expired %s ago (not after %s)", c.Subject.CommonName,
				now.Sub(c.NotAfter).Round(time.Minute), c.NotAfter.UTC().Format(time.RFC3339))
		}
		if now.Before(c.NotBefore) {
			return nil, fmt.Errorf("certificate %q is not valid before %s", c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	var hn x509.HostnameError
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &hn):
		return nil, fmt.Errorf("certificate is not valid for %q (it names %s)", cfg.ServerName, certNames(certs[0]))
	case errors.As(err, &ua):
		return nil, fmt.Errorf("certificate %q is signed by an unknown authority %q (self-signed or missing intermediate; set tls_config.ca_file)",
			certs[0].Subject.CommonName, certs[0].Issuer.CommonName)
	}
	return nil, fmt.Errorf("certificate verification: %v", err)
}

func certNames(c *x509.Certificate) string {
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "no names"
	}
	return strings.Join(names, ", ")
}

func tlsInfo(state tls.ConnectionState, serverName string, env *Env) *patrol.TLSInfo {
	info := &patrol.TLSInfo{Version: tls.VersionName(state.Version), ServerName: serverName}
	for i, c := range state.PeerCertificates {
		if i == 0 {
			info.Subject = c.Subject.CommonName
			info.Issuer = c.Issuer.CommonName
			info.NotAfter = c.NotAfter
			switch {
			case len(c.DNSNames) > 0:
				info.SAN = c.DNSNames[0]
			case len(c.IPAddresses) > 0:
				info.SAN = c.IPAddresses[0].String()
			}
		}
		if info.EarliestExpiry.IsZero() || c.NotAfter.Before(info.EarliestExpiry) {
			info.EarliestExpiry = c.NotAfter
		}
	}
	info.LastChainExpiry = lastChainExpiry(state.VerifiedChains)
	if !info.EarliestExpiry.IsZero() {
		info.DaysLeft = info.EarliestExpiry.Sub(env.now()).Hours() / 24
	}
	return info
}

// lastChainExpiry returns when the last of the chains stops being valid: the latest,
// over the chains, of each chain's earliest NotAfter.
func lastChainExpiry(chains [][]*x509.Certificate) time.Time {
	var last time.Time
	for _, chain := range chains {
		var earliest time.Time
		for _, c := range chain {
			if earliest.IsZero() || c.NotAfter.Before(earliest) {
				earliest = c.NotAfter
			}
		}
		if earliest.After(last) {
			last = earliest
		}
	}
	return last
}
