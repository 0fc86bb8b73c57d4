package metrics

import "time"

var (
	clockBase     = time.Now()
	clockBaseUnix = clockBase.UnixNano()
)

// Now returns Unix nanoseconds read from the monotonic clock: differences
// between two Now values are immune to wall-clock steps, and values from
// one process are comparable with those of records and windows.
func Now() int64 { return clockBaseUnix + int64(time.Since(clockBase)) }
