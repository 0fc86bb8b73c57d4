package metrics

import (
	"math"
	"math/bits"
)

// Histogram geometry shared by every perfleet histogram so that any two can
// be merged: integer values 1 … 3.6e9 (1 µs … 1 h when the unit is a
// microsecond), 3 significant digits (≤ 0.1 % relative error per value).
const (
	HistLowest  int64 = 1
	HistHighest int64 = 3_600_000_000
	HistDigits        = 3
)

// The bucket layout is HdrHistogram's for that geometry (so the wire
// format's bucket indexes are HdrHistogram count indexes): 2·10³ values
// need 11 bits of sub-bucket, half of each bucket overlaps the previous
// one, and each bucket doubles the unit.
const (
	subHalfMag = 10              // log2(sub-buckets) − 1
	subHalf    = 1 << subHalfMag // 1024
	subCount   = 2 * subHalf     // 2048 ≥ 2·10^HistDigits
	subMask    = subCount - 1
)

// histCountsLen is the number of count indexes the geometry has (23,552).
var histCountsLen = func() int {
	buckets, top := 1, int64(subCount)
	for top <= HistHighest {
		top <<= 1
		buckets++
	}
	return (buckets + 1) * subHalf
}()

// countsIndex is the bucket index of value v (1 ≤ v ≤ HistHighest).
func countsIndex(v int64) int {
	b := 64 - bits.LeadingZeros64(uint64(v|subMask)) - (subHalfMag + 1)
	return (b+1)<<subHalfMag + int(v>>uint(b)) - subHalf
}

// bucketRange returns the lowest and highest values index i stands for.
func bucketRange(i int) (lo, hi int64) {
	b := i>>subHalfMag - 1
	sb := i&(subHalf-1) + subHalf
	if b < 0 {
		sb -= subHalf
		b = 0
	}
	lo = int64(sb) << uint(b)
	return lo, lo + int64(1)<<uint(b) - 1
}

// bucket is one non-empty count of a sparse histogram.
type bucket struct {
	idx int32
	n   int64
}

// Histogram is a mergeable HDR histogram of one metric plus the exact count,
// sum, sum of squares, min and max of the recorded values. Values are given
// in display units (ms, tokens, tokens/sec) and stored as integers of
// value×Scale, so Scale=1000 stores milliseconds as microseconds.
//
// The counts are held dense (a slice up to the highest index used, for
// recording) or sparse (the non-empty buckets in index order, as windows
// arrive from agents): a leader merging thousands of agents' windows keeps
// only the buckets that hold something, instead of the geometry's 23,552
// counters per histogram. Merge picks whichever is smaller.
//
// A Histogram is not safe for concurrent use.
type Histogram struct {
	Scale float64
	Count int64
	Sum   float64
	SumSq float64
	Min   float64
	Max   float64

	dense  []int64  // counts by index, len = highest index used + 1
	sparse []bucket // or: non-empty buckets, ascending idx
}

// NewHistogram returns an empty histogram storing value×scale.
func NewHistogram(scale float64) *Histogram {
	if scale <= 0 {
		scale = 1
	}
	return &Histogram{Scale: scale, Min: math.Inf(1), Max: math.Inf(-1)}
}

// Record adds one value (display units). NaN and negative values are
// ignored; values past the range are clamped for the percentiles but kept
// exactly in sum, min and max.
func (h *Histogram) Record(v float64) {
	if math.IsNaN(v) || v < 0 || math.IsInf(v, 0) {
		return
	}
	iv := int64(math.Round(v * h.Scale))
	iv = min(iv, HistHighest)
	h.toDense()
	i := countsIndex(iv)
	if i >= len(h.dense) {
		h.dense = growTo(h.dense, i+1)
	}
	h.dense[i]++
	h.Count++
	h.Sum += v
	h.SumSq += v * v
	if v < h.Min {
		h.Min = v
	}
	if v > h.Max {
		h.Max = v
	}
}

// growTo extends counts to n entries, with room to grow further.
func growTo(counts []int64, n int) []int64 {
	if n <= cap(counts) {
		return counts[:n]
	}
	out := make([]int64, n, min(max(n, 2*cap(counts)), histCountsLen))
	copy(out, counts)
	return out
}

// toDense turns sparse counts into dense ones.
func (h *Histogram) toDense() {
	if h.sparse == nil {
		return
	}
	d := make([]int64, int(h.sparse[len(h.sparse)-1].idx)+1)
	for _, b := range h.sparse {
		d[b.idx] = b.n
	}
	h.dense, h.sparse = d, nil
}

// preferDense reports whether dense counts up to highest index top take
// no more memory than sparse buckets (16 bytes each) would.
func preferDense(nonEmpty, top int) bool { return top+1 <= 2*nonEmpty }

// Merge adds every value of o into h. Both must have the same Scale.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.Count == 0 {
		return
	}
	switch {
	case h.dense == nil && h.sparse == nil:
		h.dense, h.sparse = append([]int64(nil), o.dense...), append([]bucket(nil), o.sparse...)
		if h.dense != nil && len(h.dense) == 0 {
			h.dense = nil
		}
		if h.sparse != nil && len(h.sparse) == 0 {
			h.sparse = nil
		}
	case h.dense != nil:
		h.addInto(o)
	case o.sparse != nil:
		h.sparse = mergeSparse(h.sparse, o.sparse)
		if top := int(h.sparse[len(h.sparse)-1].idx); preferDense(len(h.sparse), top) {
			h.toDense()
		}
	default: // h sparse, o dense
		h.toDense()
		h.addInto(o)
	}
	h.Count += o.Count
	h.Sum += o.Sum
	h.SumSq += o.SumSq
	h.Min = math.Min(h.Min, o.Min)
	h.Max = math.Max(h.Max, o.Max)
}

