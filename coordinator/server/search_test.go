package server

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/perfleet/perfleet/pkg/llmsim"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// TestSLASearchFindsTheSimulatorsCapacity searches a simulator that runs at
// most 8 sequences at once: up to concurrency 8 a request starts at once
// (TTFT of a few ms), from 9 one always waits a whole request (16 tokens x
// 10 ms = 160 ms), so with ttft_sla_ms 80 on p99 the boundary is exactly 8,
// with tens of ms to spare for a loaded machine on either side.
func TestSLASearchFindsTheSimulatorsCapacity(t *testing.T) {
	prof, err := llmsim.ProfileFor("H100-80GB", 1)
	if err != nil {
		t.Fatal(err)
	}
	prof = prof.WithFixedITL(10 * time.Millisecond)
	prof.MaxNumSeqs, prof.PrefillTokensPerSec = 8, 1e7
	sim, err := llmsim.New(llmsim.Config{Models: []string{"sim-llm"}, Profile: prof, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { hs.Close(); sim.Close() })

	_, c := fleetOf(t, 1)
	out := t.TempDir()
	spec := `benchmark: {type: aiperf}
parameters:
  streaming: true
  search_recipe: max-concurrency-under-sla
  ttft_sla_ms: 80
  search_stat: p99
  concurrency_min: 1
  concurrency_max: 32
  search_max_iterations: 10
  request_count: 32
  isl: 16
  osl: 16
  extra_inputs: "ignore_eos:true"
`
	createJob(t, c, "search", spec, hs.URL, out)
	eventually(t, 3*time.Minute, "search completed", func() bool {
		d := jobStatus(t, c, "search")
		if d.GetAiBenchmarkJobStatus() == "Failed" {
			t.Fatalf("job failed: %s", d.GetFailureReason())
		}
		return d.GetAiBenchmarkJobStatus() == "Completed"
	})
	raw, err := os.ReadFile(filepath.Join(out, "search", "search_history.json"))
	if err != nil {
		t.Fatal(err)
	}
	var hist struct {
		Trials []struct {
			Concurrency int  `json:"concurrency"`
			Feasible    bool `json:"feasible"`
		} `json:"trials"`
		Boundary struct {
			FeasibleMax *struct {
				Value int `json:"value"`
			} `json:"feasible_max"`
			InfeasibleMin *struct {
				Value       int `json:"value"`
				FirstBreach struct {
					MetricTag string  `json:"metric_tag"`
					Stat      string  `json:"stat"`
					Observed  float64 `json:"observed"`
				} `json:"first_breach"`
			} `json:"infeasible_min"`
		} `json:"boundary_summary"`
	}
	if err := json.Unmarshal(raw, &hist); err != nil {
		t.Fatal(err)
	}
	t.Logf("trials: %+v", hist.Trials)
	b := hist.Boundary
	if b.FeasibleMax == nil || b.InfeasibleMin == nil || b.FeasibleMax.Value < 7 || b.FeasibleMax.Value > 8 || b.InfeasibleMin.Value != b.FeasibleMax.Value+1 {
		t.Fatalf("boundary %s", raw)
	}
	if fb := b.InfeasibleMin.FirstBreach; fb.MetricTag != "time_to_first_token" || fb.Stat != "p99" || fb.Observed <= 80 {
		t.Fatalf("first breach %+v", fb)
	}
	if _, err := os.Stat(filepath.Join(out, "search", "search_iter_0000", "profile_runs", "run_0000", "profile_export_aiperf.json")); err != nil {
		t.Fatal(err)
	}
	res, err := c.GetAIBenchmarkJobResults(context.Background(), &pb.GetAIBenchmarkJobResultsRequest{AiBenchmarkJobName: "search"})
	if err != nil || len(res.GetLevels()) != len(hist.Trials) {
		t.Fatalf("results: %d levels, %d trials, %v", len(res.GetLevels()), len(hist.Trials), err)
	}
	for _, l := range res.GetLevels() {
		if l.GetConcurrency() == 0 || (l.GetSlaMet() == (l.GetSlaBreach() != "")) {
			t.Fatalf("trial result %v", l)
		}
	}
}
