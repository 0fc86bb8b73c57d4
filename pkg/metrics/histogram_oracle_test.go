package metrics

import (
	"math"
	"math/rand/v2"
	"testing"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// The histogram keeps its own counts in HdrHistogram's bucket layout; these
// tests hold it to hdrhistogram-go itself, which it replaced at run time.

func TestBucketLayoutMatchesHdrHistogram(t *testing.T) {
	ref := hdr.New(HistLowest, HistHighest, HistDigits)
	if n := len(ref.Export().Counts); n != histCountsLen {
		t.Fatalf("counts length %d, hdrhistogram-go has %d", histCountsLen, n)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	values := []int64{1, 2, 1023, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 1 << 20, HistHighest - 1, HistHighest}
	for range 20_000 {
		values = append(values, 1+int64(math.Exp(rng.Float64()*math.Log(float64(HistHighest)))))
	}
	for _, v := range values {
		v = min(max(v, 1), HistHighest)
		one := hdr.New(HistLowest, HistHighest, HistDigits)
		_ = one.RecordValue(v)
		want := -1
		for i, c := range one.Export().Counts {
			if c != 0 {
				want = i
			}
		}
		if got := countsIndex(v); got != want {
			t.Fatalf("countsIndex(%d) = %d, hdrhistogram-go %d", v, got, want)
		}
		lo, hi := bucketRange(want)
		if lo != one.ValueAtPercentile(0) || hi != one.ValueAtPercentile(50) || v < lo || v > hi {
			t.Fatalf("value %d: bucket [%d, %d], hdrhistogram-go [%d, %d]", v, lo, hi, one.ValueAtPercentile(0), one.ValueAtPercentile(50))
		}
	}
}

// TestPercentilesMatchHdrHistogram records the same values into both and
// compares every percentile, through dense counts, sparse counts from the
// wire, and merges of the two.
func TestPercentilesMatchHdrHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	gens := map[string]func() float64{
		"latency ms":  func() float64 { return 10 + rng.ExpFloat64()*30 },
		"lognormal":   func() float64 { return math.Exp(rng.NormFloat64()*1.5 + 3) },
		"tokens":      func() float64 { return float64(rng.IntN(4000)) },
		"one value":   func() float64 { return 42 },
		"tiny":        func() float64 { return rng.Float64() * 0.01 },
		"clamped big": func() float64 { return 1e7 * rng.Float64() },
	}
	ps := []float64{0, 0.1, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100}
	for name, gen := range gens {
		for _, n := range []int{1, 7, 300, 20_000} {
			ref := hdr.New(HistLowest, HistHighest, HistDigits)
			parts := []*Histogram{NewHistogram(1000), NewHistogram(1000), NewHistogram(1000)}
			for i := range n {
				v := gen()
				parts[i%3].Record(v)
				_ = ref.RecordValue(min(int64(math.Round(v*1000)), HistHighest))
			}
			// parts[1] goes through the wire (sparse), the others stay dense.
			w := NewWindow("a", 1, 0, 1000)
			w.Hists["x"] = parts[1]
			back, err := UnmarshalWindow(MarshalWindow(w))
			if err != nil {
				t.Fatal(err)
			}
			sparse := back.Hists["x"]
			for _, merged := range []*Histogram{
				mergeAll(parts[0], sparse, parts[2]),                                   // dense ← sparse, dense
				mergeAll(sparse, parts[0], parts[2]),                                   // sparse ← dense
				mergeAll(sparse.Clone(), fromWire(t, parts[0]), fromWire(t, parts[2])), // all sparse
			} {
				if merged.bucketCount() != int64(n) || merged.Count != int64(n) {
					t.Fatalf("%s n=%d: count %d buckets %d", name, n, merged.Count, merged.bucketCount())
				}
				merged.percentiles(ps, func(i int, v int64) {
					if want := ref.ValueAtPercentile(ps[i]); v != want {
						t.Fatalf("%s n=%d p%v: %d, hdrhistogram-go %d", name, n, ps[i], v, want)
					}
				})
			}
		}
	}
}

func mergeAll(hs ...*Histogram) *Histogram {
	out := NewHistogram(1000)
	for _, h := range hs {
		out.Merge(h)
	}
	return out
}

func fromWire(t *testing.T, h *Histogram) *Histogram {
	w := NewWindow("a", 1, 0, 1000)
	w.Hists["x"] = h
	back, err := UnmarshalWindow(MarshalWindow(w))
	if err != nil {
		t.Fatal(err)
	}
	return back.Hists["x"]
}

// A leader's running total of many agents' windows stays small: only the
// buckets that hold something.
func TestMergedWindowsStaySparse(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	total := NewHistogram(1000)
	for range 1000 {
		h := NewHistogram(1000)
		for range 300 {
			h.Record(100 + rng.ExpFloat64()*20)
		}
		total.Merge(fromWire(t, h))
	}
	if total.dense != nil || len(total.sparse) > 5000 {
		t.Fatalf("dense %d, sparse %d buckets", len(total.dense), len(total.sparse))
	}
	// Recording into a sparse histogram switches it to dense counts, and
	// keeps every count.
	before := total.bucketCount()
	total.Record(5)
	if total.bucketCount() != before+1 || total.sparse != nil {
		t.Fatalf("after Record: %d counts (want %d), sparse %v", total.bucketCount(), before+1, total.sparse != nil)
	}
}
