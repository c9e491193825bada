//go:build linux

package inventory

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const supported = true

// diagTimeout bounds one netlink receive when ctx has no deadline.
const diagTimeout = 5 * time.Second

// dump runs the kernel dumps reqs, calling fn for each socket. It asks netlink
// sock_diag and falls back to /proc/net when that is unavailable.
func (i *Inventory) dump(ctx context.Context, reqs []dumpReq, fn func(*Socket)) error {
	if !i.cfg.ProcNetOnly {
		err := dumpNetlink(ctx, reqs, fn)
		if err == nil || !fallbackErr(err) {
			return err
		}
	}
	return i.dumpProcNet(reqs, fn)
}

// fallbackErr reports whether err means sock_diag is missing here (no module, a
// sandbox that filters netlink) rather than a failed dump.
func fallbackErr(err error) bool {
	return errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.EAFNOSUPPORT) ||
		errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) ||
		errors.Is(err, unix.EOPNOTSUPP)
}

var recvBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func dumpNetlink(ctx context.Context, reqs []dumpReq, fn func(*Socket)) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return fmt.Errorf("sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("sock_diag bind: %w", err)
	}
	deadline := time.Now().Add(diagTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	tv := unix.NsecToTimeval(max(time.Until(deadline), time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}
	bp := recvBufs.Get().(*[]byte)
	defer recvBufs.Put(bp)
	buf := *bp
	kernel := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	var seq uint32
	// send sends one request and reads its answer to the end.
	send := func(req []byte, proto Proto) error {
		seq++
		binary.NativeEndian.PutUint32(req[8:], seq)
		if err := unix.Sendto(fd, req, 0, kernel); err != nil {
			return fmt.Errorf("sock_diag send: %w", err)
		}
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			m, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				if errors.Is(err, unix.EAGAIN) {
					return fmt.Errorf("sock_diag: no answer before %s", deadline.Format(time.RFC3339Nano))
				}
				return fmt.Errorf("sock_diag receive: %w", err)
			}
			done, err := ParseDiag(buf[:m], seq, proto, fn)
			if err != nil || done {
				return err
			}
		}
	}
	for n := 0; n < len(reqs); n++ {
		r := reqs[n]
		if r.proto == TCP && !r.ipv6 && n+1 < len(reqs) && sameBut6(r, reqs[n+1]) {
			err := send(filtered(tcpDiagRequest(0, r.states, r.info), r.sports), TCP)
			var nerr *NetlinkError
			if !errors.As(err, &nerr) {
				if err != nil {
					return err
				}
				n++ // both families answered
				continue
			}
			// A kernel without the older request: ask family by family. The error
			// arrives before any socket, so nothing has been reported twice.
		}
		family, proto := uint8(afInet), uint8(ipprotoTCP)
		if r.ipv6 {
			family = afInet6
		}
		if r.proto == UDP {
			proto = ipprotoUDP
		}
		if err := send(filtered(diagRequest(0, family, proto, r.states, r.info), r.sports), r.proto); err != nil {
			return err
		}
	}
	return nil
}

// sameBut6 reports whether b asks for the IPv6 sockets of a's IPv4 dump.
func sameBut6(a, b dumpReq) bool {
	return b.ipv6 && !a.ipv6 && a.proto == b.proto && a.states == b.states && a.info == b.info &&
		slices.Equal(a.sports, b.sports)
}

// filtered adds a port filter to req when ports is not nil.
func filtered(req []byte, ports []uint16) []byte {
	if ports == nil {
		return req
	}
	return withPortFilter(req, ports)
}

// dumpProcNet reads /proc/net/{tcp,tcp6,udp,udp6} for reqs.
func (i *Inventory) dumpProcNet(reqs []dumpReq, fn func(*Socket)) error {
	for _, r := range reqs {
		name := string(r.proto)
		if r.ipv6 {
			name += "6"
		}
		p := filepath.Join(i.cfg.ProcRoot, "net", name)
		b, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && r.ipv6 {
				continue // IPv6 disabled
			}
			return err
		}
		socks, err := ParseProcNet(b, r.proto)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for n := range socks {
			if r.states.Has(socks[n].State) {
				fn(&socks[n])
			}
		}
	}
	return nil
}

