package patrol

import "testing"

func TestPortRanges(t *testing.T) {
	for _, tc := range []struct {
		in   []uint16
		want string
	}{
		{nil, ""},
		{[]uint16{22}, "22"},
		{[]uint16{8082, 22, 8080, 8081, 8081}, "22, 8080–8082"},
		{[]uint16{1, 3, 5, 6}, "1, 3, 5–6"},
		{[]uint16{65535, 65534, 0}, "0, 65534–65535"},
	} {
		if got := PortRanges(tc.in); got != tc.want {
			t.Errorf("PortRanges(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
