package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteSamples writes the sample reports to $PERFLEET_REPORT_SAMPLES, for
// looking at them in a browser. It is skipped when the variable is unset.
func TestWriteSamples(t *testing.T) {
	dir := os.Getenv("PERFLEET_REPORT_SAMPLES")
	if dir == "" {
		t.Skip("set PERFLEET_REPORT_SAMPLES=<dir> to write sample reports")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, f func(*os.File) error) {
		fh, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		if err := f(fh); err != nil {
			t.Fatal(err)
		}
	}
	write("benchmark.html", func(f *os.File) error { return WriteBenchmark(f, sampleBenchmark()) })
	write("recommendation.html", func(f *os.File) error { return WriteRecommendation(f, sampleRecommendation()) })
	write("recommendation-stress.html", func(f *os.File) error { return WriteRecommendation(f, stressRecommendation()) })
	write("benchmark-empty.html", func(f *os.File) error { return WriteBenchmark(f, Benchmark{JobName: "empty"}) })
	write("recommendation-empty.html", func(f *os.File) error { return WriteRecommendation(f, Recommendation{JobName: "empty"}) })
}

// stressRecommendation has long names, markup in names and many candidates.
func stressRecommendation() Recommendation {
	r := sampleRecommendation()
	long := strings.Repeat("extremely-long-candidate-name-", 8)
	r.JobName = "<script>alert(1)</script> " + long
	r.Candidates[1].Name = long
	r.Candidates[1].Env["A_VERY_LONG_ENVIRONMENT_VARIABLE"] = strings.Repeat("x", 300)
	r.Candidates[3].Reason = strings.Repeat("a long reason ", 40)
	for i := 0; i < 12; i++ {
		r.Candidates = append(r.Candidates, Candidate{
			Name: fmt.Sprintf("extra-%02d", i), InstanceType: "ml.g5.2xlarge", Rank: 4 + i, TensorParallel: 1, Copies: 1,
			OperatingPoint: "concurrency 4", OutputTokenThroughput: float64(100 * i), USDPerHour: 1.5, USDPerMillionTokens: 0.0421 * float64(i+1),
			Points: []Point{
				{Label: "concurrency 1", LatencyMs: 500 + 30*float64(i), TokensPerSecond: 200 + 50*float64(i), Feasible: true},
				{Label: "concurrency 4", LatencyMs: 800 + 30*float64(i), TokensPerSecond: 500 + 70*float64(i), Feasible: i%2 == 0},
			},
		})
	}
	return r
}