// addInto adds o's counts into h's dense counts.
func (h *Histogram) addInto(o *Histogram) {
	if n := len(o.dense); n > len(h.dense) {
		h.dense = growTo(h.dense, n)
	}
	for i, c := range o.dense {
		h.dense[i] += c
	}
	if len(o.sparse) > 0 {
		if n := int(o.sparse[len(o.sparse)-1].idx) + 1; n > len(h.dense) {
			h.dense = growTo(h.dense, n)
		}
		for _, b := range o.sparse {
			h.dense[b.idx] += b.n
		}
	}
}

// mergeSparse adds the sorted sparse list b into a and returns the result,
// in a's array when it has room for b's new indexes (merging from the back),
// else in a new one with a quarter to spare: a running total that has seen
// most of its buckets takes each new window without allocating.
func mergeSparse(a, b []bucket) []bucket {
	fresh := 0 // b's indexes not in a
	for i, j := 0, 0; j < len(b); {
		switch {
		case i == len(a) || b[j].idx < a[i].idx:
			fresh++
			j++
		case b[j].idx > a[i].idx:
			i++
		default:
			i++
			j++
		}
	}
	n := len(a) + fresh
	out := a[:cap(a)]
	if n > cap(a) {
		out = make([]bucket, n+n/4)
		copy(out, a)
	}
	out = out[:n]
	// Merge from the back: position k is never ahead of i, so a's unread
	// entries are not overwritten.
	i, j := len(a)-1, len(b)-1
	for k := n - 1; j >= 0; k-- {
		switch {
		case i >= 0 && out[i].idx > b[j].idx:
			out[k] = out[i]
			i--
		case i >= 0 && out[i].idx == b[j].idx:
			out[k] = bucket{out[i].idx, out[i].n + b[j].n}
			i--
			j--
		default:
			out[k] = b[j]
			j--
		}
	}
	return out
}

// Clone returns an independent copy.
func (h *Histogram) Clone() *Histogram {
	c := *h
	if h.dense != nil {
		c.dense = append([]int64(nil), h.dense...)
	}
	if h.sparse != nil {
		c.sparse = append([]bucket(nil), h.sparse...)
	}
	return &c
}

// Stats summarizes the histogram: count, sum, avg, min and max are exact;
// std comes from the exact sums; percentiles come from the HDR buckets
// (within 0.1 %) and are clamped to [min, max].
func (h *Histogram) Stats() Stats {
	var s Stats
	if h.Count == 0 {
		return s
	}
	s.Count, s.Sum, s.Min, s.Max = h.Count, h.Sum, h.Min, h.Max
	n := float64(h.Count)
	s.Avg = h.Sum / n
	variance := h.SumSq/n - s.Avg*s.Avg
	if variance < 0 {
		variance = 0
	}
	s.Std = math.Sqrt(variance)
	h.percentiles(Percentiles, func(i int, v int64) {
		s.P[i] = math.Min(math.Max(float64(v)/h.Scale, s.Min), s.Max)
	})
	return s
}

// percentiles calls fn with each percentile's value, HdrHistogram's way:
// the rank is round(p/100 × total) (at least 1, at most total), and the
// value is the highest value equivalent to the bucket where the running
// count reaches the rank (the lowest for p = 0). ps must be ascending.
func (h *Histogram) percentiles(ps []float64, fn func(i int, v int64)) {
	total := h.bucketCount()
	if total == 0 {
		return
	}
	k := 0
	var run int64
	h.buckets(func(idx int, c int64) {
		run += c
		for k < len(ps) && run >= percentileRank(ps[k], total) {
			lo, hi := bucketRange(idx)
			if ps[k] == 0 {
				fn(k, lo)
			} else {
				fn(k, hi)
			}
			k++
		}
	})
}

// percentileRank is the count a percentile reaches, in [1, total].
func percentileRank(p float64, total int64) int64 {
	rank := min(p, 100)/100*float64(total) + 0.5
	if !(rank >= 1) {
		return 1
	}
	if rank >= float64(total) {
		return total
	}
	return int64(rank)
}

// buckets calls fn with the non-zero counts in index order.
func (h *Histogram) buckets(fn func(idx int, count int64)) {
	for i, c := range h.dense {
		if c != 0 {
			fn(i, c)
		}
	}
	for _, b := range h.sparse {
		fn(int(b.idx), b.n)
	}
}

// setBuckets replaces the counts from (index, count) pairs with ascending
// indexes (an index may repeat; its counts add up).
func (h *Histogram) setBuckets(idx []int, counts []int64) {
	h.dense, h.sparse = nil, nil
	if len(idx) == 0 {
		return
	}
	sp := make([]bucket, 0, len(idx))
	for k, i := range idx {
		if n := len(sp); n > 0 && int(sp[n-1].idx) == i {
			sp[n-1].n += counts[k]
			continue
		}
		sp = append(sp, bucket{int32(i), counts[k]})
	}
	h.sparse = sp
}

// bucketCount returns how many counts the buckets hold.
func (h *Histogram) bucketCount() int64 {
	var n int64
	h.buckets(func(_ int, c int64) { n += c })
	return n
}
