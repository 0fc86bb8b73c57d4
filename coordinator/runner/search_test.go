package runner

import (
	"testing"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// TestSearchFindsTheBoundary drives the search's decisions against a
// target whose SLAs hold up to a known concurrency.
func TestSearchFindsTheBoundary(t *testing.T) {
	for _, tc := range []struct {
		b        bounds
		boundary int // the highest concurrency that passes; 0: none
		want     int // the feasible max found
		maxTries int
	}{
		{bounds{1, 256, 20}, 37, 37, 14},
		{bounds{1, 256, 20}, 256, 256, 9},
		{bounds{1, 256, 20}, 1000, 256, 9},
		{bounds{4, 64, 20}, 0, 0, 1},
		{bounds{1, 256, 20}, 1, 1, 3},
		{bounds{1, 256, 5}, 37, 16, 5}, // the budget ends the search early
		{bounds{8, 8, 20}, 8, 8, 1},
	} {
		var trials []trial
		for len(trials) < tc.b.iterations {
			c, done := nextConcurrency(tc.b, trials)
			if done {
				break
			}
			if c < tc.b.lo || c > tc.b.hi {
				t.Fatalf("%+v: trial at %d outside the bounds", tc, c)
			}
			trials = append(trials, trial{Iteration: len(trials), Concurrency: c, Feasible: c <= tc.boundary})
		}
		best := 0
		for _, tr := range trials {
			if tr.Feasible && tr.Concurrency > best {
				best = tr.Concurrency
			}
		}
		if best != tc.want || len(trials) > tc.maxTries {
			t.Errorf("%+v: found %d in %d trials, want %d in at most %d", tc, best, len(trials), tc.want, tc.maxTries)
		}
	}
}

func TestFirstBreachNamesTheMetric(t *testing.T) {
	ttft, e2e := 100.0, 900.0
	s := slos{maxErrorRate: 0.01, ttft: &ttft, e2e: &e2e, stat: "p90"}
	ok := &pb.LevelResult{RequestCount: 100, Metrics: []*pb.MetricSummary{{Tag: "time_to_first_token", P90: 90}, {Tag: "request_latency", P90: 800}}}
	if b := firstBreach(s, ok); b != nil {
		t.Fatalf("within the SLAs: %v", b)
	}
	slow := &pb.LevelResult{RequestCount: 100, Metrics: []*pb.MetricSummary{{Tag: "time_to_first_token", P90: 150}, {Tag: "request_latency", P90: 800}}}
	if b := firstBreach(s, slow); b == nil || b.MetricTag != "time_to_first_token" || b.Observed != 150 || b.Stat != "p90" {
		t.Fatalf("slow TTFT: %+v", b)
	}
	failing := &pb.LevelResult{RequestCount: 100, ErrorRequestCount: 5, Metrics: ok.Metrics}
	if b := firstBreach(s, failing); b == nil || b.MetricTag != "error_rate" || b.Observed != 0.05 {
		t.Fatalf("5%% errors: %+v", b)
	}
}
