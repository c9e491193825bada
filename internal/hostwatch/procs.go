package hostwatch

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProcID is what tells a service's process apart from another across restarts: its
// executable, its command name and its cgroup (a systemd unit, a container). A field
// that could not be read is empty and is not compared.
type ProcID struct {
	Exe    string `json:"exe,omitempty"`
	Comm   string `json:"comm,omitempty"`
	Cgroup string `json:"cgroup,omitempty"`
	// Start is when the process started, to tell a process from a later one that got
	// its PID; it is not part of the identity.
	Start time.Time `json:"start,omitzero"`
}

// sameStart reports whether p and o started at the same time, as far as known.
func (p ProcID) sameStart(o ProcID) bool {
	if p.Start.IsZero() || o.Start.IsZero() {
		return true
	}
	d := p.Start.Sub(o.Start)
	return d < restartSlack && d > -restartSlack
}

// same reports whether o may be the same service as p: every field known on both sides
// agrees, and at least the executable or the command name is known on both.
func (p ProcID) same(o ProcID) bool {
	known := false
	for _, f := range [][2]string{{p.Exe, o.Exe}, {p.Comm, o.Comm}} {
		if f[0] != "" && f[1] != "" {
			if f[0] != f[1] {
				return false
			}
			known = true
		}
	}
	if p.Cgroup != "" && o.Cgroup != "" && p.Cgroup != o.Cgroup {
		return false
	}
	return known
}

// Procs looks processes up, to tell a service that exited for good from one that
// crashed and is being restarted. The implementation must be safe for concurrent use.
type Procs interface {
	// Identity returns the identity of process pid; an error wrapping fs.ErrNotExist
	// when it has exited.
	Identity(pid int) (ProcID, error)
	// Find returns the processes whose identity is the same as id.
	Find(id ProcID) ([]int, error)
}

// procFS reads processes from a proc file system.
type procFS struct {
	root  string
	btime func() time.Time // boot time, read once
}

var _ Procs = (*procFS)(nil)

func newProcFS(root string) *procFS {
	p := &procFS{root: root}
	p.btime = sync.OnceValue(func() time.Time {
		b, err := os.ReadFile(filepath.Join(root, "stat"))
		if err != nil {
			return time.Time{}
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "btime "); ok {
				if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
					return time.Unix(n, 0)
				}
			}
		}
		return time.Time{}
	})
	return p
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// startTime reads when process pid started from field 22 of /proc/PID/stat.
func (p *procFS) startTime(dir string) time.Time {
	boot := p.btime()
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil || boot.IsZero() {
		return time.Time{}
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return time.Time{}
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return time.Time{}
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return time.Time{}
	}
	return boot.Add(time.Duration(ticks) * time.Second / clockTicks)
}

// Identity reads /proc/PID/exe, comm and cgroup. An executable that cannot be read (a
// process of another user, without CAP_SYS_PTRACE) is left empty.
func (p *procFS) Identity(pid int) (ProcID, error) {
	dir := filepath.Join(p.root, strconv.Itoa(pid))
	comm, err := os.ReadFile(filepath.Join(dir, "comm"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNoSuchProcess) {
			return ProcID{}, fmt.Errorf("process %d: %w", pid, fs.ErrNotExist)
		}
		return ProcID{}, fmt.Errorf("process %d: %w", pid, err)
	}
	id := ProcID{Comm: string(bytes.TrimSpace(comm))}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		id.Exe = strings.TrimSuffix(exe, " (deleted)")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		id.Cgroup = cgroupPath(b)
	}
	id.Start = p.startTime(dir)
	return id, nil
}

// errNoSuchProcess is what reading a file of a process that exited meanwhile returns.
var errNoSuchProcess = errors.New("no such process")

// Find scans every process for one with the same identity.
func (p *procFS) Find(id ProcID) ([]int, error) {
	ents, err := os.ReadDir(p.root)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		got, err := p.Identity(pid)
		if err != nil {
			continue
		}
		if id.same(got) {
			out = append(out, pid)
		}
	}
	return out, nil
}

// cgroupPath returns the unified (cgroup v2) path of /proc/PID/cgroup, or the
// name=systemd one on cgroup v1.
func cgroupPath(b []byte) string {
	var v1 string
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p
		}
		if _, p, ok := strings.Cut(line, ":name=systemd:"); ok {
			v1 = p
		}
	}
	return v1
}

