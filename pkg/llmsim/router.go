package llmsim

import (
	"sync"
	"sync/atomic"
)

// router spreads requests over a server's copies like SageMaker's
// LEAST_OUTSTANDING_REQUESTS routing: a request goes to the copy with the
// fewest outstanding requests (routed, response not yet ended), ties to the
// lowest index. It is safe for concurrent use; the choice and the count
// change under one lock, so concurrent arrivals never pick from a stale
// count. With one copy there is nothing to choose and no lock is taken.
type router struct {
	mu          sync.Mutex
	outstanding []atomic.Int64 // per copy; written under mu when copies > 1
}

// newRouter returns a router over n ≥ 1 copies.
func newRouter(n int) *router {
	return &router{outstanding: make([]atomic.Int64, n)}
}

// acquire picks the copy for a new request and counts it as outstanding
// there; the caller must release it when the response ends.
func (r *router) acquire() int {
	if len(r.outstanding) == 1 {
		r.outstanding[0].Add(1)
		return 0
	}
	r.mu.Lock()
	best, low := 0, r.outstanding[0].Load()
	for i := 1; i < len(r.outstanding); i++ {
		if n := r.outstanding[i].Load(); n < low {
			best, low = i, n
		}
	}
	r.outstanding[best].Add(1)
	r.mu.Unlock()
	return best
}

// release ends a request routed to copy i.
func (r *router) release(i int) {
	if len(r.outstanding) == 1 {
		r.outstanding[0].Add(-1)
		return
	}
	r.mu.Lock()
	r.outstanding[i].Add(-1)
	r.mu.Unlock()
}

// load returns the outstanding requests of copy i.
func (r *router) load(i int) int { return int(r.outstanding[i].Load()) }
