package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/portpatrol/portpatrol/internal/api"
)

// requireRoot skips a test that changes users when not run as root, except under CI,
// which runs as root here and must run it.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root to run a client under another uid, and CI=true runs as root")
		}
		t.Skip("not root: cannot run a client under another uid to test the local socket's peer check")
	}
}

// TestCLIUsesTheLocalSocketAsRoot runs a real daemon and real CLI commands against
// its local socket: root reads and writes without a token (by --socket, and by
// finding the socket in the data directory), and a client of another uid is
// refused with a message that says why and what to do.
func TestCLIUsesTheLocalSocketAsRoot(t *testing.T) {
	requireRoot(t)
	// The data directory is traversable by everyone so that the other-uid client
	// below reaches the socket itself (and the check of its mode and uid).
	dir, err := os.MkdirTemp("", "pp-socket-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "pp.yaml")
	if err := os.WriteFile(cfg, []byte("host_watch: {disabled: true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	startDaemonProc(t, cfg, dir)
	sock := filepath.Join(dir, api.SocketName)
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatalf("the daemon serves no socket in its data directory: %v", err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v, want a socket of mode 0600", sock, fi.Mode())
	}

	cli := func(t *testing.T, env []string, args ...string) (string, int) {
		t.Helper()
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		var out bytes.Buffer
		code := run(args, &out, &out)
		return out.String(), code
	}
	// No token, no server: root's write goes through the socket named by --socket.
	t.Setenv("PORTPATROL_SERVER", "")
	t.Setenv("PORTPATROL_TOKEN", "")
	out, code := cli(t, nil, "silence", "add", "service=web", "--for", "1h", "-m", "socket test", "--socket", sock)
	if code != 0 {
		t.Fatalf("silence add over the socket as root: exit %d: %s", code, out)
	}
	// Found in the data directory without any flag; the silence is recorded as root's.
	out, code = cli(t, []string{"PORTPATROL_DATA_DIR=" + dir}, "silence", "ls", "--json")
	if code != 0 || !strings.Contains(out, `"author": "root (local socket)"`) {
		t.Fatalf("silence ls found through the data directory: exit %d, want 0 and the silence created by root over the socket:\n%s", code, out)
	}
	// With a token given, the CLI uses HTTP: the socket is only the tokenless default.
	out, code = cli(t, []string{"PORTPATROL_DATA_DIR=" + dir, "PORTPATROL_TOKEN=nope", "PORTPATROL_SERVER=http://127.0.0.1:1"}, "alerts")
	if code != 3 || !strings.Contains(out, "http://127.0.0.1:1") {
		t.Fatalf("with a token, want HTTP (exit 3, naming the server), got exit %d: %s", code, out)
	}

	// Another uid: a copy of this test binary run as nobody, against the socket.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "portpatrol-as-nobody")
	copyFile(t, exe, bin, 0o755)
	asNobody := func(t *testing.T, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PORTPATROL_TEST_MAIN=1", "HOME=/nonexistent", "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		b, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("run as nobody: %v", err)
		}
		return string(b), cmd.ProcessState.ExitCode()
	}
	t.Run("mode 0600 keeps other users out", func(t *testing.T) {
		out, code := asNobody(t, "alerts", "--socket", sock)
		if code != 3 || !strings.Contains(out, "permission denied") || !strings.Contains(out, "unix:"+sock) {
			t.Fatalf("as nobody on the 0600 socket: exit %d, want 3 and permission denied at unix:%s:\n%s", code, sock, out)
		}
	})
	t.Run("the peer uid is checked", func(t *testing.T) {
		// Open the mode, as a careless chmod would: the uid check still refuses.
		if err := os.Chmod(sock, 0o666); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(sock, 0o600)
		out, code := asNobody(t, "silence", "add", "service=web", "--for", "1h", "-m", "x", "--socket", sock)
		if code != 3 || !strings.Contains(out, "admits only root and the daemon's own user") || !strings.Contains(out, "you are uid 65534") {
			t.Fatalf("as nobody through an open socket: exit %d, want 3 and a refusal naming the uid:\n%s", code, out)
		}
		out, code = asNobody(t, "alerts", "--socket", sock)
		if code != 3 || !strings.Contains(out, "you are uid 65534") {
			t.Fatalf("a read as nobody through an open socket: exit %d, want 3 and a refusal:\n%s", code, out)
		}
		// A token over the socket is checked as over HTTP.
		out, code = asNobody(t, "alerts", "--socket", sock, "--token", "not-a-token")
		if code != 3 || !strings.Contains(out, "unknown token") {
			t.Fatalf("as nobody with a bad token: exit %d, want 3 and unknown token:\n%s", code, out)
		}
	})
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
