package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serveSocket serves an admin-only handler of s on a real socket at path.
func serveSocket(t *testing.T, s *Server, path string) net.Listener {
	t.Helper()
	ln, err := ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ConnContext: SocketConnContext, Handler: s.RequireToken(RoleAdmin, func(w http.ResponseWriter, _ *http.Request, who Identity) {
		writeJSON(w, http.StatusOK, who)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln
}

func TestSocketAdmitsTheDaemonsOwnUserAsAdmin(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	serveSocket(t, New(Config{}), path)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat %s: %v, %v; want a socket of mode 0600", path, fi.Mode(), err)
	}
	var who Identity
	c := &Client{Socket: path}
	if err := c.Do(context.Background(), http.MethodPost, "/x", nil, &who); err != nil {
		t.Fatalf("admin request over the socket as uid %d: %v", os.Geteuid(), err)
	}
	if who.Role != RoleAdmin || !strings.HasSuffix(who.Name, "(local socket)") {
		t.Fatalf("got %+v, want the admin role and a name that says local socket", who)
	}
	// The same handler over TCP wants a token.
	tcp := &http.Server{Handler: New(Config{}).RequireToken(RoleAdmin, func(http.ResponseWriter, *http.Request, Identity) {})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go tcp.Serve(ln)
	defer tcp.Close()
	err = (&Client{Base: "http://" + ln.Addr().String()}).Do(context.Background(), http.MethodPost, "/x", nil, nil)
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("over TCP without a token: got %v, want 401", err)
	}
}

func TestListenSocketReplacesOnlyStaleSockets(t *testing.T) {
	dir := t.TempDir()
	t.Run("stale", func(t *testing.T) {
		path := filepath.Join(dir, "stale.sock")
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		ln.Close() // the file stays, nobody answers
		ln, err = ListenSocket(path)
		if err != nil {
			t.Fatalf("over a stale socket: %v", err)
		}
		ln.Close()
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("after Close: stat %v, want the socket removed", err)
		}
	})
	t.Run("in use", func(t *testing.T) {
		path := filepath.Join(dir, "live.sock")
		serveSocket(t, New(Config{}), path)
		if _, err := ListenSocket(path); !errors.Is(err, ErrSocketInUse) {
			t.Fatalf("over a live socket: got %v, want ErrSocketInUse", err)
		}
	})
	t.Run("not a socket", func(t *testing.T) {
		path := filepath.Join(dir, "file")
		if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ListenSocket(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("over a regular file: got %v, want a refusal", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "keep" {
			t.Fatal("the regular file was changed")
		}
	})
	t.Run("too long", func(t *testing.T) {
		path := filepath.Join(dir, strings.Repeat("x", 120))
		if _, err := ListenSocket(path); err == nil || !strings.Contains(err.Error(), "at most 107") {
			t.Fatalf("a 120-byte name: got %v, want the limit named", err)
		}
	})
}
