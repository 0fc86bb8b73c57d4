package scheduler

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"pgregory.net/rapid"

	"github.com/perfleet/perfleet/pkg/workload"
)

// sumInOrder adds the parts left to right, as a consumer would.
func sumInOrder(parts []float64) float64 {
	sum := 0.0
	for _, p := range parts {
		sum += p
	}
	return sum
}

func TestSplitFloatExact(t *testing.T) {
	tests := []struct {
		total float64
		k     int
	}{
		{100.0 / 3, 3}, {100, 3}, {7, 4}, {0.1, 3}, {0.3, 7}, {1e-9, 9}, {123456.789, 10}, {0, 5}, {5, 1},
		{math.Nextafter(1, 2), 3}, {1e300, 1000}, {2.5, 64}, {0.7, 6},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%d", tt.total, tt.k), func(t *testing.T) {
			parts := splitFloat(tt.total, tt.k)
			if len(parts) != tt.k {
				t.Fatalf("%d parts", len(parts))
			}
			if got := sumInOrder(parts); got != tt.total {
				t.Errorf("parts %v sum to %v (%b), want %v (%b)", parts, got, got, tt.total, tt.total)
			}
			for i, p := range parts {
				if p < 0 || math.Abs(p-tt.total/float64(tt.k)) > 1e-12*tt.total {
					t.Errorf("part %d = %v, far from %v", i, p, tt.total/float64(tt.k))
				}
			}
		})
	}
}

func TestSplitInt(t *testing.T) {
	tests := []struct {
		total, k int
		want     []int
	}{
		{10, 4, []int{3, 3, 2, 2}}, {8, 4, []int{2, 2, 2, 2}}, {7, 3, []int{3, 2, 2}},
		{1, 1, []int{1}}, {0, 3, []int{0, 0, 0}}, {100, 7, []int{15, 15, 14, 14, 14, 14, 14}},
	}
	for _, tt := range tests {
		if got := splitInt(tt.total, tt.k); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitInt(%d, %d) = %v, want %v", tt.total, tt.k, got, tt.want)
		}
	}
}

func TestShardSeed(t *testing.T) {
	// splitmix64's published first outputs for state 0 (Vigna's reference).
	for i, want := range []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f} {
		if got := ShardSeed(0, i); got != want {
			t.Errorf("ShardSeed(0, %d) = %#x, want %#x", i, got, want)
		}
	}
	seen := map[uint64]int{}
	for _, job := range []uint64{0, 1, 42, math.MaxUint64} {
		clear(seen)
		for i := range 10000 {
			s := ShardSeed(job, i)
			if j, dup := seen[s]; dup {
				t.Fatalf("job %d: shards %d and %d share seed %#x", job, j, i, s)
			}
			seen[s] = i
		}
	}
	if ShardSeed(42, 3) == ShardSeed(43, 3) {
		t.Error("job seed does not change the shard seed")
	}
}

func TestSplitFloatProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		total := rapid.Float64Range(0, 1e9).Draw(t, "total")
		k := rapid.IntRange(1, 5000).Draw(t, "k")
		parts := splitFloat(total, k)
		if got := sumInOrder(parts); got != total {
			t.Fatalf("sum %v, want %v", got, total)
		}
		if last := parts[k-1]; last < 0 || math.Abs(last-total/float64(k)) > 1e-9*total {
			t.Fatalf("last part %v, share %v", last, total/float64(k))
		}
	})
	rapid.Check(t, func(t *rapid.T) { // any finite total, subnormals included
		total := rapid.Float64Min(0).Draw(t, "total")
		k := rapid.IntRange(1, 100).Draw(t, "k")
		if got := sumInOrder(splitFloat(total, k)); got != total {
			t.Fatalf("sum %v, want %v", got, total)
		}
	})
}

// TestScheduleProperty checks the split invariants on random fleets and
// levels: exact sums, every request index in exactly one shard, distinct
// seeds, no zero-concurrency shard, the budget kept.
func TestScheduleProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 40).Draw(t, "agents")
		cands := make([]Candidate, n)
		for i := range cands {
			cands[i] = live(fmt.Sprintf("agent-%02d", i))
			cands[i].AssignedStreams = rapid.IntRange(0, 3).Draw(t, "assigned")
		}
		level := workload.Level{
			Mode:         workload.ModeRequestRate,
			Concurrency:  rapid.IntRange(0, 500).Draw(t, "concurrency"),
			RequestCount: rapid.IntRange(0, 3000).Draw(t, "requests"),
			RequestRate:  rapid.Float64Range(0, 1e5).Draw(t, "rate"),
		}
		budget := rapid.IntRange(0, 50).Draw(t, "budget")
		in := Input{Seed: rapid.Uint64().Draw(t, "seed"), Levels: []workload.Level{level},
			Placement: workload.Placement{AllAgents: true, StreamsPerAgent: budget}, Candidates: cands}
		plan, err := Schedule(in)
		if budget > 0 && demand(level) > n*budget {
			if err == nil {
				t.Fatalf("demand %d over %d×%d placed", demand(level), n, budget)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		shards := plan.Levels[0].Shards
		var conc, count int
		var rates []float64
		seeds := map[uint64]bool{}
		owner := make([]int, level.RequestCount)
		for i := range owner {
			owner[i] = -1
		}
		for _, s := range shards {
			conc, count, rates = conc+s.Concurrency, count+s.RequestCount, append(rates, s.Rate)
			seeds[s.Seed] = true
			if level.Concurrency > 0 && s.Concurrency == 0 {
				t.Fatalf("zero-concurrency shard %+v", s)
			}
			inFlight := s.Concurrency
			if level.RequestCount > 0 {
				inFlight = min(inFlight, s.RequestCount)
			}
			if budget > 0 && inFlight > budget {
				t.Fatalf("shard %+v over budget %d", s, budget)
			}
			for j := range s.RequestCount {
				idx := s.Slice.Start + j*s.Slice.Stride
				if idx >= level.RequestCount || owner[idx] >= 0 {
					t.Fatalf("shard %d takes index %d (count %d, owner %d)", s.Index, idx, level.RequestCount, owner[idx])
				}
				owner[idx] = s.Index
			}
		}
		if conc != level.Concurrency || count != level.RequestCount || sumInOrder(rates) != level.RequestRate {
			t.Fatalf("sums %d %d %v, want %d %d %v", conc, count, sumInOrder(rates), level.Concurrency, level.RequestCount, level.RequestRate)
		}
		for idx, o := range owner {
			if o < 0 {
				t.Fatalf("request index %d taken by no shard", idx)
			}
		}
		if len(seeds) != len(shards) || len(shards) > n {
			t.Fatalf("%d seeds for %d shards on %d agents", len(seeds), len(shards), n)
		}
		again, err := Schedule(in)
		if err != nil || !reflect.DeepEqual(plan, again) {
			t.Fatalf("second run differs: %+v, %v", again, err)
		}
	})
}
