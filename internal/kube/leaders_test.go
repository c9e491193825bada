package kube

import (
	"context"
	"sync"
)

// leaderEvent is a replica starting (true) or stopping leadership.
type leaderEvent struct {
	id      string
	started bool
}

// leaders records what RunLeader's callbacks report for several replicas: events in
// order, and the most replicas that led at once.
type leaders struct {
	events chan leaderEvent

	mu      sync.Mutex
	leading map[string]bool
	most    int
}

func newLeaders() *leaders {
	return &leaders{events: make(chan leaderEvent, 16), leading: map[string]bool{}}
}

// callbacks returns RunLeader's onStart and onStop for replica id.
func (l *leaders) callbacks(id string) (func(context.Context), func()) {
	return func(context.Context) {
			l.mu.Lock()
			l.leading[id] = true
			n := 0
			for _, on := range l.leading {
				if on {
					n++
				}
			}
			l.most = max(l.most, n)
			l.mu.Unlock()
			l.events <- leaderEvent{id, true}
		}, func() {
			l.mu.Lock()
			l.leading[id] = false
			l.mu.Unlock()
			l.events <- leaderEvent{id, false}
		}
}

// maxLeaders is the most replicas that led at once.
func (l *leaders) maxLeaders() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.most
}
