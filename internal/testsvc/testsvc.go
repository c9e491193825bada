// Package testsvc starts real servers — Redis, MariaDB, PostgreSQL — for tests, each
// in a t.TempDir on a free loopback port, stopped in t.Cleanup. It also checks for the
// servers a machine runs itself (Local) and holds connections open to fill a server
// up (HoldTCP, HoldPostgres).
//
// When a binary or a server is missing a test is skipped, except under CI=true, where
// it fails: CI must run every test.
package testsvc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a running test server. Its fields are read-only.
type Server struct {
	Host string // always "127.0.0.1"
	Port int
	Addr string // "127.0.0.1:PORT"
	Dir  string // data directory
	// LogFile is the server's output, shown when the server fails to start.
	LogFile string
}

// unavailable skips the test, or fails it under CI=true.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: every server must be present)", msg)
	}
	t.Skip(msg)
}

// Local returns addr when a server of that name listens there on this machine, and
// otherwise skips the test (fails it under CI=true).
func Local(t testing.TB, name, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		unavailable(t, "%s is not reachable at %s: %v", name, addr, err)
	}
	c.Close()
	return addr
}

// Binary returns the path of the first of paths (absolute paths or names looked up
// in $PATH; globs allowed) that exists, and otherwise skips the test (fails it under
// CI=true).
func Binary(t testing.TB, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if strings.ContainsAny(p, "*?[") {
			if m, _ := filepath.Glob(p); len(m) > 0 {
				return m[len(m)-1]
			}
			continue
		}
		if lp, err := exec.LookPath(p); err == nil {
			return lp
		}
	}
	unavailable(t, "none of %s is installed", strings.Join(paths, ", "))
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// HoldTCP opens n plain TCP connections to addr and keeps them open until the test
// ends. They count against a server's connection limit as soon as it accepts them.
func HoldTCP(t testing.TB, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("hold connection to %s: %v", addr, err)
		}
		conns = append(conns, c)
		t.Cleanup(func() { c.Close() })
	}
	return conns
}

