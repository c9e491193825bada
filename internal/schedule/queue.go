package schedule

// dueItem is one arming of an entry in the due heap. An item whose gen no longer
// matches its entry's is stale (the entry was rescheduled or removed) and is skipped.
type dueItem struct {
	due int64 // nanoseconds since the scheduler's epoch
	gen uint32
	e   *entry
}

// dueHeap is a binary min-heap of dueItems ordered by due time. The comparisons read
// only the items themselves, not the entries they point to.
type dueHeap []dueItem

func (h *dueHeap) push(it dueItem) {
	*h = append(*h, it)
	h.up(len(*h) - 1)
}

func (h *dueHeap) pop() dueItem {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = dueItem{}
	*h = s[:n]
	if n > 0 {
		h.down(0)
	}
	return top
}

func (h dueHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p].due <= h[i].due {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (h dueHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h[r].due < h[l].due {
			m = r
		}
		if h[i].due <= h[m].due {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// init restores the heap order after the slice was filled directly.
func (h dueHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// fifo is a first-in first-out queue of entries waiting for a concurrency slot.
type fifo struct {
	items []*entry
	head  int
}

func (q *fifo) push(e *entry) { q.items = append(q.items, e) }

func (q *fifo) len() int { return len(q.items) - q.head }

func (q *fifo) pop() *entry {
	if q.head == len(q.items) {
		return nil
	}
	e := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head > 64 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return e
}
