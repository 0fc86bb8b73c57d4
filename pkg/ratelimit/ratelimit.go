// Package ratelimit is a set of token buckets keyed by caller (a principal
// ARN), for per-tenant API rate limits. Buckets are spread over shards with
// their own locks, so one busy caller does not contend with the others, and
// buckets idle long enough to be full again are dropped, so memory follows
// the active callers.
package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"
)

const shards = 16

// Limiter holds one token bucket per key.
type Limiter struct {
	rate  float64 // tokens per second
	burst float64
	seed  maphash.Seed
	sh    [shards]shard
}

type shard struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	sweeps  int
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a limiter allowing rate calls per second per key with bursts
// of up to burst (at least 1). A rate of 0 or less allows everything.
func New(rate float64, burst int) *Limiter {
	l := &Limiter{rate: rate, burst: float64(max(burst, 1)), seed: maphash.MakeSeed()}
	for i := range l.sh {
		l.sh[i].buckets = map[string]*bucket{}
	}
	return l
}

// Allow takes a token from key's bucket at now. When none is left it
// returns false and how long until one is.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil || l.rate <= 0 {
		return true, 0
	}
	s := &l.sh[maphash.String(l.seed, key)%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		s.buckets[key] = b
		s.sweep(l, now)
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// sweep drops, every 1024 new buckets in a shard, the buckets that have
// been idle long enough to be full (they would start full again anyway).
func (s *shard) sweep(l *Limiter, now time.Time) {
	s.sweeps++
	if s.sweeps%1024 != 0 {
		return
	}
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range s.buckets {
		if now.Sub(b.last) > full {
			delete(s.buckets, k)
		}
	}
}

// Len returns how many buckets are held (tests).
func (l *Limiter) Len() int {
	n := 0
	for i := range l.sh {
		l.sh[i].mu.Lock()
		n += len(l.sh[i].buckets)
		l.sh[i].mu.Unlock()
	}
	return n
}
