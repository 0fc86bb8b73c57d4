//go:build !race

package reliability_test

// raceDetector is true when the tests run under -race (make test, CI),
// which slows every goroutine several times over.
const raceDetector = false
