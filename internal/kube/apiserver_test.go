package kube

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// The integration tests run against a real kube-apiserver on 127.0.0.1 backed by a real
// etcd (Debian's etcd-server), both started here once per test binary and stopped by
// TestMain. kube-apiserver is built by scripts/kube-apiserver.sh from the separate module
// in test/kubeapiserver; the tests find it through $PORTPATROL_KUBE_APISERVER or the
// script's cache path. Without it (or without etcd) they skip, except under CI=true,
// where they fail.

// Tokens of the static token file: an admin, and the service account the deploy
// manifests grant their least-privilege RBAC to.
const (
	adminToken   = "portpatrol-test-admin"
	saToken      = "portpatrol-test-serviceaccount"
	saUser       = "system:serviceaccount:portpatrol:portpatrol"
	apiserverVer = "../../test/kubeapiserver/go.mod"
)

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

type apiServer struct {
	url    string
	caPEM  []byte
	dir    string
	procs  []proc
	logs   []string
	errMsg string
}

var (
	apiMu sync.Mutex
	api   *apiServer
	// apiUsers are the tests that have used api, by name. A test that comes again
	// (go test -count=2: the same name, another *testing.T) gets a fresh server:
	// tests create fixed names, and a bare API server has no namespace controller to
	// clear them away.
	apiUsers = map[string]*testing.T{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if api != nil {
		api.stop()
	}
	os.Exit(code)
}

// requireAPIServer returns the shared API server, starting it on first use.
func requireAPIServer(t *testing.T) *apiServer {
	t.Helper()
	apiMu.Lock()
	defer apiMu.Unlock()
	if prev, ok := apiUsers[t.Name()]; ok && prev != t && api != nil {
		api.stop()
		api, apiUsers = nil, map[string]*testing.T{}
	}
	if api == nil {
		api = startAPIServer()
	}
	apiUsers[t.Name()] = t
	if api.errMsg != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kube-apiserver unavailable under CI: %s", api.errMsg)
		}
		t.Skipf("kube-apiserver unavailable: %s", api.errMsg)
	}
	return api
}

// client returns a clientset authenticated with token.
func (a *apiServer) client(t *testing.T, token string) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(a.restConfig(token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// api returns portpatrol's own Client, authenticated with token: the code under test
// talks to the API server through it, the tests' setup through client.
func (a *apiServer) api(t *testing.T, token string) *Client {
	t.Helper()
	c, err := NewForConfig(a.restConfig(token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (a *apiServer) restConfig(token string) *rest.Config {
	return &rest.Config{
		Host:            a.url,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: a.caPEM},
		QPS:             100,
		Burst:           200,
	}
}

func apiserverBinary() (string, string) {
	if p := os.Getenv("PORTPATROL_KUBE_APISERVER"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Sprintf("PORTPATROL_KUBE_APISERVER=%s: %v", p, err)
		}
		return p, ""
	}
	data, err := os.ReadFile(apiserverVer)
	if err != nil {
		return "", fmt.Sprintf("read %s: %v", apiserverVer, err)
	}
	version := ""
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), "require "))
		if len(f) >= 2 && f[0] == "k8s.io/kubernetes" {
			version = f[1]
		}
	}
	if version == "" {
		return "", "no k8s.io/kubernetes version in " + apiserverVer
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(cache, "portpatrol", "kube-apiserver-"+version)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Sprintf("no binary at %s: build it with scripts/kube-apiserver.sh (or set PORTPATROL_KUBE_APISERVER)", p)
	}
	return p, ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startAPIServer() *apiServer {
	a := &apiServer{}
	bin, msg := apiserverBinary()
	if msg != "" {
		a.errMsg = msg
		return a
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		a.errMsg = "etcd not found on PATH: apt-get install etcd-server"
		return a
	}
	if err := a.start(bin, etcd); err != nil {
		a.errMsg = err.Error()
		for _, l := range a.logs {
			if b, err := os.ReadFile(l); err == nil {
				a.errMsg += fmt.Sprintf("\n--- %s (tail)\n%s", l, tail(string(b), 3000))
			}
		}
		a.stop()
	}
	return a
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (a *apiServer) start(bin, etcd string) error {
	dir, err := os.MkdirTemp("", "portpatrol-kube-")
	if err != nil {
		return err
	}
	a.dir = dir
	clientPort, err := freePort()
	if err != nil {
		return err
	}
	peerPort, err := freePort()
	if err != nil {
		return err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	if err := a.spawn("etcd", etcd,
		"--name", "portpatrol-test",
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "portpatrol-test="+peerURL,
		"--experimental-watch-progress-notify-interval=100ms",
		"--unsafe-no-fsync",
	); err != nil {
		return err
	}
	if err := waitHTTP(etcdURL+"/health", nil, 30*time.Second); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}

	certFile, keyFile, caPEM, err := servingCert(dir)
	if err != nil {
		return err
	}
	a.caPEM = caPEM
	saKey, err := serviceAccountKey(dir)
	if err != nil {
		return err
	}
	tokens := filepath.Join(dir, "tokens.csv")
	err = os.WriteFile(tokens, []byte(fmt.Sprintf("%s,admin,admin,system:masters\n%s,%s,sa-portpatrol,\"system:serviceaccounts,system:serviceaccounts:portpatrol\"\n",
		adminToken, saToken, saUser)), 0o600)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	if err := a.spawn("kube-apiserver", bin,
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(port),
		"--tls-cert-file", certFile, "--tls-private-key-file", keyFile,
		"--cert-dir", filepath.Join(dir, "certs"),
		"--token-auth-file", tokens,
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", saKey,
		"--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--endpoint-reconciler-type", "none",
		"--disable-admission-plugins", "ServiceAccount",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v", "1",
	); err != nil {
		return err
	}
	a.url = fmt.Sprintf("https://127.0.0.1:%d", port)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return waitHTTP(a.url+"/readyz", &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, 3*time.Minute)
}

func (a *apiServer) spawn(name, bin string, args ...string) error {
	logPath := filepath.Join(a.dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	a.logs = append(a.logs, logPath)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := proc{cmd: cmd, done: make(chan struct{})}
	a.procs = append(a.procs, p)
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return nil
}

// stop ends the API server, then etcd, and removes their data.
func (a *apiServer) stop() {
	for i := len(a.procs) - 1; i >= 0; i-- {
		p := a.procs[i]
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if a.dir != "" {
		os.RemoveAll(a.dir)
	}
}

// waitHTTP polls url until it answers 200, with the admin token.
func waitHTTP(url string, c *http.Client, limit time.Duration) error {
	if c == nil {
		c = http.DefaultClient
	}
	c.Timeout = 2 * time.Second
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := c.Do(req)
		if err == nil {
			sc := bufio.NewScanner(resp.Body)
			var body []string
			for sc.Scan() && len(body) < 20 {
				body = append(body, sc.Text())
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.Join(body, " | "))
		} else {
			last = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s: %s", url, limit, last)
}

// servingCert writes a CA and a serving certificate for 127.0.0.1 and localhost.
func servingCert(dir string) (certFile, keyFile string, caPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "portpatrol test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", nil, err
	}
	certFile, keyFile = filepath.Join(dir, "serving.crt"), filepath.Join(dir, "serving.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", nil, err
	}
	return certFile, keyFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

// serviceAccountKey writes the RSA key that signs and verifies service account tokens.
func serviceAccountKey(dir string) (string, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "sa.key")
	return p, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600)
}

// ctxT returns a context cancelled when the test ends, bounded by limit.
func ctxT(t *testing.T, limit time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	return ctx
}
