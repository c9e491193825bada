package main

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
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
	"github.com/portpatrol/portpatrol/internal/schedule"
)

// tlsServerName is the name on the TLS child's certificate, which the probes and the
// bare handshakes ask for (SNI) and verify.
const tlsServerName = "engine.portpatrol.test"

// tlsServe makes a self-signed ECDSA P-256 certificate, opens n listeners, prints the
// certificate (PEM, base64 on one line), their addresses and "ready", and completes a
// TLS handshake on every connection before closing it, until its standard input
// closes. It is crypto/tls with its defaults, in a process of its own so that its CPU
// is not the prober's.
func tlsServe(n int) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: tlsServerName},
		DNSNames:              []string{tlsServerName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, base64.StdEncoding.EncodeToString(certPEM))
	for i := range n {
		ln, err := net.Listen("tcp", listenHost(i)+":0")
		if err != nil {
			return err
		}
		fmt.Fprintln(out, ln.Addr())
		go func() {
			for {
				c, err := ln.Accept()
				if errors.Is(err, net.ErrClosed) {
					return
				}
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				go func() {
					tc := tls.Server(c, cfg)
					_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
					_ = tc.Handshake()
					tc.Close() // after the session tickets, close_notify

				}()
			}
		}()
	}
	return announceReady(out)
}

// tlsJob builds a scheduler job running a real tls probe of addr on env: connect,
// handshake, verify the chain against the child's certificate, report the chain's
// expiry, close.
func tlsJob(env *probe.Env, id, addr, caPEM string, interval, timeout time.Duration) (schedule.Job, error) {
	t, err := patrol.ParseTarget("tls://" + addr)
	if err != nil {
		return schedule.Job{}, err
	}
	t.Timeout = timeout
	m := probe.Module{TLS: probe.TLSConfig{CA: caPEM, ServerName: tlsServerName}}
	p, err := probe.New(t, m, env)
	if err != nil {
		return schedule.Job{}, err
	}
	return schedule.Job{ID: id, Host: t.Host, Interval: interval, Timeout: timeout, Run: p.Run}, nil
}

// bareTLS is the anchor of the tls probe: connect with net.Dialer (no keep-alive, as
// the probes dial), a crypto/tls client handshake with its own verification of the
// chain and the name, close. No result beyond up or down, no certificate details.
// With cache set, the handshakes resume sessions from it, and each reads to the
// server's close to take the session ticket for the next one.
func bareTLS(addr string, roots *x509.CertPool, cache tls.ClientSessionCache) func(context.Context) patrol.Result {
	cfg := &tls.Config{RootCAs: roots, ServerName: tlsServerName, ClientSessionCache: cache}
	return func(ctx context.Context) patrol.Result {
		d := net.Dialer{KeepAlive: -1}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return patrol.Result{Class: patrol.ClassRefused, Error: err.Error()}
		}
		defer c.Close()
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return patrol.Result{Class: patrol.ClassTLS, Error: err.Error()}
		}
		if cache != nil {
			resumeTries.Add(1)
			if tc.ConnectionState().DidResume {
				resumedRuns.Add(1)
			}
			_ = tc.SetReadDeadline(time.Now().Add(time.Second))
			_, _ = io.Copy(io.Discard, tc)
		}
		tc.Close()
		return patrol.Result{Class: patrol.ClassOK}
	}
}

// resumeTries and resumedRuns count the bare handshakes with a session cache, and
// those of them that resumed a session, warm-up included.
var resumeTries, resumedRuns atomic.Int64

// tlsThroughput measures real tls probes at p.tlsRate per second against a TLS child,
// then the bare crypto/tls handshake at the same rate, then the bare handshake
// resuming sessions, for context.
func tlsThroughput(w io.Writer, p params) (time.Duration, error) {
	const interval, warmup, listeners = time.Second, 2 * time.Second, 50
	srv, err := child("tls:" + strconv.Itoa(listeners))
	if err != nil {
		return 0, err
	}
	defer srv.Stop()
	sc := bufio.NewScanner(srv.stdout)
	if !sc.Scan() {
		return 0, fmt.Errorf("tls child gave no certificate")
	}
	pemBytes, err := base64.StdEncoding.DecodeString(sc.Text())
	if err != nil {
		return 0, fmt.Errorf("tls child's certificate: %w", err)
	}
	caPEM := string(pemBytes)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		return 0, fmt.Errorf("tls child's certificate: no PEM")
	}
	addrs, err := readAddrs(sc, listeners, "tls child")
	if err != nil {
		return 0, err
	}
	env := new(probe.Env)
	defer env.Close()
	jobs := make([]schedule.Job, p.tlsRate)
	for i := range jobs {
		addr := addrs[i%len(addrs)]
		j, err := tlsJob(env, fmt.Sprintf("tls://%s#%d", addr, i), addr, caPEM, interval, interval)
		if err != nil {
			return 0, err
		}
		jobs[i] = j
	}
	f, err := measure(jobs, p.concurrency, warmup, p.duration, p.cpuProfile)
	if err != nil {
		return 0, err
	}
	for i := range jobs {
		jobs[i].Run = bareTLS(addrs[i%len(addrs)], roots, nil)
	}
	bare, err := measure(jobs, p.concurrency, warmup, p.duration/2, "")
	if err != nil {
		return 0, err
	}
	for i := range jobs {
		jobs[i].Run = bareTLS(addrs[i%len(addrs)], roots, tls.NewLRUClientSessionCache(1))
	}
	resumed, err := measure(jobs, p.concurrency, warmup, p.duration/2, "")
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(w, "tls: %d jobs every %s (connect, TLS handshake with chain verification, close) over %d crypto/tls listeners, ECDSA P-256 (child process), %s measured after %s warm-up\n",
		p.tlsRate, interval, listeners, p.duration, warmup)
	fmt.Fprintf(w, "tls probes/s: %.0f, failed %d of %d", f.perSec, f.failed, f.runs)
	if f.firstFailure != "" {
		fmt.Fprintf(w, " (first: %s)", strings.TrimSpace(f.firstFailure))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "CPU per tls probe in the engine: %.1f µs, lag p99 %s\n", us(f.cpuPerRun), ms(f.p99))
	fmt.Fprintf(w, "  measured in the same run: a bare crypto/tls handshake (net.Dialer, tls.Client with its own verification, close) %.1f µs per run at %.0f/s, %d failed\n",
		us(bare.cpuPerRun), bare.perSec, bare.failed)
	fmt.Fprintf(w, "  tls probe / bare handshake: %.2f× (goal ≤ 1.1×)\n", float64(f.cpuPerRun)/float64(bare.cpuPerRun))
	fmt.Fprintf(w, "  for context, the bare handshake resuming sessions (tls.ClientSessionCache; no certificate sent or verified, the key exchange still made): %.1f µs per run, %d failed, %d of %d handshakes resumed (warm-up included)\n",
		us(resumed.cpuPerRun), resumed.failed, resumedRuns.Load(), resumeTries.Load())
	return f.cpuPerRun, nil
}
