//go:build !race

package faults_test

// raceOn reports a build with the race detector.
const raceOn = false
