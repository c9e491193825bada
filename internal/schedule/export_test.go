package schedule

// Quiet reports whether s has done all it can at the current time: its loop sleeps
// until a time still in the future and nothing runs or waits for a slot.
func Quiet(s *Scheduler) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.rel(s.clock.Now())
	return s.running && s.waiting && !s.poked && s.inflight == 0 && s.queued == 0 &&
		(!s.hasArmed || s.armedAt > now)
}

// HashID exposes the offset hash.
var HashID = hashID
