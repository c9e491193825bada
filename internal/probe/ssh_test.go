package probe

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

func TestSSHRealServer(t *testing.T) {
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		// The CI machine installs openssh-server (scripts/deps.sh): there, a missing
		// sshd is a broken setup, not a reason to pass without running.
		if os.Getenv("CI") == "true" {
			t.Fatalf("no %s under CI=true: install openssh-server (scripts/deps.sh)", sshd)
		}
		t.Skip("no /usr/sbin/sshd; TestSSHBanners covers the banner with in-process servers")
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "host_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	_ = os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation directory
	port := testsvc.FreePort(t)
	cmd := exec.Command(sshd, "-D", "-e", "-f", "/dev/null", "-h", key, "-p", strconv.Itoa(port),
		"-o", "ListenAddress=127.0.0.1", "-o", "PidFile=none")
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var res patrol.Result
	for range 50 { // sshd needs a moment to listen
		if res = protoRun(t, "ssh://"+addr, Module{}); res.Class != patrol.ClassRefused {
			break
		}
		waitABit()
	}
	protoWant(t, res, patrol.ClassOK, "")
	if res.Details["protocol"] != "2.0" || res.Details["version"] == "" {
		t.Errorf("got details %v, want protocol 2.0 and a version", res.Details)
	}
}

func TestSSHBanners(t *testing.T) {
	for _, tc := range []struct {
		name, send string
		class      patrol.Class
		want       string
	}{
		{"openssh", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", patrol.ClassOK, ""},
		{"pre-banner lines", "Welcome\r\nAuthorized use only\r\nSSH-2.0-dropbear_2022.83\r\n", patrol.ClassOK, ""},
		{"ssh-1.99", "SSH-1.99-Cisco-1.25\r\n", patrol.ClassOK, ""},
		{"ssh-1 only", "SSH-1.5-ancient\r\n", patrol.ClassProtocol, "SSH-2.0 is required"},
		{"http", "HTTP/1.1 400 Bad Request\r\n\r\n", patrol.ClassProtocol, "without an SSH banner"},
		{"maxstartups", "Exceeded MaxStartups\r\n", patrol.ClassOverloaded, "MaxStartups"},
		{"closed at once", "", patrol.ClassReset, "before the SSH banner"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := protoServe(t, func(c net.Conn, _ <-chan struct{}) {
				_, _ = io.WriteString(c, tc.send)
				waitABit()
				c.Close()
			})
			res := protoRun(t, "ssh://"+addr, Module{})
			protoWant(t, res, tc.class, tc.want)
		})
	}
}
