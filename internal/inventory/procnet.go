package inventory

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ParseProcNet parses a /proc/net/{tcp,tcp6,udp,udp6} table into sockets of protocol
// proto. Addresses are printed by the kernel as host-order 32-bit words, so the table
// must come from a machine of this one's byte order. The table carries no backlog:
// listeners read this way have SendQ 0 (the kernel prints the send queue there).
// It is a pure function, safe for concurrent use.
func ParseProcNet(data []byte, proto Proto) ([]Socket, error) {
	var out []Socket
	lineNo := 0
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		lineNo++
		if lineNo == 1 || len(bytes.TrimSpace(line)) == 0 {
			continue // header
		}
		s, err := parseProcNetLine(line, proto)
		if err != nil {
			return out, fmt.Errorf("line %d: %w", lineNo, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseProcNetLine(line []byte, proto Proto) (Socket, error) {
	f := bytes.Fields(line)
	// sl local rem st tx:rx tr:when retrnsmt uid timeout inode …
	if len(f) < 10 {
		return Socket{}, fmt.Errorf("want at least 10 fields, got %d", len(f))
	}
	s := Socket{Proto: proto}
	var err error
	if s.Local, err = parseHexAddrPort(f[1]); err != nil {
		return Socket{}, fmt.Errorf("local address %q: %w", f[1], err)
	}
	if s.Remote, err = parseHexAddrPort(f[2]); err != nil {
		return Socket{}, fmt.Errorf("remote address %q: %w", f[2], err)
	}
	s.IPv6 = s.Local.Addr().Is6()
	st, err := strconv.ParseUint(string(f[3]), 16, 8)
	if err != nil {
		return Socket{}, fmt.Errorf("state %q: %w", f[3], err)
	}
	s.State = State(st)
	tx, rx, ok := bytes.Cut(f[4], []byte{':'})
	if !ok {
		return Socket{}, fmt.Errorf("queues %q: want tx:rx", f[4])
	}
	txq, err1 := strconv.ParseUint(string(tx), 16, 32)
	rxq, err2 := strconv.ParseUint(string(rx), 16, 32)
	if err := errors.Join(err1, err2); err != nil {
		return Socket{}, fmt.Errorf("queues %q: %w", f[4], err)
	}
	s.RecvQ, s.SendQ = uint32(rxq), uint32(txq)
	if s.State == StateListen {
		s.SendQ = 0 // the backlog is not in this table
	}
	uid, err := strconv.ParseUint(string(f[7]), 10, 32)
	if err != nil {
		return Socket{}, fmt.Errorf("uid %q: %w", f[7], err)
	}
	s.UID = uint32(uid)
	if s.Inode, err = strconv.ParseUint(string(f[9]), 10, 64); err != nil {
		return Socket{}, fmt.Errorf("inode %q: %w", f[9], err)
	}
	return s, nil
}

// parseHexAddrPort parses "0100007F:1F90" or a 32-digit IPv6 form.
func parseHexAddrPort(b []byte) (netip.AddrPort, error) {
	a, p, ok := bytes.Cut(b, []byte{':'})
	if !ok {
		return netip.AddrPort{}, errors.New("want ADDR:PORT")
	}
	port, err := strconv.ParseUint(string(p), 16, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	var raw [16]byte
	switch len(a) {
	case 8, 32:
	default:
		return netip.AddrPort{}, fmt.Errorf("address of %d hex digits", len(a))
	}
	n, err := hex.Decode(raw[:], a)
	if err != nil {
		return netip.AddrPort{}, err
	}
	// Each 32-bit word is printed in host order.
	for w := 0; w < n; w += 4 {
		v := binary.BigEndian.Uint32(raw[w:])
		binary.NativeEndian.PutUint32(raw[w:], v)
	}
	var addr netip.Addr
	if n == 4 {
		addr = netip.AddrFrom4([4]byte(raw[:4]))
	} else {
		addr = netip.AddrFrom16(raw)
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// ParseNetstat parses /proc/net/netstat or /proc/net/snmp: pairs of lines "Prefix: names…"
// and "Prefix: values…". It returns values by prefix and name ("TcpExt" →
// "ListenOverflows" → n). It is a pure function, safe for concurrent use.
func ParseNetstat(data []byte) (map[string]map[string]int64, error) {
	out := make(map[string]map[string]int64)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return out, nil
	}
	if len(lines)%2 != 0 {
		return nil, fmt.Errorf("%d lines; want pairs of name and value lines", len(lines))
	}
	for i := 0; i < len(lines); i += 2 {
		np, names, ok1 := strings.Cut(lines[i], ":")
		vp, vals, ok2 := strings.Cut(lines[i+1], ":")
		if !ok1 || !ok2 || np != vp {
			return nil, fmt.Errorf("line %d: want two lines of prefix %q", i+1, np)
		}
		nf, vf := strings.Fields(names), strings.Fields(vals)
		if len(nf) != len(vf) {
			return nil, fmt.Errorf("line %d: %d names but %d values", i+1, len(nf), len(vf))
		}
		m := make(map[string]int64, len(nf))
		for j, n := range nf {
			v, err := strconv.ParseInt(vf[j], 10, 64)
			if err != nil {
				u, uerr := strconv.ParseUint(vf[j], 10, 64)
				if uerr != nil {
					return nil, fmt.Errorf("line %d: %s: %w", i+2, n, err)
				}
				v = int64(u >> 1) // beyond int64: keep it monotonic and positive
			}
			m[n] = v
		}
		out[np] = m
	}
	return out, nil
}

// procStat is what portpatrol reads from /proc/PID/stat.
type procStat struct {
	Comm      string
	State     byte
	PPID      int
	UTime     uint64 // clock ticks
	STime     uint64
	StartTime uint64 // clock ticks after boot
	RSSPages  int64
}

// parseStat parses /proc/PID/stat. The command name sits in parentheses and may itself
// hold spaces and parentheses, so the fields start after the last ')'.
func parseStat(b []byte) (procStat, error) {
	open := bytes.IndexByte(b, '(')
	cls := bytes.LastIndexByte(b, ')')
	if open < 0 || cls < open {
		return procStat{}, errors.New("no (comm) field")
	}
	st := procStat{Comm: string(b[open+1 : cls])}
	f := bytes.Fields(b[cls+1:])
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("%d fields after comm; want at least 22", len(f))
	}
	if len(f[0]) > 0 {
		st.State = f[0][0]
	}
	var errs [6]error
	var ppid int64
	ppid, errs[0] = strconv.ParseInt(string(f[1]), 10, 64)
	st.PPID = int(ppid)
	st.UTime, errs[1] = strconv.ParseUint(string(f[11]), 10, 64)
	st.STime, errs[2] = strconv.ParseUint(string(f[12]), 10, 64)
	st.StartTime, errs[3] = strconv.ParseUint(string(f[19]), 10, 64)
	st.RSSPages, errs[4] = strconv.ParseInt(string(f[21]), 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return procStat{}, err
	}
	return st, nil
}

// parseStatusUID returns the effective uid from /proc/PID/status.
func parseStatusUID(b []byte) (uint32, bool) {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if rest, ok := bytes.CutPrefix(line, []byte("Uid:")); ok {
			f := bytes.Fields(rest)
			if len(f) < 2 {
				return 0, false
			}
			v, err := strconv.ParseUint(string(f[1]), 10, 32)
			return uint32(v), err == nil
		}
	}
	return 0, false
}

// parseStatusThreads returns the Threads count from /proc/PID/status, or 0.
func parseStatusThreads(b []byte) int {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if rest, ok := bytes.CutPrefix(line, []byte("Threads:")); ok {
			n, _ := strconv.Atoi(string(bytes.TrimSpace(rest)))
			return n
		}
	}
	return 0
}

// Unlimited is the value of a limit that has none.
const Unlimited = -1

// parseLimits returns the soft and hard "Max open files" from /proc/PID/limits;
// Unlimited stands for "unlimited".
func parseLimits(b []byte) (soft, hard int64, err error) {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		rest, ok := bytes.CutPrefix(line, []byte("Max open files"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 2 {
			return 0, 0, errors.New("max open files: want soft and hard values")
		}
		lim := func(s []byte) (int64, error) {
			if string(s) == "unlimited" {
				return Unlimited, nil
			}
			return strconv.ParseInt(string(s), 10, 64)
		}
		if soft, err = lim(f[0]); err != nil {
			return 0, 0, fmt.Errorf("max open files: %w", err)
		}
		if hard, err = lim(f[1]); err != nil {
			return 0, 0, fmt.Errorf("max open files: %w", err)
		}
		return soft, hard, nil
	}
	return 0, 0, errors.New("no \"Max open files\" line")
}

// parseBootTime returns btime (seconds since the epoch) from /proc/stat.
func parseBootTime(b []byte) (int64, bool) {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if rest, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			v, err := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// parseCgroup returns a process's cgroup path from /proc/PID/cgroup (the unified
// "0::" line when there is one) and the container id found in any line: the 64
// hex digits that Docker, containerd, CRI-O and Podman put in their cgroup names.
func parseCgroup(b []byte) (path, container string) {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		parts := bytes.SplitN(line, []byte{':'}, 3)
		if len(parts) != 3 {
			continue
		}
		p := string(parts[2])
		if string(parts[0]) == "0" || path == "" {
			path = p
		}
		if container == "" {
			container = containerID(p)
		}
	}
	return path, container
}

// containerID finds a run of exactly 64 hex digits in a cgroup path.
func containerID(p string) string {
	run := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && isHex(p[i]) {
			run++
			continue
		}
		if run == 64 {
			return p[i-64 : i]
		}
		run = 0
	}
	return ""
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }
