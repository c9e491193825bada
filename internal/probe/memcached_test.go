package probe

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

func TestMemcachedReal(t *testing.T) {
	s := testsvc.Memcached(t, "-c", "64")
	res := protoRun(t, "memcached://"+s.Addr, Module{})
	protoWant(t, res, patrol.ClassOK, "")
	if res.Details["version"] == "" {
		t.Errorf("no version in details %v", res.Details)
	}
	if res.Capacity == nil || res.Capacity.What != "connections" || res.Capacity.Limit != 64 || res.Capacity.Used < 1 {
		t.Fatalf("got capacity %+v, want connections used>=1 of limit 64", res.Capacity)
	}
	// Clients the server holds show in the reading: the five held and the
	// probe's own. The first reading is no baseline, since a connection that
	// has just closed (the readiness check's) may still be counted in it.
	testsvc.HoldTCP(t, s.Addr, 5)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res = protoRun(t, "memcached://"+s.Addr, Module{})
		protoWant(t, res, patrol.ClassOK, "")
		if res.Capacity != nil && res.Capacity.Used >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got capacity %+v with 5 clients held, want used >= 6 (5 and the probe)", res.Capacity)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMemcachedNotMemcached points the probe at real servers of something else.
func TestMemcachedNotMemcached(t *testing.T) {
	t.Run("garbage", func(t *testing.T) {
		addr := serveTCP(t, func(c net.Conn) {
			_, _ = bufio.NewReader(c).ReadString('\n')
			_, _ = io.WriteString(c, "\x16\x03\x01garbage that is not memcached\r\n")
		})
		res := protoRun(t, "memcached://"+addr, Module{})
		protoWant(t, res, patrol.ClassProtocol, "not a memcached stats line")
	})
	t.Run("http server", func(t *testing.T) {
		addr := serveTCP(t, func(c net.Conn) {
			_, _ = bufio.NewReader(c).ReadString('\n')
			_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		})
		res := protoRun(t, "memcached://"+addr, Module{})
		protoWant(t, res, patrol.ClassProtocol, "HTTP/1.1 400")
	})
	t.Run("redis", func(t *testing.T) {
		s := testsvc.Redis(t)
		res := protoRun(t, "memcached://"+s.Addr, Module{})
		protoWant(t, res, patrol.ClassProtocol, "not a memcached stats line")
	})
	t.Run("error line", func(t *testing.T) {
		addr := serveTCP(t, func(c net.Conn) {
			_, _ = bufio.NewReader(c).ReadString('\n')
			_, _ = io.WriteString(c, "ERROR\r\n")
		})
		res := protoRun(t, "memcached://"+addr, Module{})
		protoWant(t, res, patrol.ClassProtocol, "server replied with error: ERROR")
	})
	t.Run("stats without END", func(t *testing.T) {
		addr := serveTCP(t, func(c net.Conn) {
			_, _ = bufio.NewReader(c).ReadString('\n')
			_, _ = io.WriteString(c, "STAT pid 1\r\nSTAT version 1.6\r\n")
		})
		res := protoRun(t, "memcached://"+addr, Module{})
		protoWant(t, res, patrol.ClassProtocol, "closed the connection in the middle")
	})
	t.Run("nothing listens", func(t *testing.T) {
		res := protoRun(t, "memcached://"+closedTCPAddr(t), Module{})
		protoWant(t, res, patrol.ClassRefused, "")
	})
}

func TestMemcachedFull(t *testing.T) {
	addr := serveTCP(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "ERROR Too many open connections\r\n")
	})
	res := protoRun(t, "memcached://"+addr, Module{})
	protoWant(t, res, patrol.ClassOverloaded, "server is full")
	if !strings.Contains(res.Error, "-c") {
		t.Errorf("error %q does not say how to raise the limit", res.Error)
	}
}

func TestMemcachedTakesNoOptions(t *testing.T) {
	if err := buildErr(t, "memcached://127.0.0.1:11211?stats=slabs", Module{}); err == nil {
		t.Error("an unknown option was accepted")
	}
	tg, err := patrol.ParseTarget("memcached://cache")
	if err != nil || tg.Port != 11211 {
		t.Errorf("memcached://cache: got %+v, %v; want port 11211", tg, err)
	}
}

// TestMemcachedRealFull fills a real server's connection limit.
func TestMemcachedRealFull(t *testing.T) {
	// memcached needs a few descriptors of its own below -c: 32 is about the least
	// it starts with.
	s := testsvc.Memcached(t, "-c", "32")
	testsvc.HoldTCP(t, s.Addr, 40)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := protoRun(t, "memcached://"+s.Addr, Module{})
		if res.Class == patrol.ClassOverloaded {
			protoWant(t, res, patrol.ClassOverloaded, "Too many open connections")
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %s (%q) with the limit taken, want overloaded", res.Class, res.Error)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FuzzMemcachedStats feeds the stats reader anything; it must return a map or an
// error, never panic, and keep within its bounds.
func FuzzMemcachedStats(f *testing.F) {
	f.Add([]byte("STAT pid 1\r\nSTAT version 1.6.18\r\nSTAT curr_connections 2\r\nSTAT max_connections 1024\r\nEND\r\n"))
	f.Add([]byte("ERROR Too many open connections\r\n"))
	f.Add([]byte("SERVER_ERROR out of memory\r\n"))
	f.Add([]byte("END\r\n"))
	f.Add([]byte("STAT x\r\nSTAT\r\nEND\r\n"))
	f.Fuzz(func(t *testing.T, p []byte) {
		stats, err := readMemcachedStats(bufio.NewReader(bytes.NewReader(p)), nil)
		if err == nil && len(stats) > mcMaxStats {
			t.Fatalf("%d stats, over the %d bound", len(stats), mcMaxStats)
		}
		res := patrol.Result{Class: patrol.ClassOK}
		memcachedFail(&res, string(p))
		if res.Class == patrol.ClassOK {
			t.Fatal("an error line left the result ok")
		}
	})
}
