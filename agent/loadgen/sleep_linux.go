package loadgen

import (
	"syscall"
	"time"
)

// nanosleep sleeps the calling thread for d (high-resolution timer).
func nanosleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil)
}
