package report

import (
	"fmt"
	"time"
)

var (
	t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	t1 = t0.Add(1*time.Hour + 2*time.Minute + 3*time.Second)
)

// sampleBenchmark is a realistic concurrency sweep.
func sampleBenchmark() Benchmark {
	b := Benchmark{
		JobName:        "llama-3-8b-sweep",
		JobARN:         "arn:aws:sagemaker:us-east-1:123456789012:ai-benchmark-job/llama-3-8b-sweep",
		Status:         "Completed",
		Target:         "endpoint/llama-3-8b (ml.g5.12xlarge)",
		WorkloadConfig: "chat-1k-in-256-out",
		SLOs:           "TTFT p99 ≤ 2,000 ms, ITL p99 ≤ 60 ms",
		Created:        t0,
		Ended:          t1,
		Events:         []string{"09:26:53 job created", "09:27:10 level concurrency_1 started", "10:28:56 job completed"},
	}
	for i, c := range []int{1, 2, 4, 8, 16, 32, 64} {
		f := float64(c)
		tok := 1234.5 * f / (1 + f/24)
		b.Levels = append(b.Levels, Level{
			Name:                  fmt.Sprintf("concurrency_%d", c),
			Concurrency:           c,
			Requests:              int64(200 * c),
			Errors:                int64(i / 5),
			RequestThroughput:     tok / 256,
			OutputTokenThroughput: tok,
			TTFT:                  Stat{Avg: 40 + 6*f, P50: 38 + 5*f, P90: 60 + 8*f, P99: 90 + 12*f},
			ITL:                   Stat{Avg: 9 + f/4, P50: 8.7 + f/4, P90: 11 + f/3, P99: 14 + f/2},
			RequestLatency:        Stat{Avg: 2300 + 70*f, P50: 2250 + 65*f, P90: 2600 + 90*f, P99: 3000 + 120*f},
			Goodput:               tok / 256 * (1 - f/100),
			Location:              fmt.Sprintf("s3://perfleet-results/llama-3-8b-sweep/concurrency_%d/", c),
		})
	}
	return b
}

