// Package inventory tells who listens where on the local host: TCP and UDP sockets
// (IPv4 and IPv6) read from the kernel through netlink sock_diag, with /proc/net as a
// fallback; accept queues against backlogs; established connections and traffic per
// listener; the owning processes found through /proc/PID/fd; their resources; and the
// kernel's listen-overflow counters.
//
// It asks the kernel only for what a caller wants: a LISTEN-only dump when listing
// listeners, established sockets only when counting them, tcp_info only for traffic,
// and a /proc scan that stops as soon as every wanted socket has an owner. An Inventory
// caches socket owners between calls and revalidates them with one readlink each, so a
// watch loop calling Listeners every few hundred milliseconds stays cheap.
//
// It works on Linux; elsewhere every query returns an error wrapping ErrUnsupported.
package inventory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrUnsupported is wrapped by every query on systems other than Linux.
var ErrUnsupported = errors.New("socket inventory is not supported on " + runtime.GOOS)

// Socket is one socket as the kernel reports it.
type Socket struct {
	Proto Proto `json:"proto"`
	// IPv6 is true for AF_INET6 sockets; a dual-stack listener on [::] is one of them.
	IPv6 bool `json:"ipv6"`
	// V6Only is true for an IPv6 socket that does not take IPv4 (IPV6_V6ONLY). A
	// listener on [::] without it also accepts IPv4 connections. Known only through
	// netlink; /proc/net does not say.
	V6Only bool           `json:"v6only,omitempty"`
	State  State          `json:"state"`
	Local  netip.AddrPort `json:"local"`
	Remote netip.AddrPort `json:"remote"`
	// Interface is the index of the device the socket is bound to (SO_BINDTODEVICE), or 0.
	Interface int `json:"interface,omitempty"`
	// Inode identifies the socket; /proc/PID/fd links read "socket:[Inode]". It is 0 for
	// TIME-WAIT and SYN-RECV entries, which no process holds.
	Inode uint64 `json:"inode"`
	// UID is the user that created the socket.
	UID uint32 `json:"uid"`
	// RecvQ and SendQ are the kernel's queue figures. For a TCP listener RecvQ is the
	// accept queue (connections waiting for accept()) and SendQ the backlog it may hold
	// (0 when read from /proc/net, which does not carry it).
	RecvQ uint32 `json:"recv_q"`
	SendQ uint32 `json:"send_q"`
	// Established counts a listener's established connections; set only when asked
	// (Filter.Established).
	Established int `json:"established,omitempty"`
	// Clients lists the distinct remote addresses of a listener's established
	// connections (at most MaxClients), set with Established.
	Clients *[]netip.Addr `json:"clients,omitempty"`
	// BytesIn and BytesOut are tcp_info's bytes_received and bytes_acked: for a
	// connection its own, for a listener the sum over its established connections. Set
	// only when asked (Filter.Traffic) and read through netlink.
	BytesIn  uint64 `json:"bytes_in,omitempty"`
	BytesOut uint64 `json:"bytes_out,omitempty"`
	// Owner is the process holding the socket, when asked (Filter.Owners) and found.
	Owner *Owner `json:"owner,omitempty"`
}

// Network returns "tcp", "tcp6", "udp" or "udp6".
func (s *Socket) Network() string {
	if s.IPv6 {
		return string(s.Proto) + "6"
	}
	return string(s.Proto)
}

// Listening reports whether the socket waits for peers: a TCP listener or an
// unconnected UDP socket.
func (s *Socket) Listening() bool {
	return s.Proto == TCP && s.State == StateListen || s.Proto == UDP && s.State == StateClose
}

// Covers reports whether a listening socket takes connections to addr: it is bound to
// addr itself, or to the unspecified address of addr's family (an IPv6 one without
// V6Only takes IPv4 too).
func (s *Socket) Covers(addr netip.Addr) bool {
	la := s.Local.Addr()
	addr = addr.Unmap()
	if la.Unmap() == addr {
		return true
	}
	if !la.IsUnspecified() {
		return false
	}
	if addr.Is4() {
		return !s.IPv6 || !s.V6Only
	}
	return s.IPv6
}

// QueueFull reports whether a TCP listener's accept queue has reached its backlog:
// new connections are being dropped (the kernel counts them in ListenOverflows).
func (s *Socket) QueueFull() bool {
	return s.Proto == TCP && s.State == StateListen && s.SendQ > 0 && s.RecvQ >= s.SendQ
}

// Owner is a process holding a socket.
type Owner struct {
	PID int `json:"pid"`
	// FD is the descriptor number under which the process holds the socket.
	FD int `json:"fd"`
	// Command is the process's comm (at most 15 bytes, as ps and ss show it).
	Command string    `json:"command"`
	Cmdline []string  `json:"cmdline,omitempty"`
	UID     uint32    `json:"uid"`
	User    string    `json:"user"`
	Start   time.Time `json:"start"`
	// Cgroup is the process's cgroup path; Container the container id found in it.
	Cgroup    string `json:"cgroup,omitempty"`
	Container string `json:"container,omitempty"`
}

// Resources is what a process uses.
type Resources struct {
	// CPU is the user plus system time the process has used since it started.
	CPU time.Duration `json:"cpu"`
	// RSS is its resident memory in bytes.
	RSS int64 `json:"rss_bytes"`
	// OpenFiles counts its file descriptors; MaxOpenFiles is its soft RLIMIT_NOFILE
	// (ulimit -n), Unlimited when there is none.
	OpenFiles    int   `json:"open_files"`
	MaxOpenFiles int64 `json:"max_open_files"`
	// Threads is its number of threads.
	Threads int `json:"threads"`
}

// Counters are the kernel's listen-queue counters from /proc/net/netstat (TcpExt),
// cumulative since boot for the network namespace.
type Counters struct {
	// ListenOverflows counts connections dropped because an accept queue was full.
	ListenOverflows int64 `json:"listen_overflows"`
	// ListenDrops counts every connection a listener dropped, overflows included.
	ListenDrops int64 `json:"listen_drops"`
}

// Filter selects sockets and says what to find out about them. The zero value selects
// every TCP and UDP socket, IPv4 and IPv6, and adds nothing.
type Filter struct {
	// Proto limits to TCP or UDP; "" means both.
	Proto Proto
	// States limits to these states; 0 means all. Listeners ignores it.
	States States
	// Port limits to this local port; 0 means any.
	Port uint16
	// Addr limits to this local address; the zero Addr means any.
	Addr netip.Addr
	// Owners finds the process holding each socket.
	Owners bool
	// Established counts each TCP listener's established connections (one extra dump
	// of established sockets).
	Established bool
	// Traffic sums tcp_info bytes in and out: per connection, and for listeners over
	// their established connections (implies Established for listeners).
	Traffic bool
}

func (f *Filter) match(s *Socket) bool {
	if f.Port != 0 && s.Local.Port() != f.Port {
		return false
	}
	if f.Addr.IsValid() && s.Local.Addr().Unmap() != f.Addr.Unmap() {
		return false
	}
	return true
}

// Config configures an Inventory. The zero value reads the live system.
type Config struct {
	// ProcRoot is where procfs is mounted; "" means /proc.
	ProcRoot string
	// ProcNetOnly reads the /proc/net tables instead of asking netlink (the fallback
	// that is otherwise used only when sock_diag is unavailable).
	ProcNetOnly bool
	// Workers is how many goroutines scan /proc for owners; 0 means GOMAXPROCS.
	// They share the descriptors of a process that has many, so one process holding
	// thousands of connections keeps every core busy.
	Workers int
	// NegativeTTL is how long a socket whose owner was not found (held by a process in
	// another PID namespace, or hidden by permissions) is not searched for again; 0
	// means 10s.
	NegativeTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// LookupUser names a uid; nil means os/user (with a cache).
	LookupUser func(uid uint32) string
}

// Inventory reads the local host's sockets and their owners. Create it with New and
// keep it: it caches owners between calls. It is safe for concurrent use.
type Inventory struct {
	cfg Config

	mu       sync.Mutex
	where    map[uint64]fdRef     // socket inode → the descriptor that held it last
	missing  map[uint64]time.Time // inodes searched for in vain, and when
	procs    map[int]procEntry    // pid → owner details, valid while start time matches
	users    map[uint32]string
	bootTime int64
}

// fdRef locates one file descriptor.
type fdRef struct{ pid, fd int }

type procEntry struct {
	start uint64
	owner Owner
}

// New returns an Inventory for cfg.
func New(cfg Config) *Inventory {
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Inventory{
		cfg:     cfg,
		where:   make(map[uint64]fdRef),
		missing: make(map[uint64]time.Time),
		procs:   make(map[int]procEntry),
		users:   make(map[uint32]string),
	}
}

