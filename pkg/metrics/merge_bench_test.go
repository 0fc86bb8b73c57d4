package metrics

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// benchWindow is one agent's second: 20 metrics × 300 requests, the shape
// a leader receives from every agent every second.
func benchWindow(seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	w := NewWindow("agent", 1, 0, 1000)
	for m := range 20 {
		h := NewHistogram(1000)
		scale := float64(1 + m*37)
		for range 300 {
			h.Record(scale * (1 + rng.ExpFloat64()))
		}
		w.Hists["metric"+strconv.Itoa(m)] = h
	}
	return MarshalWindow(w)
}

// BenchmarkLeaderWindowMerge is the leader's cost per received window:
// decode it and merge it into the shard's running total.
func BenchmarkLeaderWindowMerge(b *testing.B) {
	wins := [][]byte{benchWindow(1), benchWindow(2), benchWindow(3), benchWindow(4)}
	total := NewWindow("", 0, 0, 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		w, err := UnmarshalWindow(wins[i%len(wins)])
		if err != nil {
			b.Fatal(err)
		}
		total.Merge(w)
	}
}

// BenchmarkProgressMerge is one Watch update's cost per shard: merge a
// shard's running total (60 windows) into a fresh window.
func BenchmarkProgressMerge(b *testing.B) {
	shard := NewWindow("", 0, 0, 0)
	for i := range 60 {
		w, err := UnmarshalWindow(benchWindow(uint64(i)))
		if err != nil {
			b.Fatal(err)
		}
		shard.Merge(w)
	}
	b.ReportAllocs()
	for b.Loop() {
		m := NewWindow("", 0, 0, 0)
		m.Merge(shard)
		m.Merge(shard)
	}
}