// sampleRecommendation has three ranked candidates, one failed and one
// skipped candidate.
func sampleRecommendation() Recommendation {
	mk := func(name, it string, tp, copies int, scale, lat float64, n int) []Point {
		var pts []Point
		for i := 0; i < n; i++ {
			c := 1 << i
			f := float64(c)
			pts = append(pts, Point{
				Label:           fmt.Sprintf("concurrency %d", c),
				LatencyMs:       lat * (1 + f/12),
				TokensPerSecond: scale * f / (1 + f/20),
				Feasible:        lat*(1+f/12) < 900,
			})
		}
		return pts
	}
	return Recommendation{
		JobName:      "llama-3-8b-reco",
		JobARN:       "arn:aws:sagemaker:us-east-1:123456789012:inference-recommendations-job/llama-3-8b-reco",
		Status:       "Completed",
		Goal:         "cost",
		Model:        "meta-llama/Meta-Llama-3-8B-Instruct",
		Workload:     "chat-1k-in-256-out",
		SLOs:         "TTFT p50 ≤ 900 ms",
		PointLatency: "TTFT p50",
		Created:      t0,
		Ended:        t1,
		Candidates: []Candidate{
			{
				Name: "g6e-tp1x4", InstanceType: "ml.g6e.12xlarge", Rank: 2, Status: "Completed",
				Explanation:    "Four copies, one per GPU.",
				TensorParallel: 1, Copies: 4, InstanceCount: 1, Framework: "vllm 0.6.3",
				Env:                   map[string]string{"VLLM_MAX_NUM_SEQS": "256", "OPTION_TENSOR_PARALLEL_DEGREE": "1"},
				Optimizations:         []string{"prefix caching"},
				ChildJobARN:           "arn:aws:sagemaker:us-east-1:123456789012:ai-benchmark-job/llama-3-8b-reco-g6e-tp1x4",
				OperatingPoint:        "concurrency 16",
				TTFT:                  Stat{Avg: 410, P50: 400, P90: 610, P99: 780},
				ITL:                   Stat{Avg: 21, P50: 20.5, P90: 27, P99: 33},
				RequestLatency:        Stat{Avg: 5600, P50: 5500, P90: 6400, P99: 7100},
				OutputTokenThroughput: 2345.67, RequestThroughput: 9.16,
				USDPerHour: 10.49, USDPerMillionTokens: 1.2422, PriceSource: "on-demand catalog 2025-03-01",
				InstancesForTarget: 3,
				Points:             mk("g6e", "", 1, 4, 310, 300, 7),
			},
			{
				Name: "g5-tp4", InstanceType: "ml.g5.12xlarge", Rank: 1, Status: "Completed",
				Explanation:    "Cheapest per token at the SLO.",
				TensorParallel: 4, Copies: 1, InstanceCount: 1, Framework: "vllm 0.6.3",
				Env:                   map[string]string{"OPTION_TENSOR_PARALLEL_DEGREE": "4"},
				Optimizations:         []string{"cuda graphs", "chunked prefill"},
				NotApplied:            []string{"fp8 kv-cache: unsupported on A10G"},
				ChildJobARN:           "arn:aws:sagemaker:us-east-1:123456789012:ai-benchmark-job/llama-3-8b-reco-g5-tp4",
				OperatingPoint:        "concurrency 32",
				TTFT:                  Stat{Avg: 250, P50: 240.25, P90: 390, P99: 512.5},
				ITL:                   Stat{Avg: 14, P50: 13.8, P90: 17, P99: 22},
				RequestLatency:        Stat{Avg: 3800, P50: 3700, P90: 4300, P99: 4900},
				OutputTokenThroughput: 3210.5, RequestThroughput: 12.54, Goodput: 12.1,
				USDPerHour: 7.09, USDPerMillionTokens: 0.4213, PriceSource: "on-demand catalog 2025-03-01",
				EnergyJoulesPerToken: 0.812, InstancesForTarget: 2,
				Points: mk("g5", "", 4, 1, 420, 180, 7),
			},
			{
				Name: "p4d-tp8", InstanceType: "ml.p4d.24xlarge", Rank: 3, Status: "Completed",
				TensorParallel: 8, Copies: 1, InstanceCount: 1, Framework: "vllm 0.6.3",
				ChildJobARN:           "arn:aws:sagemaker:us-east-1:123456789012:ai-benchmark-job/llama-3-8b-reco-p4d-tp8",
				OperatingPoint:        "concurrency 64",
				TTFT:                  Stat{Avg: 120, P50: 110, P90: 160, P99: 230},
				ITL:                   Stat{Avg: 8, P50: 7.6, P90: 9, P99: 11},
				RequestLatency:        Stat{Avg: 2100, P50: 2000, P90: 2400, P99: 2800},
				OutputTokenThroughput: 9876.5, RequestThroughput: 38.6,
				USDPerHour: 37.69, USDPerMillionTokens: 1.06, PriceSource: "user override",
				InstancesForTarget: 1,
				Points:             mk("p4d", "", 8, 1, 900, 90, 8),
			},
			{
				Name: "g5-tp2x2", InstanceType: "ml.g5.12xlarge", Status: "Failed",
				Reason:         "CUDA out of memory while loading weights (TP2 needs 2×24 GiB)",
				TensorParallel: 2, Copies: 2,
				ChildJobARN: "arn:aws:sagemaker:us-east-1:123456789012:ai-benchmark-job/llama-3-8b-reco-g5-tp2x2",
			},
			{
				Name: "inf2-tp2", InstanceType: "ml.inf2.8xlarge", Status: "Skipped",
				Reason: "no capacity for ml.inf2.8xlarge in us-east-1",
			},
		},
		Notes: []string{
			"Candidates were chosen from instance types with enough GPU memory for the model at fp16.",
			"Prices from the on-demand catalog dated 2025-03-01.",
		},
	}
}
