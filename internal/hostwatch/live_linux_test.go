package hostwatch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/sqlite"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// These tests watch the real host through the socket inventory, with listeners the
// tests create on 127.0.0.1 and ::1. Other listeners of the host may raise events of
// their own; the tests look only at their own subjects.

// runWatch runs a Watch on the live host until the returned stop is called (or the test
// ends).
func runWatch(t *testing.T, cfg Config) (w *Watch, rec *recorder, stop func()) {
	t.Helper()
	rec = newRecorder()
	cfg.Sink = rec
	w = New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: got %v, want context.Canceled", err)
		}
		if err := w.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	t.Cleanup(stop)
	return w, rec, stop
}

// waitTarget waits until target is in w's expected set.
func waitTarget(t *testing.T, w *Watch, target string, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if slices.Contains(targetsOf(w), target) {
			return
		}
		select {
		case <-w.Changes():
		case <-deadline.C:
			t.Fatalf("%s not expected within %s; targets: %v", target, d, targetsOf(w))
		}
	}
}

func TestKilledListenerPagesWithinOneSecond(t *testing.T) {
	c := startChild(t, "127.0.0.1:0", 0)
	target := "tcp://" + c.Addr.String()
	w, rec, _ := runWatch(t, Config{LearnAfter: 500 * time.Millisecond})
	waitTarget(t, w, target, 10*time.Second)
	if n := len(rec.all()); n > 0 {
		if _, _, ok := rec.find(0, func(e patrol.Finding) bool { return e.Subject == target }); ok {
			t.Fatalf("events before the kill: %+v", rec.all())
		}
	}

	killed := time.Now()
	c.kill()
	e, n := rec.wait(t, 5*time.Second, 0, "P0 for the killed listener", is("unreachable", "", target, true))
	lat := e.arrived.Sub(killed)
	t.Logf("P0 %s after SIGKILL of pid %d (interval %s, %d confirming dumps)", lat.Round(time.Millisecond), c.cmd.Process.Pid, w.cfg.Interval, w.cfg.ConfirmTicks)
	if lat > time.Second {
		t.Errorf("P0 took %s, want within 1s", lat)
	}
	if e.Severity != "P0" || e.Labels["process"] == "" {
		t.Errorf("P0 event: %+v", e)
	}
	t.Logf("%s — %s", e.Summary, e.Description)

	restarted := time.Now()
	startChild(t, c.Addr.String(), 0)
	e, _ = rec.wait(t, 5*time.Second, n+1, "resolve after a new listener", is("unreachable", "", target, false))
	t.Logf("resolved %s after the new child started; %s", e.arrived.Sub(restarted).Round(time.Millisecond), e.Description)
}

func TestVanishIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	addr := ln.Addr().String()
	target := "tcp://" + addr
	w, rec, _ := runWatch(t, Config{LearnAfter: 300 * time.Millisecond, Interval: 100 * time.Millisecond})
	waitTarget(t, w, target, 10*time.Second)
	ln.Close()
	_, n := rec.wait(t, 5*time.Second, 0, "P0 for the closed listener", is("unreachable", "", target, true))
	ln, err = net.Listen("tcp6", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rec.wait(t, 5*time.Second, n+1, "resolve", is("unreachable", "", target, false))
}

func TestShortLivedListenerNotPaged(t *testing.T) {
	w, rec, stop := runWatch(t, Config{LearnAfter: 2 * time.Second})
	var targets []string
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			continue
		}
		targets = append(targets, "tcp://"+ln.Addr().String())
		defer ln.Close()
		time.AfterFunc(time.Second, func() { ln.Close() })
	}
	time.Sleep(3 * time.Second)
	stop()
	for _, target := range targets {
		if e, _, ok := rec.find(0, func(e patrol.Finding) bool { return e.Subject == target }); ok {
			t.Errorf("a listener that lived 1s raised %+v", e.Finding)
		}
		if slices.Contains(targetsOf(w), target) {
			t.Errorf("%s learned", target)
		}
	}
	if w.ephemeral < uint64(len(targets)) {
		t.Errorf("ephemeral listeners: got %d, want at least %d", w.ephemeral, len(targets))
	}
}

