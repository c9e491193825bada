package scan

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxPort is the highest TCP port.
const MaxPort = 65535

// PortList is a sorted list of distinct TCP ports, 1–65535. The zero value is empty.
type PortList []uint16

// AllPorts returns every port, 1–65535.
func AllPorts() PortList {
	l := make(PortList, MaxPort)
	for i := range l {
		l[i] = uint16(i + 1)
	}
	return l
}

// PortListError reports a port list that cannot be parsed.
type PortListError struct {
	Input  string
	Item   string
	Reason string
}

func (e *PortListError) Error() string {
	if e.Item == "" {
		return fmt.Sprintf("invalid port list %q: %s", e.Input, e.Reason)
	}
	return fmt.Sprintf("invalid port list %q: %q: %s", e.Input, e.Item, e.Reason)
}

// ParsePorts parses a port list as nmap's -p takes it: comma-separated ports and ranges.
// "22,80,443", "1-1024", "-1024" (1-1024), "60000-" (60000-65535) and "-" (1-65535).
// Spaces around items are ignored; duplicates and overlaps collapse.
func ParsePorts(s string) (PortList, error) {
	bad := func(item, format string, args ...any) (PortList, error) {
		return nil, &PortListError{Input: s, Item: item, Reason: fmt.Sprintf(format, args...)}
	}
	if strings.TrimSpace(s) == "" {
		return bad("", "empty; want ports such as 22,80,443 or 1-1024 or - for all")
	}
	var set [MaxPort + 1]bool
	n := 0
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return bad(item, "empty item")
		}
		lo, hi := 1, MaxPort
		if i := strings.IndexByte(item, '-'); i >= 0 {
			a, b := strings.TrimSpace(item[:i]), strings.TrimSpace(item[i+1:])
			var err error
			if a != "" {
				if lo, err = parsePort(a); err != nil {
					return bad(item, "%v", err)
				}
			}
			if b != "" {
				if hi, err = parsePort(b); err != nil {
					return bad(item, "%v", err)
				}
			}
			if lo > hi {
				return bad(item, "range runs backwards")
			}
		} else {
			p, err := parsePort(item)
			if err != nil {
				return bad(item, "%v", err)
			}
			lo, hi = p, p
		}
		for p := lo; p <= hi; p++ {
			if !set[p] {
				set[p] = true
				n++
			}
		}
	}
	l := make(PortList, 0, n)
	for p := 1; p <= MaxPort; p++ {
		if set[p] {
			l = append(l, uint16(p))
		}
	}
	return l, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	if n < 1 || n > MaxPort {
		return 0, fmt.Errorf("port %d out of range 1-65535", n)
	}
	return n, nil
}

// String renders the list compactly with ranges: "22,80,8000-8100".
func (l PortList) String() string {
	var b strings.Builder
	for i := 0; i < len(l); {
		j := i
		for j+1 < len(l) && l[j+1] == l[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(l[i])))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(l[j])))
		}
		i = j + 1
	}
	return b.String()
}

// Contains reports whether p is in the list.
func (l PortList) Contains(p uint16) bool {
	lo, hi := 0, len(l)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case l[m] == p:
			return true
		case l[m] < p:
			lo = m + 1
		default:
			hi = m
		}
	}
	return false
}