// PortRange is an inclusive range of ports; a single port has Lo == Hi.
type PortRange struct{ Lo, Hi uint16 }

// ParsePortRange parses "9222" or "20000-20999".
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	a, err := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	if err != nil || a == 0 {
		return PortRange{}, fmt.Errorf("port %q: want a port 1-65535 or a range such as 20000-20999", s)
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(strings.TrimSpace(hi), 10, 16); err != nil || b == 0 || b < a {
			return PortRange{}, fmt.Errorf("port range %q: want LOW-HIGH with 1 <= LOW <= HIGH <= 65535", s)
		}
	}
	return PortRange{uint16(a), uint16(b)}, nil
}

func (r PortRange) has(p uint16) bool { return p >= r.Lo && p <= r.Hi }

// String is "9222" or "20000-20999".
func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}

// Ignore says which listeners are never learned: they are not probed and never page.
// The zero value ignores nothing. Listeners already learned are not affected.
type Ignore struct {
	// Ports are ports and port ranges.
	Ports []PortRange
	// Processes are command names (the 15-byte comm that ps shows) or executable
	// base names.
	Processes []string
	// Cgroups are cgroup paths or path.Match patterns ("/user.slice/*/app-*.scope");
	// a pattern also matches every cgroup below what it names.
	Cgroups []string
	// Ephemeral is the kernel's ephemeral port range (net.ipv4.ip_local_port_range),
	// where the ports of sockets bound to port 0 come from; zero means read it from
	// /proc, and 32768-60999 when it cannot be read.
	Ephemeral PortRange
	// EphemeralAfter is how long a listener on an ephemeral port must live to be
	// learned instead of LearnAfter: such a port is chosen anew at every start, so a
	// short-lived process's port would page for ever once it exits. 0 or negative
	// learns them after LearnAfter like any other port.
	EphemeralAfter time.Duration
}

// DefaultIgnoredPorts are ports never learned unless configured otherwise: the
// remote-debugging ports of browsers and Node.js.
var DefaultIgnoredPorts = []string{"9222", "9229"}

// DefaultIgnoredProcesses are programs whose listeners come and go with a desktop
// session: browsers and their debug ports, editors' language servers.
var DefaultIgnoredProcesses = []string{"chrome", "chromium", "chromium-browse", "chrome_crashpad", "firefox", "msedge", "code"}

// matchCgroup reports whether cgroup is pattern or lies below what it names.
func matchCgroup(pattern, cgroup string) bool {
	for c := cgroup; c != "" && c != "/" && c != "."; c = path.Dir(c) {
		if ok, _ := path.Match(pattern, c); ok || pattern == c {
			return true
		}
	}
	return false
}

// ignored says why l is never learned, or "" when it may be.
func (w *Watch) ignored(l *listener) string {
	ig := &w.cfg.Ignore
	port := l.key.bind.Port()
	for _, r := range ig.Ports {
		if r.has(port) {
			return "port " + r.String()
		}
	}
	if l.owner == nil {
		return ""
	}
	exe := ""
	if len(l.owner.Cmdline) > 0 {
		exe = path.Base(l.owner.Cmdline[0])
	}
	for _, p := range ig.Processes {
		if p == l.owner.Command || p == exe {
			return "process " + p
		}
	}
	if l.owner.Cgroup != "" {
		for _, c := range ig.Cgroups {
			if matchCgroup(c, l.owner.Cgroup) {
				return "cgroup " + c
			}
		}
	}
	return ""
}

// learnAfter is how long l must live to be learned.
func (w *Watch) learnAfter(l *listener) time.Duration {
	ig := &w.cfg.Ignore
	if ig.EphemeralAfter > 0 && ig.Ephemeral.has(l.key.bind.Port()) {
		return max(ig.EphemeralAfter, w.cfg.LearnAfter)
	}
	return w.cfg.LearnAfter
}

// ephemeralRange reads the kernel's ephemeral port range.
func ephemeralRange(root string) PortRange {
	def := PortRange{32768, 60999}
	b, err := os.ReadFile(filepath.Join(root, "sys/net/ipv4/ip_local_port_range"))
	if err != nil {
		return def
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return def
	}
	r, err := ParsePortRange(f[0] + "-" + f[1])
	if err != nil {
		return def
	}
	return r
}
