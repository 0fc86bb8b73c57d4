//go:build !linux

package loadgen

import (
	"runtime"
	"time"
)

// nanosleep yields until d has passed (no portable thread sleep with
// sub-millisecond precision).
func nanosleep(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		runtime.Gosched()
	}
}
