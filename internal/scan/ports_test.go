package scan

import (
	"errors"
	"slices"
	"testing"
)

func TestParsePorts(t *testing.T) {
	tests := []struct {
		in   string
		want string // PortList.String()
		n    int
	}{
		{"22", "22", 1},
		{"22,80,443", "22,80,443", 3},
		{" 443 , 80,22,80", "22,80,443", 3},
		{"1-1024", "1-1024", 1024},
		{"-1024", "1-1024", 1024},
		{"60000-", "60000-65535", 5536},
		{"-", "1-65535", 65535},
		{"1-10,5-20,30", "1-20,30", 21},
		{"65535", "65535", 1},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			l, err := ParsePorts(tt.in)
			if err != nil {
				t.Fatalf("ParsePorts(%q): %v", tt.in, err)
			}
			if got := l.String(); got != tt.want || len(l) != tt.n {
				t.Errorf("ParsePorts(%q) = %s (%d ports), want %s (%d ports)", tt.in, got, len(l), tt.want, tt.n)
			}
		})
	}
}

func TestParsePortsErrors(t *testing.T) {
	for _, in := range []string{"", " ", "0", "65536", "ssh", "22,", ",22", "10-5", "1-2-3", "22;80", "-0", "99999999999999999999"} {
		t.Run(in, func(t *testing.T) {
			_, err := ParsePorts(in)
			var pe *PortListError
			if !errors.As(err, &pe) {
				t.Fatalf("ParsePorts(%q) error = %v, want *PortListError", in, err)
			}
		})
	}
}

func TestTop(t *testing.T) {
	all := topPorts()
	if len(all) < 1000 {
		t.Fatalf("the service table has %d ports, want at least 1000", len(all))
	}
	named := 0
	for _, p := range all {
		if serviceName("tcp", p) != "" {
			named++
		}
	}
	if named < 600 {
		t.Errorf("%d named services, want at least 600", named)
	}
	top := Top(1000)
	if len(top) != 1000 || !slices.IsSorted(top) || len(slices.Compact(slices.Clone(top))) != 1000 {
		t.Fatalf("Top(1000) has %d ports, sorted %v; want 1000 distinct sorted ports", len(top), slices.IsSorted(top))
	}
	for _, p := range []uint16{22, 80, 443, 3306, 5432, 6379} {
		if !Top(50).Contains(p) {
			t.Errorf("Top(50) lacks %d", p)
		}
	}
	// The ranking follows the table: its first entries are the doors of the internet.
	if got, want := Top(3), (PortList{22, 80, 443}); !slices.Equal(got, want) {
		t.Errorf("Top(3) = %v, want %v", got, want)
	}
	if got := len(Top(1 << 20)); got != len(all) {
		t.Errorf("Top(huge) = %d ports, want %d", got, len(all))
	}
	if got := len(Top(-1)); got != 0 {
		t.Errorf("Top(-1) = %d ports, want 0", got)
	}
	for _, tc := range []struct {
		port uint16
		want string
	}{{6379, "redis"}, {26379, "redis-sentinel"}, {9000, "php-fpm"}, {40000, ""}} {
		if got := serviceName("tcp", tc.port); got != tc.want {
			t.Errorf("serviceName(%d) = %q, want %q", tc.port, got, tc.want)
		}
	}
}

func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"22", "1-1024", "-", "-100", "60000-", "22,80,443", "10-5", "a", "1,,2", " 7 - 9 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParsePorts(s)
		if err != nil {
			return
		}
		if len(l) == 0 || !slices.IsSorted(l) || l[0] == 0 {
			t.Fatalf("ParsePorts(%q) = %v: want a non-empty sorted list without port 0", s, l)
		}
		for i := 1; i < len(l); i++ {
			if l[i] == l[i-1] {
				t.Fatalf("ParsePorts(%q) repeats %d", s, l[i])
			}
		}
		again, err := ParsePorts(l.String())
		if err != nil || !slices.Equal(again, l) {
			t.Fatalf("ParsePorts(%q).String() = %q does not parse back: %v", s, l.String(), err)
		}
	})
}
