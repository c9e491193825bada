// Package protocols benchmarks the CPU each protocol probe costs the prober, against
// the real servers on this machine (Redis, MariaDB, PostgreSQL, NATS, RabbitMQ,
// Mosquitto) and a loopback TCP listener, side by side in one run. Servers run in their
// own processes, so the figure is the prober's own cost: getrusage user+system time of
// this process divided by the probes run.
//
//	go test -run '^$' -bench . -benchtime 2000x ./bench/protocols
package protocols

import (
	"context"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func BenchmarkProtocols(b *testing.B) {
	env := new(probe.Env)
	b.Cleanup(func() {
		if err := env.Close(); err != nil {
			b.Errorf("close the probe environment: %v", err)
		}
	})
	targets := []struct{ name, target, addr string }{
		{"tcp", "tcp://127.0.0.1:6379", "127.0.0.1:6379"},
		{"tcp-full", "tcp://127.0.0.1:6379?handshake=full", "127.0.0.1:6379"},
		{"tcp-dialogue", "tcp://127.0.0.1:6379?send=PING&expect=PONG", "127.0.0.1:6379"},
		{"redis", "redis://127.0.0.1:6379", "127.0.0.1:6379"},
		{"mysql-handshake", "mysql://127.0.0.1:3306", "127.0.0.1:3306"},
		{"mysql-login", "mysql://root@127.0.0.1:3306", "127.0.0.1:3306"},
		{"postgres-startup", "postgres://127.0.0.1:5432?sslmode=disable", "127.0.0.1:5432"},
		{"postgres-login", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "127.0.0.1:5432"},
		{"nats", "nats://127.0.0.1:4222", "127.0.0.1:4222"},
		{"amqp", "amqp://127.0.0.1:5672", "127.0.0.1:5672"},
		{"mqtt", "mqtt://127.0.0.1:1883", "127.0.0.1:1883"},
	}
	for _, tt := range targets {
		b.Run(tt.name, func(b *testing.B) {
			if !reachable(tt.addr) {
				if os.Getenv("CI") == "true" {
					b.Fatalf("%s is not reachable", tt.addr)
				}
				b.Skipf("%s is not reachable; start it with scripts/services.sh", tt.addr)
			}
			t, err := patrol.ParseTarget(tt.target)
			if err != nil {
				b.Fatal(err)
			}
			p, err := probe.New(t, probe.Module{}, env)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if r := p.Run(ctx); !r.Up() {
				b.Fatalf("%s: %s %s", tt.target, r.Class, r.Error)
			}
			b.ResetTimer()
			cpu0 := cpuTime()
			failed := 0
			for range b.N {
				if r := p.Run(ctx); !r.Up() {
					failed++
				}
			}
			cpu := cpuTime() - cpu0
			b.StopTimer()
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/probe")
			if failed > 0 {
				b.Errorf("%d of %d probes failed", failed, b.N)
			}
		})
	}
}

// BenchmarkKernelFloor is the least a TCP connect check can cost: the same raw
// syscalls the tcp prober makes (socket, connect, connect, SO_LINGER 0, close) with
// nothing around them, against the same server. The tcp probe's figure minus this one
// is what portpatrol's own code costs.
func BenchmarkKernelFloor(b *testing.B) {
	const addr = "127.0.0.1:6379"
	if !reachable(addr) {
		if os.Getenv("CI") == "true" {
			b.Fatalf("%s is not reachable", addr)
		}
		b.Skipf("%s is not reachable; start it with scripts/services.sh", addr)
	}
	sa := &unix.SockaddrInet4{Port: 6379, Addr: [4]byte{127, 0, 0, 1}}
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
			b.Fatal(err)
		}
		_ = unix.Connect(fd, sa) // EISCONN once the loopback handshake is done
		_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		unix.Close(fd)
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/connect")
}
