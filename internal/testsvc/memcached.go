package testsvc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
)

// Memcached starts memcached on a free loopback port, TCP only, with the extra
// command-line args given, e.g. Memcached(t, "-c", "4"). As root it runs as the
// memcache user the Debian package creates (memcached refuses root without -u).
func Memcached(t testing.TB, args ...string) *Server {
	t.Helper()
	bin := Binary(t, "/usr/bin/memcached", "memcached")
	s := newServer(t, dataDir(t, nil))
	all := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "0", "-m", "16"}
	if os.Geteuid() == 0 {
		serviceUser(t, "memcache") // skips, or fails under CI, without the user
		all = append(all, "-u", "memcache")
	}
	start(t, s, nil, bin, append(all, args...)...)
	waitReady(t, s, func(ctx context.Context) error {
		reply, err := exchange(ctx, s.Addr, []byte("version\r\n"), 8)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(reply, []byte("VERSION ")) || bytes.HasPrefix(reply, []byte("ERROR")) {
			return nil
		}
		return fmt.Errorf("version answered %q", reply)
	})
	return s
}