// locate finds the descriptor holding each inode: cached ones are checked with one
// readlink, inodes recently searched for in vain are skipped, and the rest are
// searched for in /proc/*/fd.
func (i *Inventory) locate(ctx context.Context, inodes []uint64) (map[uint64]fdRef, error) {
	found := make(map[uint64]fdRef, len(inodes))
	want := make(map[uint64]bool)
	now := i.cfg.Now()
	i.mu.Lock()
	cached := make(map[uint64]fdRef)
	for _, ino := range inodes {
		if r, ok := i.where[ino]; ok {
			cached[ino] = r
		} else if t, ok := i.missing[ino]; ok && now.Sub(t) < i.cfg.NegativeTTL {
			continue
		} else {
			want[ino] = true
		}
	}
	i.mu.Unlock()
	var link [64]byte
	for ino, r := range cached {
		p := filepath.Join(i.cfg.ProcRoot, strconv.Itoa(r.pid), "fd", strconv.Itoa(r.fd))
		n, err := unix.Readlink(p, link[:])
		if err == nil {
			if got, ok := socketInode(link[:n]); ok && got == ino {
				found[ino] = r
				continue
			}
		}
		want[ino] = true
	}
	if len(want) > 0 {
		if err := i.scan(ctx, want, found); err != nil {
			return nil, err
		}
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.where) > 4*len(inodes)+1024 {
		clear(i.where)
	}
	if len(i.missing) > 4*len(inodes)+1024 {
		clear(i.missing)
	}
	for ino := range want {
		if r, ok := found[ino]; ok {
			i.where[ino] = r
			delete(i.missing, ino)
		} else {
			delete(i.where, ino)
			i.missing[ino] = now
		}
	}
	return found, nil
}