// dumpReq is one kernel dump: a protocol and family in some states.
type dumpReq struct {
	proto  Proto
	ipv6   bool
	states States
	info   bool
	// sports, when not nil, asks netlink for only the sockets with one of these local
	// ports. It spares the kernel filling and the caller parsing the others; it is a
	// hint, and callers still check what they get.
	sports []uint16
}

func (f *Filter) protos() []Proto {
	if f.Proto == "" {
		return []Proto{TCP, UDP}
	}
	return []Proto{f.Proto}
}

func (f *Filter) families() []bool {
	switch {
	case !f.Addr.IsValid():
		return []bool{false, true}
	case f.Addr.Is4():
		// An IPv4 address is also reachable through dual-stack IPv6 sockets.
		return []bool{false, true}
	}
	return []bool{true}
}

// Listeners returns the sockets waiting for peers: TCP listeners and unconnected UDP
// sockets, filtered and enriched as f asks (f.States is ignored). They are sorted by
// protocol, port and address.
func (i *Inventory) Listeners(ctx context.Context, f Filter) ([]Socket, error) {
	var reqs []dumpReq
	for _, p := range f.protos() {
		st := StatesOf(StateListen)
		if p == UDP {
			st = StatesOf(StateClose)
		}
		for _, v6 := range f.families() {
			reqs = append(reqs, dumpReq{proto: p, ipv6: v6, states: st})
		}
	}
	return i.query(ctx, f, reqs)
}

// Sockets returns every socket f selects, enriched as f asks, sorted by protocol,
// port, address and remote address.
func (i *Inventory) Sockets(ctx context.Context, f Filter) ([]Socket, error) {
	var reqs []dumpReq
	for _, p := range f.protos() {
		for _, v6 := range f.families() {
			reqs = append(reqs, dumpReq{proto: p, ipv6: v6, states: f.States, info: f.Traffic && p == TCP})
		}
	}
	return i.query(ctx, f, reqs)
}

func (i *Inventory) query(ctx context.Context, f Filter, reqs []dumpReq) ([]Socket, error) {
	var out []Socket
	err := i.dump(ctx, reqs, func(s *Socket) {
		if f.match(s) {
			out = append(out, *s)
		}
	})
	if err != nil {
		return nil, err
	}
	// Counting connections is mostly the kernel walking its established hash, and
	// finding owners mostly readlink in /proc: on two cores they overlap. They set
	// different fields of out.
	var estab error
	var wg sync.WaitGroup
	if f.Established || f.Traffic {
		wg.Go(func() { estab = i.countEstablished(ctx, f, out) })
	}
	var owners error
	if f.Owners {
		owners = i.attachOwners(ctx, out)
	}
	wg.Wait()
	if err := cmp.Or(estab, owners); err != nil {
		return nil, err
	}
	sortSockets(out)
	return out, nil
}

// listenKey indexes listeners by what an accepted connection shares with its listener:
// protocol family and local port.
type listenKey struct {
	ipv6 bool
	port uint16
}

// MaxClients bounds Socket.Clients: a listener's distinct client addresses kept from
// one dump.
const MaxClients = 4096

