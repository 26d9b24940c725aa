//go:build !race

package evoke_test

// raceDetector reports whether the tests run with the race detector, which
// makes the runtime several times slower: the differential test then runs
// fewer cases by default.
const raceDetector = false
