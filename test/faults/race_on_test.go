//go:build race

package faults_test

// raceOn reports a build with the race detector, which makes each probe and alert
// many times as costly: the storm then runs 1,000 targets, not 10,000.
const raceOn = true
