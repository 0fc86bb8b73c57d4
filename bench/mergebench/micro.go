package main

import (
	"fmt"
	"testing"

	"github.com/perfleet/perfleet/pkg/metrics"
)

// microMerge measures, in this process on one goroutine, what the leader
// does per received window (coordinator/runner shardRun.window: decode the
// wire bytes, merge into the shard's running window) and what one Watch
// update does per shard (jobRun.progress: merge each shard's running window
// into a fresh one). It separates the merge itself from gRPC, Raft and
// scheduling, and from the contention of a shared machine.
func microMerge(cache *windowCache) string {
	b := cache.get(0, 1, 0)
	shard := metrics.NewWindow("", 0, 0, 0)
	dec := testing.Benchmark(func(tb *testing.B) {
		tb.ReportAllocs()
		for i := 0; i < tb.N; i++ {
			w, err := metrics.UnmarshalWindow(b)
			if err != nil {
				tb.Fatal(err)
			}
			shard.Merge(w)
		}
	})
	prog := testing.Benchmark(func(tb *testing.B) {
		tb.ReportAllocs()
		for i := 0; i < tb.N; i++ {
			m := metrics.NewWindow("", 0, 0, 0)
			m.Merge(shard)
		}
	})
	return fmt.Sprintf("decode+merge of one %d-byte window: %.0f µs, %.1f MiB allocated; Watch progress per shard: %.0f µs, %.1f MiB allocated",
		len(b), float64(dec.NsPerOp())/1e3, float64(dec.AllocedBytesPerOp())/(1<<20),
		float64(prog.NsPerOp())/1e3, float64(prog.AllocedBytesPerOp())/(1<<20))
}