// socketInode parses "socket:[12345]".
func socketInode(link []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(link, []byte("socket:["))
	if !ok || len(rest) < 2 || rest[len(rest)-1] != ']' {
		return 0, false
	}
	var v uint64
	for _, c := range rest[:len(rest)-1] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// scan walks /proc/*/fd with cfg.Workers goroutines, lowest PIDs first (so a pre-forked
// server's parent is found before its workers), until every inode of want is in found.
// A process is read in getdents batches; one holding many descriptors is shared, and
// idle workers take its next batches too, so a single process with thousands of
// connections does not leave the other cores idle while one worker reads it alone.
func (i *Inventory) scan(ctx context.Context, want map[uint64]bool, found map[uint64]fdRef) error {
	pids, err := listPIDs(i.cfg.ProcRoot)
	if err != nil {
		return err
	}
	s := &fdScan{procRoot: i.cfg.ProcRoot, pids: pids, want: want, found: found, remaining: len(want)}
	var fs unix.Statfs_t
	s.procfs = unix.Statfs(i.cfg.ProcRoot, &fs) == nil && fs.Type == unix.PROC_SUPER_MAGIC
	if s.procfs {
		// This process has descriptors open: a size of 0 for its own directory means a
		// kernel that does not count them (before 6.2), where 0 says nothing.
		var st unix.Stat_t
		s.counted = unix.Stat(filepath.Join(i.cfg.ProcRoot, "self", "fd"), &st) == nil && st.Size > 0
	}
	workers := min(i.cfg.Workers, max(1, len(pids)/8))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dents := make([]byte, scanBatch)
			for {
				d := s.acquire(ctx)
				if d == nil {
					return
				}
				for ctx.Err() == nil && s.batch(d, dents) {
				}
				s.release(d)
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// scanBatch is the getdents buffer of one worker: about 340 descriptors, a millisecond
// of readlinks, small enough that two workers share a large process evenly.
const scanBatch = 8 << 10

// probeBatch is how many descriptor numbers a worker probes at a time.
const probeBatch = 256

// fdScan is the state one scan shares between its workers.
type fdScan struct {
	procRoot string
	// procfs is true when procRoot is a procfs, whose /proc/PID/fd reports in its
	// st_size how many descriptors are open (Linux 6.2 and later; 0 before).
	procfs bool
	// counted is true when that count is known to be reported: a process whose count
	// is 0 (a kernel thread, or one that closed everything) is not read.
	counted bool
	pids    []int
	want    map[uint64]bool // read-only during the scan

	mu        sync.Mutex
	found     map[uint64]fdRef
	remaining int    // inodes of want not yet in found
	next      int    // index in pids of the next process to open
	shared    *fdDir // a process with more batches to read that idle workers join
}

// fdDir is one process's open /proc/PID/fd. Descriptors are mostly numbered densely
// from 0, so when the directory says how many are open (count), the numbers below
// count are probed directly with readlinkat, in ranges of probeBatch that workers
// share — getdents would cost a dentry lookup per descriptor on top of each readlink,
// a quarter of the scan — and getdents lists only the rest (from count on).
type fdDir struct {
	pid   int
	fd    int
	count int64        // descriptors open when it was opened; 0 if unknown
	next  atomic.Int64 // the first number of the next range to probe
	mu    sync.Mutex   // serialises getdents: each call returns the next batch
	// listing is set (under mu) once getdents has been positioned after count.
	listing bool
	done    atomic.Bool // the directory is read to its end
	// stop is set when the last wanted inode was found in this process: its other
	// batches are not read.
	stop atomic.Bool
	refs int // workers reading it; guarded by fdScan.mu
}

// acquire returns the process a worker reads next: the shared one when there is one,
// else the next PID while inodes are still wanted; nil when there is nothing left.
// The workers already in a process finish it even once nothing is wanted any more, so
// that an inode held by several processes goes to the lowest PID among those started.
func (s *fdScan) acquire(ctx context.Context) *fdDir {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.shared; d != nil {
		d.refs++
		return d
	}
	for s.remaining > 0 && s.next < len(s.pids) && ctx.Err() == nil {
		pid := s.pids[s.next]
		s.next++
		fd, err := openFdDir(s.procRoot, pid)
		if err != nil {
			continue // exited, or not ours to read
		}
		d := &fdDir{pid: pid, fd: fd, refs: 1}
		var st unix.Stat_t
		if s.procfs && unix.Fstat(fd, &st) == nil {
			d.count = st.Size
			if d.count == 0 && s.counted {
				unix.Close(fd)
				continue
			}
		}
		return d
	}
	return nil
}

// release ends a worker's reading of d, closing it after the last reader.
func (s *fdScan) release(d *fdDir) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shared == d {
		s.shared = nil
	}
	if d.refs--; d.refs == 0 {
		unix.Close(d.fd)
	}
}

// hit records that d's process holds ino at descriptor fd and reports whether it was
// the last inode wanted. Of several holders the lowest PID (then descriptor) is kept.
func (s *fdScan) hit(ino uint64, r fdRef) (last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.found[ino]; ok {
		if r.pid < old.pid || r.pid == old.pid && r.fd < old.fd {
			s.found[ino] = r
		}
		return false
	}
	s.found[ino] = r
	s.remaining--
	return s.remaining == 0
}

// share offers d's remaining batches to idle workers.
func (s *fdScan) share(d *fdDir) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The slot needs no reference of its own: every reader clears it on release,
	// under s.mu, before the last one closes d.
	if s.shared == nil && !d.done.Load() && !d.stop.Load() {
		s.shared = d
	}
}

// probe looks up descriptors lo to hi-1 of d, absent ones included, and reports
// whether d may have more.
func (s *fdScan) probe(d *fdDir, lo, hi int) bool {
	var name [24]byte
	var link [64]byte
	for fd := lo; fd < hi; fd++ {
		b := strconv.AppendInt(name[:0], int64(fd), 10)
		b = append(b, 0)
		m := readlinkat(d.fd, &b[0], link[:])
		if m <= 0 {
			continue
		}
		if ino, ok := socketInode(link[:m]); ok && s.want[ino] {
			if s.hit(ino, fdRef{pid: d.pid, fd: fd}) {
				d.stop.Store(true)
				return false
			}
		}
	}
	return true
}

// batch looks up d's next batch of descriptors — a range of numbers to probe, then
// getdents batches for those beyond — and reports whether d may have more. A batch is
// always read to its end, whatever other workers find, so that every descriptor below
// the last one read has been seen.
func (s *fdScan) batch(d *fdDir, dents []byte) bool {
	if d.stop.Load() {
		return false
	}
	if lo := d.next.Add(probeBatch) - probeBatch; lo < d.count {
		hi := min(lo+probeBatch, d.count)
		if hi < d.count {
			s.share(d)
		}
		return s.probe(d, int(lo), int(hi))
	}
	d.mu.Lock()
	if d.done.Load() {
		d.mu.Unlock()
		return false
	}
	if !d.listing {
		d.listing = true
		// A directory position of a procfs fd directory is the descriptor number
		// plus 2 (for "." and "..").
		if d.count > 0 {
			if _, err := unix.Seek(d.fd, d.count+2, io.SeekStart); err != nil {
				d.done.Store(true)
				d.mu.Unlock()
				return false
			}
		}
	}
	n, err := unix.Getdents(d.fd, dents)
	if err != nil || n <= 0 {
		d.done.Store(true)
		d.mu.Unlock()
		return false
	}
	d.mu.Unlock()
	if n > len(dents)/2 {
		s.share(d) // a full batch: there are likely more
	}
	var link [64]byte
	b := dents[:n]
	for len(b) >= 19 {
		// struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
		reclen := int(*(*uint16)(unsafe.Pointer(&b[16])))
		if reclen < 20 || reclen > len(b) {
			d.done.Store(true)
			return false
		}
		name := b[19:reclen]
		if name[0] != '.' {
			m := readlinkat(d.fd, &name[0], link[:])
			if m > 0 {
				if ino, ok := socketInode(link[:m]); ok && s.want[ino] {
					if s.hit(ino, fdRef{pid: d.pid, fd: atoiNUL(name)}) {
						d.stop.Store(true)
						return false
					}
				}
			}
		}
		b = b[reclen:]
	}
	return true
}

// listPIDs returns the numeric entries of procRoot, in ascending order.
func listPIDs(procRoot string) ([]int, error) {
	d, err := os.Open(procRoot)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", procRoot, err)
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if p, err := strconv.Atoi(n); err == nil && p > 0 {
			pids = append(pids, p)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// openFdDir opens procRoot/PID/fd for getdents and readlinkat.
func openFdDir(procRoot string, pid int) (int, error) {
	var buf [64]byte
	path := append(buf[:0], procRoot...)
	path = append(path, '/')
	path = strconv.AppendInt(path, int64(pid), 10)
	path = append(path, "/fd\x00"...)
	cwd := unix.AT_FDCWD
	fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(cwd), uintptr(unsafe.Pointer(&path[0])),
		uintptr(unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// readlinkat reads the link name (NUL-terminated, as getdents64 leaves it) relative to
// dfd into buf and returns its length, or -1.
func readlinkat(dfd int, name *byte, buf []byte) int {
	n, _, errno := unix.Syscall6(unix.SYS_READLINKAT, uintptr(dfd), uintptr(unsafe.Pointer(name)),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if errno != 0 {
		return -1
	}
	return int(n)
}

// atoiNUL parses the decimal number at the start of a NUL-terminated name.
func atoiNUL(b []byte) int {
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int(c-'0')
	}
	return v
}
