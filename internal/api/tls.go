package api

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
)

// LoadTLSConfig loads the listener's certificate and key (tls_cert_file,
// tls_key_file) into a server configuration that accepts TLS 1.2 and later. Both files
// are needed; errors name the file and what is wrong with it.
func LoadTLSConfig(certFile, keyFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, errors.New("tls: tls_cert_file and tls_key_file are not set")
	case certFile == "":
		return nil, fmt.Errorf("tls: tls_key_file is set (%s) but tls_cert_file is not: give both", keyFile)
	case keyFile == "":
		return nil, fmt.Errorf("tls: tls_cert_file is set (%s) but tls_key_file is not: give both", certFile)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tls: read tls_cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: read tls_key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: tls_cert_file %s and tls_key_file %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}
