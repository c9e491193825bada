package patrol

import (
	"slices"
	"strconv"
	"strings"
)

// PortRanges collapses ports into sorted ranges, duplicates dropped: "22,
// 8080–8082, 20000–20949". Alerts about many ports of one process name them with it.
func PortRanges(ports []uint16) string {
	ps := slices.Clone(ports)
	slices.Sort(ps)
	ps = slices.Compact(ps)
	var b strings.Builder
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(int(ps[i])))
		if j > i {
			b.WriteString("–" + strconv.Itoa(int(ps[j])))
		}
		i = j + 1
	}
	return b.String()
}
