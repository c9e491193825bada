package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// SocketName is the local socket's file name in the daemon's data directory.
const SocketName = "portpatrol.sock"

// MaxSocketPath is the longest path a Unix socket can be bound to on Linux (the size
// of sockaddr_un.sun_path less its terminating NUL).
const MaxSocketPath = 107

// ErrSocketInUse is returned by ListenSocket when another process answers on the path.
var ErrSocketInUse = errors.New("another process serves on this socket")

// Peer is the process at the other end of a local socket connection, as the kernel
// reports it (SO_PEERCRED): it cannot be forged by the client.
type Peer struct {
	UID, GID uint32
	PID      int32
}

// peerKey keys the Peer of a socket connection in a request's context.
type peerKey struct{}

// peerResult is what SocketConnContext found: the peer, or why it is unknown.
type peerResult struct {
	peer Peer
	err  error
}

// SocketConnContext is an http.Server ConnContext for a server on a local socket: it
// records the connection's peer credentials, by which the API then authorises each
// request (see SocketAdmits). Do not use it on a TCP server.
func SocketConnContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return context.WithValue(ctx, peerKey{}, peerResult{err: fmt.Errorf("not a Unix socket connection (%T)", c)})
	}
	p, err := peerCred(uc)
	return context.WithValue(ctx, peerKey{}, peerResult{peer: p, err: err})
}

// socketPeer returns the peer of a request that came in on the local socket; ok is
// false for any other request.
func socketPeer(r *http.Request) (peerResult, bool) {
	p, ok := r.Context().Value(peerKey{}).(peerResult)
	return p, ok
}

// SocketAdmits reports whether a peer with this uid is the administrator of the local
// socket: root, or the user the daemon runs as.
func SocketAdmits(uid uint32) bool { return uid == 0 || uid == uint32(os.Geteuid()) }

// socketIdentity authorises a request that came in on the local socket by its peer's
// uid. A peer it does not admit is refused unless the request carries a bearer token,
// which is then checked as on TCP (ok false).
func socketIdentity(r *http.Request, p peerResult, need Role) (id Identity, ok bool, err error) {
	if p.err != nil {
		return Identity{}, true, &authError{status: http.StatusForbidden, need: need,
			msg: "the local socket could not read the peer's credentials: " + p.err.Error()}
	}
	if SocketAdmits(p.peer.UID) {
		return Identity{Name: userName(p.peer.UID) + " (local socket)", Role: RoleAdmin}, true, nil
	}
	if r.Header.Get("Authorization") != "" {
		return Identity{}, false, nil
	}
	return Identity{}, true, &authError{status: http.StatusForbidden, need: need,
		msg: fmt.Sprintf("the local socket admits only root and the daemon's own user (uid %d); you are uid %d: use a token (--token or PORTPATROL_TOKEN) or the HTTP address instead",
			os.Geteuid(), p.peer.UID)}
}

// userName is uid's login name, or "uid N" when it has none.
func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid " + id
}

// socketListener removes its socket file when it is closed.
type socketListener struct {
	*net.UnixListener
	path string
}

func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// ListenSocket listens on a Unix socket at path that only its owner may connect to
// (mode 0600 from the moment it has its name: it is bound under a temporary name,
// restricted, then renamed). A socket file left behind by a process that is gone is
// replaced; one that still answers is not (ErrSocketInUse), nor is a file that is not
// a socket. Closing the listener removes the file.
func ListenSocket(path string) (net.Listener, error) {
	if len(path) > MaxSocketPath {
		return nil, fmt.Errorf("socket %s: the path is %d bytes, a Unix socket's may have at most %d", path, len(path), MaxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("socket %s: the file exists and is not a socket; remove it or set api.socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s: %w", path, ErrSocketInUse)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("socket %s: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("socket %s: remove the stale socket: %w", path, err)
		}
	}
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%d", filepath.Base(path), os.Getpid()))
	if len(tmp) > MaxSocketPath {
		tmp = path // no room for a temporary name: chmod right after binding
	}
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if tmp != path {
		if err := os.Rename(tmp, path); err != nil {
			return fail(err)
		}
	}
	return &socketListener{UnixListener: ln, path: path}, nil
}
