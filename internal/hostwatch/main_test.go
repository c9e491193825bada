package hostwatch

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"go.uber.org/goleak"
)

// childEnv makes the test binary a listener process: it listens on the address the
// variable holds, prints the bound address, and holds every accepted connection until
// its peer closes it.
const (
	childEnv       = "HOSTWATCH_TEST_LISTEN"
	childNoFileEnv = "HOSTWATCH_TEST_NOFILE"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(childEnv); addr != "" {
		os.Exit(listenChild(addr))
	}
	goleak.VerifyTestMain(m)
}

func listenChild(addr string) int {
	if s := os.Getenv(childNoFileEnv); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
			lim.Cur = n
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go func() {
			io.Copy(io.Discard, c)
			c.Close()
		}()
	}
}

// child is a listener process started from the test binary.
type child struct {
	cmd  *exec.Cmd
	Addr netip.AddrPort
}

// startChild starts a listener process on addr ("127.0.0.1:0"); nofile, when not 0,
// is its open-files limit. It is killed at the end of the test.
func startChild(t *testing.T, addr string, nofile int) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+addr)
	if nofile > 0 {
		cmd.Env = append(cmd.Env, childNoFileEnv+"="+strconv.Itoa(nofile))
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd}
	t.Cleanup(c.kill)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child listener: %v", err)
	}
	if c.Addr, err = netip.ParseAddrPort(line[:len(line)-1]); err != nil {
		t.Fatalf("child listener address %q: %v", line, err)
	}
	return c
}

// kill sends SIGKILL and reaps the process; it returns once the process is gone.
func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// recorder is a Sink that keeps every event with the time it arrived.
type recorder struct {
	mu     sync.Mutex
	events []received
	signal chan struct{}
}

type received struct {
	patrol.Finding
	arrived time.Time
}

func newRecorder() *recorder { return &recorder{signal: make(chan struct{}, 1)} }

func (r *recorder) Observe(_ context.Context, e patrol.Finding) error {
	r.mu.Lock()
	r.events = append(r.events, received{e, time.Now()})
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
	return nil
}

// all returns the events so far.
func (r *recorder) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// find returns the first event from index from on that matches.
func (r *recorder) find(from int, match func(patrol.Finding) bool) (received, int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for n := from; n < len(r.events); n++ {
		if match(r.events[n].Finding) {
			return r.events[n], n, true
		}
	}
	return received{}, len(r.events), false
}

// wait waits up to d for an event that matches, from index from on.
func (r *recorder) wait(t *testing.T, d time.Duration, from int, what string, match func(patrol.Finding) bool) (received, int) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if e, n, ok := r.find(from, match); ok {
			return e, n
		}
		select {
		case <-r.signal:
		case <-deadline.C:
			t.Fatalf("no %s within %s; events: %+v", what, d, r.all())
		}
	}
}

// is matches an event by class, rule, subject and whether it is active.
func is(class, rule, subject string, active bool) func(patrol.Finding) bool {
	return func(e patrol.Finding) bool {
		return string(e.Class) == class && e.Rule == rule && e.Subject == subject && e.Active == active
	}
}
