// Package loadgen is perfleet's load-generation engine: pure schedule math
// (arrival processes, sweeps, phases, stairs, trace replay; table-tested)
// and the executors that drive one Doer per request along a schedule.
package loadgen

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Pattern is an open-loop arrival process.
type Pattern string

// Arrival patterns, with AIPerf's names.
const (
	Constant Pattern = "constant"
	Poisson  Pattern = "poisson"
	Gamma    Pattern = "gamma"
)

// ErrSchedule is wrapped by every invalid-schedule error.
var ErrSchedule = errors.New("invalid load schedule")

// Arrivals yields the send offsets of an open-loop schedule, measured from
// one start time. Offsets never decrease.
type Arrivals interface {
	// Next returns the next offset, or false when the schedule has ended.
	Next() (time.Duration, bool)
}

// NewArrivals returns an unbounded arrival process at rate requests/s.
//
//	constant: t_i = i / rate                      (computed from i: no drift)
//	poisson:  t_i = t_{i−1} + Exp(rate)           (mean gap 1/rate, variance 1/rate²)
//	gamma:    t_i = t_{i−1} + Gamma(k, 1/(k·rate)) with k = smoothness
//	          (mean gap 1/rate, variance 1/(k·rate²); k = 1 is Poisson,
//	          k < 1 burstier, k > 1 smoother; vLLM's --burstiness)
//
// The first request is sent at offset 0. Random patterns are deterministic
// for a seed.
func NewArrivals(p Pattern, rate, smoothness float64, seed uint64) (Arrivals, error) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("%w: request rate %v must be > 0", ErrSchedule, rate)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	switch p {
	case Constant, "":
		return &constantArrivals{gap: 1 / rate}, nil
	case Poisson:
		return &randomArrivals{gap: func() float64 { return rng.ExpFloat64() / rate }}, nil
	case Gamma:
		if smoothness == 0 {
			smoothness = 1
		}
		if !(smoothness > 0) || math.IsInf(smoothness, 0) {
			return nil, fmt.Errorf("%w: arrival_smoothness %v must be > 0", ErrSchedule, smoothness)
		}
		k, scale := smoothness, 1/(smoothness*rate)
		return &randomArrivals{gap: func() float64 { return gammaSample(rng, k) * scale }}, nil
	}
	return nil, fmt.Errorf("%w: unknown arrival pattern %q", ErrSchedule, p)
}

type constantArrivals struct {
	gap float64
	i   int64
}

func (c *constantArrivals) Next() (time.Duration, bool) {
	d := time.Duration(float64(c.i) * c.gap * 1e9)
	c.i++
	return d, true
}

type randomArrivals struct {
	gap     func() float64
	t       float64
	started bool
}

func (r *randomArrivals) Next() (time.Duration, bool) {
	if r.started {
		r.t += r.gap()
	}
	r.started = true
	return time.Duration(r.t * 1e9), true
}

// gammaSample draws Gamma(k, 1) with Marsaglia and Tsang's method (and the
// k < 1 boost U^{1/k}).
func gammaSample(rng *rand.Rand, k float64) float64 {
	if k < 1 {
		u := rng.Float64()
		for u == 0 {
			u = rng.Float64()
		}
		return gammaSample(rng, k+1) * math.Pow(u, 1/k)
	}
	d := k - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// FixedArrivals replays precomputed offsets (trace replay).
type FixedArrivals struct {
	Offsets []time.Duration
	i       int
}

// Next implements Arrivals.
func (f *FixedArrivals) Next() (time.Duration, bool) {
	if f.i >= len(f.Offsets) {
		return 0, false
	}
	d := f.Offsets[f.i]
	f.i++
	return d, true
}

// Take returns the first n offsets of a (fresh) arrival process.
func Take(a Arrivals, n int) []time.Duration {
	out := make([]time.Duration, 0, n)
	for len(out) < n {
		d, ok := a.Next()
		if !ok {
			break
		}
		out = append(out, d)
	}
	return out
}