func TestAcceptQueuePressure(t *testing.T) {
	fd, addr := testsvc.RawListener(t, 2)
	target := "tcp://" + addr.String()
	_, rec, _ := runWatch(t, Config{QueueTicks: 2, LearnAfter: time.Hour})

	// A backlog of 2 holds 3 connections; the fourth SYN is dropped (ListenOverflows).
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for n := range 4 {
		timeout := time.Second
		if n == 3 {
			timeout = 300 * time.Millisecond
		}
		if c, err := net.DialTimeout("tcp", addr.String(), timeout); err == nil {
			clients = append(clients, c)
		}
	}
	if len(clients) < 2 {
		t.Fatalf("only %d clients connected", len(clients))
	}
	e, n := rec.wait(t, 5*time.Second, 0, "P2 for the full accept queue", is("capacity", RuleAcceptQueue, target, true))
	if e.Severity != "P2" {
		t.Errorf("severity: got %s, want P2", e.Severity)
	}
	t.Logf("%d clients: %s — %s", len(clients), e.Summary, e.Description)

	for _, c := range clients {
		c.Close()
	}
	clients = nil
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for {
		nfd, _, err := unix.Accept(fd)
		if err != nil {
			break
		}
		accepted++
		unix.Close(nfd)
	}
	e, _ = rec.wait(t, 5*time.Second, n+1, "resolve after accepting", is("capacity", RuleAcceptQueue, target, false))
	t.Logf("accepted %d: %s", accepted, e.Summary)
}

func TestOpenFilesNearLimit(t *testing.T) {
	// limit-8 clients are 56 established connections, over the 80 % line (51 of 64) on
	// the kernel's count alone, whatever number of descriptors the child's runtime
	// keeps besides; connections it cannot accept wait in its accept queue.
	const limit = 64
	c := startChild(t, "127.0.0.1:0", limit)
	target := "tcp://" + c.Addr.String()
	_, rec, _ := runWatch(t, Config{DetailInterval: 100 * time.Millisecond, LearnAfter: time.Hour})

	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range limit - 8 {
		cl, err := net.Dial("tcp", c.Addr.String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cl)
	}
	t.Cleanup(func() {
		if t.Failed() {
			fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", c.cmd.Process.Pid))
			t.Logf("child pid %d holds %d descriptors (%v) with %d clients connected", c.cmd.Process.Pid, len(fds), err, len(clients))
		}
	})
	e, n := rec.wait(t, 10*time.Second, 0, "P2 for open files", is("capacity", RuleOpenFiles, target, true))
	t.Logf("%s — %s", e.Summary, e.Description)
	for _, cl := range clients {
		cl.Close()
	}
	clients = nil
	rec.wait(t, 10*time.Second, n+1, "resolve after the clients left", is("capacity", RuleOpenFiles, target, false))
}

func TestRestartWithSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db1, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db1.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	target := "tcp://" + ln.Addr().String()
	w1, _, stop := runWatch(t, Config{Store: db1, LearnAfter: 300 * time.Millisecond})
	waitTarget(t, w1, target, 10*time.Second)
	// Learned values are stored after the tick that learns them; wait for the row.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := db1.GetLearned(ctx, Namespace, target); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not stored", target)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	db1.Close()
	ln.Close()

	db2, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db2.Close() })
	w2, rec, _ := runWatch(t, Config{Store: db2, LearnAfter: time.Hour})
	waitTarget(t, w2, target, 5*time.Second)
	started := time.Now()
	e, _ := rec.wait(t, 5*time.Second, 0, "P0 for the listener gone over the restart", is("unreachable", "", target, true))
	t.Logf("P0 %s after the restarted watch started: %s", e.arrived.Sub(started).Round(time.Millisecond), e.Description)
}

// TestFateOfRealProcesses reads real processes through /proc: a killed child has
// exited (the test process, the same executable in the same cgroup, started before
// the listener went, is not its restart); a new child of the same executable started
// after the listener went is its restart.
func TestFateOfRealProcesses(t *testing.T) {
	c := startChild(t, "127.0.0.1:0", 0)
	bind := c.Addr.String()
	w, _, _ := runWatch(t, Config{LearnAfter: 300 * time.Millisecond})
	waitTarget(t, w, "tcp://"+bind, 10*time.Second)
	c.kill()
	fate := func(want Fate) Listener {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			for _, l := range w.List() {
				if l.Bind.String() == bind && l.Fate == want {
					return l
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never had fate %s: %+v", bind, want, w.List())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	l := fate(FateExited)
	if l.State != StateGone || l.ForgetAt.Sub(l.GoneSince) < 23*time.Hour {
		t.Errorf("killed child's listener: got %+v, want gone and retired about a day later", l)
	}
	// A restart: the same program again, listening elsewhere for now. The watch looks
	// again at its next detail dump.
	startChild(t, "127.0.0.1:0", 0)
	l = fate(FateRestarting)
	if !l.ForgetAt.IsZero() {
		t.Errorf("a restarting listener is to be retired at %s", l.ForgetAt)
	}
}
