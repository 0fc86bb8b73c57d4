package metrics

import (
	"math"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry shared by every perfleet histogram so that any two can
// be merged: integer values 1 … 3.6e9 (1 µs … 1 h when the unit is a
// microsecond), 3 significant digits (≤ 0.1 % relative error per value).
const (
	HistLowest  int64 = 1
	HistHighest int64 = 3_600_000_000
	HistDigits        = 3
)

// Histogram is a mergeable HDR histogram of one metric plus the exact count,
// sum, sum of squares, min and max of the recorded values. Values are given
// in display units (ms, tokens, tokens/sec) and stored as integers of
// value×Scale, so Scale=1000 stores milliseconds as microseconds.
//
// A Histogram is not safe for concurrent use.
type Histogram struct {
	Scale float64
	Count int64
	Sum   float64
	SumSq float64
	Min   float64
	Max   float64
	h     *hdr.Histogram
}

// NewHistogram returns an empty histogram storing value×scale.
func NewHistogram(scale float64) *Histogram {
	if scale <= 0 {
		scale = 1
	}
	return &Histogram{Scale: scale, Min: math.Inf(1), Max: math.Inf(-1)}
}

func (h *Histogram) hdr() *hdr.Histogram {
	if h.h == nil {
		h.h = hdr.New(HistLowest, HistHighest, HistDigits)
	}
	return h.h
}

// Record adds one value (display units). NaN and negative values are
// ignored; values past the range are clamped for the percentiles but kept
// exactly in sum, min and max.
func (h *Histogram) Record(v float64) {
	if math.IsNaN(v) || v < 0 || math.IsInf(v, 0) {
		return
	}
	iv := int64(math.Round(v * h.Scale))
	if iv > HistHighest {
		iv = HistHighest
	}
	_ = h.hdr().RecordValue(iv)
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

// Merge adds every value of o into h. Both must have the same Scale.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.Count == 0 {
		return
	}
	if o.h != nil {
		h.hdr().Merge(o.h)
	}
	h.Count += o.Count
	h.Sum += o.Sum
	h.SumSq += o.SumSq
	h.Min = math.Min(h.Min, o.Min)
	h.Max = math.Max(h.Max, o.Max)
}

// Clone returns an independent copy.
func (h *Histogram) Clone() *Histogram {
	c := *h
	if h.h != nil {
		c.h = h.h.Clone()
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
	for i, p := range Percentiles {
		v := float64(h.hdr().ValueAtPercentile(p)) / h.Scale
		s.P[i] = math.Min(math.Max(v, s.Min), s.Max)
	}
	return s
}

// buckets returns the non-zero HDR counts as (index, count) pairs.
func (h *Histogram) buckets(fn func(idx int, count int64)) {
	if h.h == nil {
		return
	}
	for i, c := range h.h.Export().Counts {
		if c != 0 {
			fn(i, c)
		}
	}
}

// setBuckets replaces the HDR counts from sparse (index, count) pairs.
func (h *Histogram) setBuckets(idx []int, counts []int64) {
	if len(idx) == 0 {
		h.h = nil
		return
	}
	maxIdx := 0
	for _, i := range idx {
		if i > maxIdx {
			maxIdx = i
		}
	}
	dense := make([]int64, maxIdx+1)
	for k, i := range idx {
		dense[i] += counts[k]
	}
	h.h = hdr.Import(&hdr.Snapshot{
		LowestTrackableValue:  HistLowest,
		HighestTrackableValue: HistHighest,
		SignificantFigures:    HistDigits,
		Counts:                dense,
	})
}

// bucketCount returns how many counts the HDR part holds.
func (h *Histogram) bucketCount() int64 {
	if h.h == nil {
		return 0
	}
	return h.h.TotalCount()
}