// countEstablished sets Established (and with f.Traffic the byte counts) of the TCP
// listeners in socks from one dump of established TCP sockets. An accepted connection
// has its listener's family and local port, and its local address is the listener's
// unless the listener is bound to the unspecified address.
func (i *Inventory) countEstablished(ctx context.Context, f Filter, socks []Socket) error {
	idx := make(map[listenKey][]int)
	for n := range socks {
		s := &socks[n]
		if s.Proto == TCP && s.State == StateListen {
			k := listenKey{s.IPv6, s.Local.Port()}
			idx[k] = append(idx[k], n)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	// Only accepted connections count, and they have their listener's port: the
	// kernel can leave out the client ends of connections, half of them on loopback.
	var ports []uint16
	for k := range idx {
		ports = append(ports, k.port)
	}
	slices.Sort(ports)
	ports = slices.Compact(ports)
	if len(ports) > maxPortFilter {
		ports = nil
	}
	var reqs []dumpReq
	for _, v6 := range []bool{false, true} {
		reqs = append(reqs, dumpReq{proto: TCP, ipv6: v6, states: StatesOf(StateEstablished), info: f.Traffic, sports: ports})
	}
	seen := map[int]map[netip.Addr]bool{}
	return i.dump(ctx, reqs, func(c *Socket) {
		cand := idx[listenKey{c.IPv6, c.Local.Port()}]
		best := -1
		for _, n := range cand {
			la := socks[n].Local.Addr()
			if la == c.Local.Addr() {
				best = n
				break
			}
			if la.IsUnspecified() {
				best = n
			}
		}
		if best >= 0 {
			l := &socks[best]
			l.Established++
			if seen[best] == nil {
				seen[best] = map[netip.Addr]bool{}
				l.Clients = new([]netip.Addr)
			}
			if ra := c.Remote.Addr(); !seen[best][ra] && len(seen[best]) < MaxClients {
				seen[best][ra] = true
				*l.Clients = append(*l.Clients, ra)
			}
			l.BytesIn += c.BytesIn
			l.BytesOut += c.BytesOut
		}
	})
}

func sortSockets(s []Socket) {
	slices.SortFunc(s, func(a, b Socket) int {
		return cmp.Or(
			cmp.Compare(a.Proto, b.Proto),
			cmp.Compare(a.Local.Port(), b.Local.Port()),
			a.Local.Addr().Compare(b.Local.Addr()),
			cmp.Compare(a.State, b.State),
			a.Remote.Compare(b.Remote),
			cmp.Compare(a.Inode, b.Inode),
		)
	})
}

// attachOwners sets Owner on the sockets of socks whose process it finds.
func (i *Inventory) attachOwners(ctx context.Context, socks []Socket) error {
	inodes := make([]uint64, 0, len(socks))
	for n := range socks {
		if socks[n].Inode != 0 {
			inodes = append(inodes, socks[n].Inode)
		}
	}
	owners, err := i.Owners(ctx, inodes)
	if err != nil {
		return err
	}
	for n := range socks {
		if o, ok := owners[socks[n].Inode]; ok {
			socks[n].Owner = &o
		}
	}
	return nil
}

// Owners finds the processes holding the sockets with these inodes. Inodes no process
// holds (or that the caller may not see) are absent from the result. Cached owners are
// revalidated with one readlink; the rest are searched for in /proc/*/fd, in parallel,
// stopping as soon as all are found.
func (i *Inventory) Owners(ctx context.Context, inodes []uint64) (map[uint64]Owner, error) {
	refs, err := i.locate(ctx, inodes)
	if err != nil {
		return nil, err
	}
	out := make(map[uint64]Owner, len(refs))
	procs := make(map[int]*Owner)
	for ino, r := range refs {
		o, ok := procs[r.pid]
		if !ok {
			if po, err := i.owner(r.pid); err == nil {
				o = &po
			}
			procs[r.pid] = o // nil: the process exited meanwhile
		}
		if o != nil {
			oo := *o
			oo.FD = r.fd
			out[ino] = oo
		}
	}
	return out, nil
}

// owner returns the details of process pid, from the cache while its start time is
// unchanged.
func (i *Inventory) owner(pid int) (Owner, error) {
	dir := filepath.Join(i.cfg.ProcRoot, strconv.Itoa(pid))
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return Owner{}, err
	}
	st, err := parseStat(b)
	if err != nil {
		return Owner{}, fmt.Errorf("%s/stat: %w", dir, err)
	}
	i.mu.Lock()
	e, ok := i.procs[pid]
	i.mu.Unlock()
	if ok && e.start == st.StartTime {
		return e.owner, nil
	}
	o := Owner{PID: pid, Command: st.Comm, Start: i.startTime(st.StartTime)}
	if b, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		if uid, ok := parseStatusUID(b); ok {
			o.UID = uid
			o.User = i.userName(uid)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		o.Cmdline = splitCmdline(b)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		o.Cgroup, o.Container = parseCgroup(b)
	}
	i.mu.Lock()
	if len(i.procs) > 4096 {
		clear(i.procs)
	}
	i.procs[pid] = procEntry{start: st.StartTime, owner: o}
	i.mu.Unlock()
	return o, nil
}

func splitCmdline(b []byte) []string {
	var out []string
	start := 0
	for n, c := range b {
		if c == 0 {
			out = append(out, string(b[start:n]))
			start = n + 1
		}
	}
	if start < len(b) {
		out = append(out, string(b[start:]))
	}
	// A process that rewrites its title (redis, postgres) pads it with spaces.
	if n := len(out); n > 0 {
		out[n-1] = strings.TrimRight(out[n-1], " ")
	}
	return out
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; it is 100 on every Linux
// architecture Go supports.
const clockTicks = 100

func (i *Inventory) startTime(ticks uint64) time.Time {
	i.mu.Lock()
	bt := i.bootTime
	i.mu.Unlock()
	if bt == 0 {
		b, err := os.ReadFile(filepath.Join(i.cfg.ProcRoot, "stat"))
		if err != nil {
			return time.Time{}
		}
		var ok bool
		if bt, ok = parseBootTime(b); !ok {
			return time.Time{}
		}
		i.mu.Lock()
		i.bootTime = bt
		i.mu.Unlock()
	}
	return time.Unix(bt, 0).Add(time.Duration(ticks) * time.Second / clockTicks)
}

func (i *Inventory) userName(uid uint32) string {
	if i.cfg.LookupUser != nil {
		return i.cfg.LookupUser(uid)
	}
	i.mu.Lock()
	n, ok := i.users[uid]
	i.mu.Unlock()
	if ok {
		return n
	}
	id := strconv.FormatUint(uint64(uid), 10)
	n = id
	if u, err := user.LookupId(id); err == nil {
		n = u.Username
	}
	i.mu.Lock()
	i.users[uid] = n
	i.mu.Unlock()
	return n
}

// Resources reads what process pid uses: CPU time, resident memory, threads and open
// files against its RLIMIT_NOFILE.
func (i *Inventory) Resources(pid int) (Resources, error) {
	if !supported {
		return Resources{}, ErrUnsupported
	}
	dir := filepath.Join(i.cfg.ProcRoot, strconv.Itoa(pid))
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return Resources{}, err
	}
	st, err := parseStat(b)
	if err != nil {
		return Resources{}, fmt.Errorf("%s/stat: %w", dir, err)
	}
	r := Resources{
		CPU: time.Duration(st.UTime+st.STime) * time.Second / clockTicks,
		RSS: st.RSSPages * int64(os.Getpagesize()),
	}
	if b, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		r.Threads = parseStatusThreads(b)
	}
	lb, err := os.ReadFile(filepath.Join(dir, "limits"))
	if err != nil {
		return r, err
	}
	if r.MaxOpenFiles, _, err = parseLimits(lb); err != nil {
		return r, fmt.Errorf("%s/limits: %w", dir, err)
	}
	n, err := countDir(filepath.Join(dir, "fd"))
	if err != nil {
		return r, err
	}
	r.OpenFiles = n
	return r, nil
}

