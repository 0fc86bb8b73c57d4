package report

import (
	"math"
	"sort"
)

// ParetoFront returns the indices of the Pareto-optimal points: those for
// which no other point has both a latency that is lower or equal and a
// throughput that is higher or equal (with at least one of the two strictly
// better). In other words, each returned point has the highest throughput
// available at its latency or lower.
//
// The indices are ordered by increasing latency (and so increasing
// throughput), ready to be joined by a line. Points whose latency or
// throughput is NaN or ±Inf are ignored. Of several identical points only the
// one with the lowest index is returned. Feasibility is not considered.
func ParetoFront(points []Point) []int {
	idx := make([]int, 0, len(points))
	for i, p := range points {
		if finite(p.LatencyMs) && finite(p.TokensPerSecond) {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool {
		pa, pb := points[idx[a]], points[idx[b]]
		if pa.LatencyMs != pb.LatencyMs {
			return pa.LatencyMs < pb.LatencyMs
		}
		return pa.TokensPerSecond > pb.TokensPerSecond
	})
	front := []int{}
	best := math.Inf(-1)
	for _, i := range idx {
		if t := points[i].TokensPerSecond; t > best {
			front = append(front, i)
			best = t
		}
	}
	return front
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
