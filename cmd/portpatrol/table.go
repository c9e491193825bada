package main

import (
	"bufio"
	"io"
	"strings"
	"unicode/utf8"
)

// table lays out rows in columns separated by two spaces, as text/tabwriter does for
// the tables here, but in one pass over whole cells: listing tens of thousands of
// sockets must not cost more than the kernel's answer.
type table struct {
	rows  [][]string
	width []int
}

func (t *table) add(cells ...string) {
	for i, c := range cells {
		if i == len(t.width) {
			t.width = append(t.width, 0)
		}
		t.width[i] = max(t.width[i], utf8.RuneCountInString(c))
	}
	t.rows = append(t.rows, cells)
}

// write prints the table; the last column is not padded.
func (t *table) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	pad := strings.Repeat(" ", 64)
	for _, row := range t.rows {
		for i, c := range row {
			bw.WriteString(c)
			if i == len(row)-1 {
				break
			}
			for n := t.width[i] - utf8.RuneCountInString(c) + 2; n > 0; n -= len(pad) {
				bw.WriteString(pad[:min(n, len(pad))])
			}
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
