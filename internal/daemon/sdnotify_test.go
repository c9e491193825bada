package daemon

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listenNotify opens a unixgram socket as systemd does for a Type=notify service and
// points NOTIFY_SOCKET at it.
func listenNotify(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

// readNotify returns the next datagram, failing after a generous deadline.
func readNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no sd_notify message: %v", err)
	}
	return string(buf[:n])
}

func TestServeNotifiesSystemdReadyWatchdogStopping(t *testing.T) {
	c := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "200000") // ping every 100ms
	t.Setenv("WATCHDOG_PID", "")
	d, err := New(Config{Path: writeConfig(t, "targets: []\nhost_watch: {disabled: true}\n"), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	base, stop := serveDaemon(t, d)
	first := readNotify(t, c)
	if !strings.Contains(first, "READY=1") {
		t.Fatalf("first message %q, want READY=1", first)
	}
	// READY=1 comes only once the server answers.
	waitFor(t, base+"/-/ready", "ready")
	for range 2 {
		if got := readNotify(t, c); got != "WATCHDOG=1" {
			t.Fatalf("got %q, want WATCHDOG=1", got)
		}
	}
	stop()
	// Watchdog pings may still be queued; STOPPING=1 follows them.
	for {
		got := readNotify(t, c)
		if got == "STOPPING=1" {
			break
		}
		if got != "WATCHDOG=1" {
			t.Fatalf("got %q, want STOPPING=1", got)
		}
	}
}

func TestWatchdogIsForTheMainProcessOnly(t *testing.T) {
	listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", "1") // another process's watchdog, inherited
	if n := sdNotifierFromEnv(); n.addr == nil || n.watchdog != 0 {
		t.Errorf("got addr %v watchdog %v, want the socket and no watchdog", n.addr, n.watchdog)
	}
	t.Setenv("WATCHDOG_PID", "")
	if n := sdNotifierFromEnv(); n.watchdog != 200*time.Millisecond {
		t.Errorf("got watchdog %v, want 200ms", n.watchdog)
	}
	t.Setenv("NOTIFY_SOCKET", "@portpatrol-test")
	if n := sdNotifierFromEnv(); n.addr.Name != "\x00portpatrol-test" {
		t.Errorf("abstract socket: got %q", n.addr.Name)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if n := sdNotifierFromEnv(); n.addr != nil || n.send("READY=1") != nil {
		t.Errorf("without NOTIFY_SOCKET: got %v, want nothing sent", n.addr)
	}
}
