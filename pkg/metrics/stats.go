package metrics

import (
	"math"
	"sort"
)

// Percentiles are the percentiles AIPerf reports for every record metric, in
// the order of its CSV columns (p1 … p99), plus p99.9 which perfleet adds.
var Percentiles = []float64{1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9}

// Stats is the summary of one distribution in display units.
//
//	avg = Σx / n
//	std = sqrt(Σ(x−avg)² / n)   (population standard deviation, numpy's np.std default as AIPerf uses it)
//	pN  = the N-th percentile (exact: numpy "linear" interpolation; from a histogram: within its error)
type Stats struct {
	Count int64
	Sum   float64
	Avg   float64
	Min   float64
	Max   float64
	Std   float64
	// P holds the values for Percentiles, index by index.
	P [10]float64
}

// Pct returns the value for percentile p (one of Percentiles) or NaN.
func (s Stats) Pct(p float64) float64 {
	for i, q := range Percentiles {
		if q == p {
			return s.P[i]
		}
	}
	return math.NaN()
}

// summarizeExact computes exact statistics over values the way numpy does
// (np.mean, np.std with ddof=0, np.percentile with linear interpolation).
// The slice is sorted in place. An empty slice gives a zero Stats.
func summarizeExact(values []float64) Stats {
	var s Stats
	n := len(values)
	if n == 0 {
		return s
	}
	sort.Float64s(values)
	s.Count = int64(n)
	for _, v := range values {
		s.Sum += v
	}
	s.Avg = s.Sum / float64(n)
	var ss float64
	for _, v := range values {
		d := v - s.Avg
		ss += d * d
	}
	s.Std = math.Sqrt(ss / float64(n))
	s.Min, s.Max = values[0], values[n-1]
	for i, p := range Percentiles {
		s.P[i] = linearPercentile(values, p)
	}
	return s
}

// linearPercentile is numpy's default percentile: rank = p/100·(n−1), linear
// interpolation between the two closest ranks of the sorted values.
func linearPercentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 1 {
		return sorted[0]
	}
	rank := p / 100 * float64(n-1)
	lo := int(math.Floor(rank))
	hi := lo + 1
	if hi >= n {
		return sorted[n-1]
	}
	frac := rank - float64(lo)
	return sorted[lo] + (sorted[hi]-sorted[lo])*frac
}