func countDir(dir string) (int, error) {
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	total := 0
	for {
		names, err := f.Readdirnames(1024)
		total += len(names)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return total, nil
			}
			return total, err
		}
	}
}

// Counters reads the kernel's listen-queue counters from /proc/net/netstat.
func (i *Inventory) Counters() (Counters, error) {
	if !supported {
		return Counters{}, ErrUnsupported
	}
	p := filepath.Join(i.cfg.ProcRoot, "net", "netstat")
	b, err := os.ReadFile(p)
	if err != nil {
		return Counters{}, err
	}
	m, err := ParseNetstat(b)
	if err != nil {
		return Counters{}, fmt.Errorf("%s: %w", p, err)
	}
	t := m["TcpExt"]
	return Counters{ListenOverflows: t["ListenOverflows"], ListenDrops: t["ListenDrops"]}, nil
}

// Diff compares two listings of sockets, such as two successive Listeners calls, and
// returns the sockets of prev that are gone from cur and those of cur that are new. A
// socket is the same when its protocol, family, local address and inode are: a
// restarted service shows as one gone and one new.
func Diff(prev, cur []Socket) (gone, added []Socket) {
	type key struct {
		proto Proto
		ipv6  bool
		local netip.AddrPort
		inode uint64
	}
	k := func(s *Socket) key { return key{s.Proto, s.IPv6, s.Local, s.Inode} }
	seen := make(map[key]bool, len(cur))
	for n := range cur {
		seen[k(&cur[n])] = true
	}
	was := make(map[key]bool, len(prev))
	for n := range prev {
		kk := k(&prev[n])
		was[kk] = true
		if !seen[kk] {
			gone = append(gone, prev[n])
		}
	}
	for n := range cur {
		if !was[k(&cur[n])] {
			added = append(added, cur[n])
		}
	}
	return gone, added
}
