//go:build !race

package daemon

// raceEnabled reports that the race detector instruments this test binary.
const raceEnabled = false