// serviceUser returns the uid and gid of a system user to run a server as when the
// test runs as root (PostgreSQL refuses to run as root), or nil otherwise.
func serviceUser(t testing.TB, name string) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		unavailable(t, "running as root and there is no %q user to run the server as: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// dataDir makes a t.TempDir that the server's user can write.
func dataDir(t testing.TB, cred *syscall.Credential) string {
	t.Helper()
	dir := t.TempDir()
	if cred != nil {
		// t.TempDir's parent is private to root; let the server's user through.
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// run runs a setup command to completion, as cred when set.
func run(t testing.TB, cred *syscall.Credential, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// start runs a server in the background, logging to dir/server.log, and stops it
// (SIGTERM, then SIGKILL after 10s) when the test ends.
func start(t testing.TB, s *Server, cred *syscall.Credential, name string, args ...string) {
	t.Helper()
	s.LogFile = filepath.Join(s.Dir, "server.log")
	log, err := os.Create(s.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		_ = log.Chown(int(cred.Uid), int(cred.Gid))
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
}

// waitReady polls ready until it returns nil, failing the test with the server's
// log after 60 seconds.
func waitReady(t testing.TB, s *Server, ready func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = ready(ctx)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := os.ReadFile(s.LogFile)
	if len(out) > 4000 {
		out = out[len(out)-4000:]
	}
	t.Fatalf("server at %s not ready after 60s: %v\nlog %s:\n%s", s.Addr, err, s.LogFile, out)
}

func newServer(t testing.TB, dir string) *Server {
	port := FreePort(t)
	return &Server{Host: "127.0.0.1", Port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir}
}

// Redis starts redis-server with persistence off and the extra config args given as
// command-line options, e.g. Redis(t, "--maxclients", "1") or
// Redis(t, "--requirepass", "secret").
func Redis(t testing.TB, args ...string) *Server {
	t.Helper()
	bin := Binary(t, "redis-server")
	s := newServer(t, dataDir(t, nil))
	all := append([]string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.Dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no"}, args...)
	start(t, s, nil, bin, all...)
	waitReady(t, s, func(ctx context.Context) error {
		reply, err := exchange(ctx, s.Addr, []byte("*1\r\n$4\r\nPING\r\n"), 1)
		if err != nil {
			return err
		}
		// NOAUTH and max-clients errors mean the server is up and answering.
		if bytes.HasPrefix(reply, []byte("+PONG")) || bytes.HasPrefix(reply, []byte("-")) {
			return nil
		}
		return fmt.Errorf("PING answered %q", reply)
	})
	return s
}

// MariaDB starts mariadbd on a fresh data directory made by mariadb-install-db, with
// root@localhost allowed in with an empty password over TCP. extraCnf is appended to
// the [mysqld] section, e.g. "max_connections=1".
func MariaDB(t testing.TB, extraCnf string) *Server {
	t.Helper()
	bin := Binary(t, "/usr/sbin/mariadbd", "mariadbd", "mysqld")
	install := Binary(t, "mariadb-install-db", "mysql_install_db")
	cred := serviceUser(t, "mysql")
	s := newServer(t, dataDir(t, cred))
	data := filepath.Join(s.Dir, "data")
	cnf := filepath.Join(s.Dir, "my.cnf")
	conf := fmt.Sprintf(`[mysqld]
datadir=%s
socket=%s
pid-file=%s
port=%d
bind-address=127.0.0.1
skip-networking=0
log-error=%s
innodb_buffer_pool_size=16M
innodb_log_file_size=8M
performance_schema=OFF
%s
`, data, filepath.Join(s.Dir, "mysqld.sock"), filepath.Join(s.Dir, "mysqld.pid"), s.Port,
		filepath.Join(s.Dir, "error.log"), extraCnf)
	if err := os.WriteFile(cnf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	userArgs := []string{}
	if cred != nil {
		userArgs = append(userArgs, "--user=mysql")
	}
	run(t, nil, install, append([]string{"--defaults-file=" + cnf, "--auth-root-authentication-method=normal",
		"--skip-test-db"}, userArgs...)...)
	start(t, s, nil, bin, append([]string{"--defaults-file=" + cnf}, userArgs...)...)
	s.LogFile = filepath.Join(s.Dir, "error.log")
	waitReady(t, s, func(ctx context.Context) error {
		reply, err := exchange(ctx, s.Addr, nil, 5)
		if err != nil {
			return err
		}
		if reply[4] != 10 {
			return fmt.Errorf("greeting %q", reply)
		}
		return nil
	})
	return s
}

// PostgresOptions configure Postgres. The zero value is a server where every local
// TCP connection is trusted.
type PostgresOptions struct {
	// Password, when set, is the postgres user's password, and TCP logins must give it
	// with scram-sha-256.
	Password string
	// Settings are postgresql.conf parameters, e.g. {"max_connections": "3"}.
	Settings map[string]string
}

// Postgres runs initdb and starts postgres (as the postgres user when the test runs
// as root) with a database named "test".
func Postgres(t testing.TB, opts PostgresOptions) *Server {
	t.Helper()
	initdb := Binary(t, "/usr/lib/postgresql/*/bin/initdb", "initdb")
	bin := filepath.Join(filepath.Dir(initdb), "postgres")
	isReady := filepath.Join(filepath.Dir(initdb), "pg_isready")
	cred := serviceUser(t, "postgres")
	s := newServer(t, dataDir(t, cred))
	data := filepath.Join(s.Dir, "data")
	args := []string{"-D", data, "-U", "postgres", "--no-sync", "--auth-local=trust"}
	if opts.Password != "" {
		pw := filepath.Join(s.Dir, "pwfile")
		if err := os.WriteFile(pw, []byte(opts.Password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if cred != nil {
			_ = os.Chown(pw, int(cred.Uid), int(cred.Gid))
		}
		args = append(args, "--pwfile="+pw, "--auth-host=scram-sha-256")
	} else {
		args = append(args, "--auth-host=trust")
	}
	run(t, cred, initdb, args...)
	pargs := []string{"-D", data, "-c", "listen_addresses=127.0.0.1", "-c", "port=" + strconv.Itoa(s.Port),
		"-c", "unix_socket_directories=" + s.Dir, "-c", "fsync=off", "-c", "shared_buffers=16MB"}
	for k, v := range opts.Settings {
		pargs = append(pargs, "-c", k+"="+v)
	}
	start(t, s, cred, bin, pargs...)
	waitReady(t, s, func(ctx context.Context) error {
		out, err := exec.CommandContext(ctx, isReady, "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-t", "1").CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_isready: %v: %s", err, bytes.TrimSpace(out))
		}
		return nil
	})
	psql := filepath.Join(filepath.Dir(initdb), "psql")
	run(t, cred, psql, "-h", s.Dir, "-p", strconv.Itoa(s.Port), "-U", "postgres", "-d", "postgres", "-q", "-c", "CREATE DATABASE test")
	return s
}

// HoldPostgres opens n sessions to a server that trusts the user, each logged in and
// idle, until the test ends.
func HoldPostgres(t testing.TB, addr, user, database string, n int) {
	t.Helper()
	for i := range n {
		// A session that just ended may hold its slot for a moment: retry briefly.
		var err error
		for try := 0; try < 50; try++ {
			if err = holdPostgres(t, addr, user, database); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("hold session %d: %v", i, err)
		}
	}
}

func holdPostgres(t testing.TB, addr, user, database string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	body := []byte{0, 3, 0, 0}
	for _, kv := range []string{"user", user, "database", database} {
		body = append(append(body, kv...), 0)
	}
	body = append(body, 0)
	l := len(body) + 4
	msg := append([]byte{byte(l >> 24), byte(l >> 16), byte(l >> 8), byte(l)}, body...)
	if _, err := c.Write(msg); err != nil {
		c.Close()
		return err
	}
	if err := readUntilReady(c); err != nil {
		c.Close()
		return err
	}
	_ = c.SetDeadline(time.Time{})
	t.Cleanup(func() { c.Close() })
	return nil
}

// readUntilReady reads backend messages until ReadyForQuery.
func readUntilReady(c net.Conn) error {
	for {
		var h [5]byte
		if _, err := readFull(c, h[:]); err != nil {
			return err
		}
		n := int(h[1])<<24 | int(h[2])<<16 | int(h[3])<<8 | int(h[4])
		if n < 4 || n > 1<<20 {
			return fmt.Errorf("bad message length %d", n)
		}
		body := make([]byte, n-4)
		if _, err := readFull(c, body); err != nil {
			return err
		}
		switch h[0] {
		case 'Z':
			return nil
		case 'E':
			return fmt.Errorf("server error: %q", body)
		case 'R':
			if len(body) >= 4 && body[3] != 0 {
				return fmt.Errorf("server asks for authentication (method %d); HoldPostgres needs trust", body[3])
			}
		}
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// exchange connects, sends req (if any) and reads until at least min bytes arrived.
func exchange(ctx context.Context, addr string, req []byte, min int) ([]byte, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if len(req) > 0 {
		if _, err := c.Write(req); err != nil {
			return nil, err
		}
	}
	buf := make([]byte, 512)
	n, err := readFull(c, buf[:min])
	if err != nil {
		return nil, err
	}
	m, _ := c.Read(buf[n:])
	return buf[:n+m], nil
}
