package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// reserveSize is the space kept in the SQLite store's directory for a full disk: when
// writes fail, the reserve file is removed so that alerts and the outbox (a few
// kilobytes each) can still be written, and portpatrol pages about the disk instead
// of falling silent.
const reserveSize = 512 << 10

// historyHold is how many probe results the history writer keeps in memory while
// storage refuses them (a full disk, a database down), to write them when it takes
// them again: at 100 results a second, more than eight minutes.
const historyHold = 50000

// diskReserve is the reserve file beside a SQLite store; a nil one does nothing.
// Safe for concurrent use.
type diskReserve struct {
	path string
	mu   sync.Mutex
	held bool
	gone bool // released by release, not yet restored
}

// newDiskReserve makes the reserve beside the SQLite store dbName names ("sqlite:PATH"),
// or returns nil for another store or when it cannot be written.
func newDiskReserve(dbName string) *diskReserve {
	path, ok := strings.CutPrefix(dbName, "sqlite:")
	if !ok {
		return nil
	}
	r := &diskReserve{path: filepath.Join(filepath.Dir(path), "portpatrol.reserve")}
	r.restore()
	return r
}

// release removes the reserve, and reports whether it was there.
func (r *diskReserve) release() bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.held {
		return false
	}
	r.held, r.gone = false, true
	return os.Remove(r.path) == nil
}

// released reports whether the reserve was given up and is not back.
func (r *diskReserve) released() bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.held && r.gone
}

// restore writes the reserve again when there is room for it and twice as much
// besides, and reports whether it did.
func (r *diskReserve) restore() bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held {
		return false
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(r.path), &st); err != nil || st.Bavail*uint64(st.Bsize) < 3*reserveSize {
		return false
	}
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return false
	}
	_, err = f.Write(make([]byte, reserveSize))
	err = errors.Join(err, f.Sync(), f.Close())
	if err != nil {
		_ = os.Remove(r.path)
		return false
	}
	r.held, r.gone = true, false
	return true
}
