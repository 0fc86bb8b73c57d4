package report

import "time"

// Stat summarises one latency metric, in milliseconds.
type Stat struct {
	// Avg is the arithmetic mean.
	Avg float64
	// P50 is the median.
	P50 float64
	// P90 is the 90th percentile.
	P90 float64
	// P99 is the 99th percentile.
	P99 float64
}

// Benchmark is the input of a benchmark job report.
type Benchmark struct {
	// JobName is the benchmark job's name.
	JobName string
	// JobARN is the benchmark job's ARN.
	JobARN string
	// Status is the job status, e.g. "Completed", "Failed", "InProgress",
	// "Stopped". It is shown as a coloured badge.
	Status string
	// FailureReason, when non-empty, is shown in a highlighted box.
	FailureReason string
	// Target describes the endpoint under test (name, URL or ARN).
	Target string
	// WorkloadConfig names the workload configuration that was run.
	WorkloadConfig string
	// SLOs optionally describes the service-level objectives used to compute
	// goodput, e.g. "TTFT ≤ 200 ms, ITL ≤ 50 ms". When it is non-empty a
	// goodput of 0 is shown as 0; otherwise 0 means "no SLOs" and shows "—".
	SLOs string
	// Created is when the job was created; zero when unknown.
	Created time.Time
	// Ended is when the job ended; zero while it is running.
	Ended time.Time
	// Levels are the measured load levels, in plan order.
	Levels []Level
	// Events are optional log lines, shown in a collapsible section.
	Events []string
}

// Level is one load level of a benchmark job: a fixed concurrency or a fixed
// request rate.
type Level struct {
	// Name is the level's name, e.g. "concurrency_8" or "request_rate_20".
	Name string
	// Concurrency is the number of concurrent requests; 0 for a
	// request-rate level.
	Concurrency int
	// RequestRate is the offered load in requests per second; 0 for a
	// concurrency level.
	RequestRate float64
	// Requests is the number of requests sent.
	Requests int64
	// Errors is the number of failed requests.
	Errors int64
	// RequestThroughput is the completed requests per second.
	RequestThroughput float64
	// OutputTokenThroughput is the generated output tokens per second.
	OutputTokenThroughput float64
	// TTFT is the time to first token, in milliseconds.
	TTFT Stat
	// ITL is the inter-token latency, in milliseconds.
	ITL Stat
	// RequestLatency is the end-to-end request latency, in milliseconds.
	RequestLatency Stat
	// Goodput is the rate of requests meeting the SLOs, in requests per
	// second; 0 when no SLOs were set.
	Goodput float64
	// Location is where the level's AIPerf files are (a path or URI).
	Location string
}

// Recommendation is the input of a recommendation job report.
type Recommendation struct {
	// JobName is the recommendation job's name.
	JobName string
	// JobARN is the recommendation job's ARN.
	JobARN string
	// Status is the job status, e.g. "Completed", "Failed", "InProgress".
	Status string
	// FailureReason, when non-empty, is shown in a highlighted box.
	FailureReason string
	// Goal is the optimisation goal: "ttft-ms", "throughput" or "cost"
	// (other values are shown as they are).
	Goal string
	// Model names the model being served.
	Model string
	// Workload names the workload the candidates were measured with.
	Workload string
	// SLOs optionally describes the service-level objectives a candidate's
	// operating point had to meet.
	SLOs string
	// PointLatency names the latency metric in [Point.LatencyMs], used as
	// the Pareto chart's x axis label, e.g. "TTFT p50" or
	// "Request latency p50". Empty means "Latency p50".
	PointLatency string
	// Created is when the job was created; zero when unknown.
	Created time.Time
	// Ended is when the job ended; zero while it is running.
	Ended time.Time
	// Candidates lists all candidates, including failed and skipped ones.
	// Candidates with Rank > 0 are shown in rank order; the others are
	// listed with their reasons.
	Candidates []Candidate
	// Notes are free-form remarks, e.g. how candidates were chosen or the
	// price catalog's date.
	Notes []string
}

// Candidate is one deployment configuration evaluated by a recommendation
// job.
type Candidate struct {
	// Name identifies the candidate.
	Name string
	// InstanceType is the instance type, e.g. "ml.g5.12xlarge".
	InstanceType string
	// Rank is the candidate's rank, 1 being the recommendation; 0 means
	// unranked (failed, skipped or not meeting the SLOs).
	Rank int
	// Status is the candidate's status, e.g. "Completed", "Failed",
	// "Skipped".
	Status string
	// Reason explains a failed, skipped or unranked candidate.
	Reason string
	// Explanation explains the candidate's configuration or rank.
	Explanation string
	// TensorParallel is the tensor-parallel degree of one model copy.
	TensorParallel int
	// Copies is the number of model copies per instance.
	Copies int
	// InstanceCount is the number of instances the candidate was measured on.
	InstanceCount int
	// Framework is the serving framework, e.g. "vllm 0.6.3".
	Framework string
	// Env holds the environment variables the candidate was deployed with.
	Env map[string]string
	// Optimizations lists the optimisations applied.
	Optimizations []string
	// NotApplied lists optimisations that were considered but not applied,
	// usually with the reason, e.g. "fp8 kv-cache: unsupported on A10G".
	NotApplied []string
	// ChildJobARN is the ARN of the benchmark job that measured the
	// candidate.
	ChildJobARN string
	// OperatingPoint describes the best SLO-feasible load, e.g.
	// "concurrency 16".
	OperatingPoint string
	// TTFT is the time to first token at the operating point, in ms.
	TTFT Stat
	// ITL is the inter-token latency at the operating point, in ms.
	ITL Stat
	// RequestLatency is the request latency at the operating point, in ms.
	RequestLatency Stat
	// OutputTokenThroughput is the output tokens per second per instance at
	// the operating point.
	OutputTokenThroughput float64
	// RequestThroughput is the requests per second per instance at the
	// operating point.
	RequestThroughput float64
	// Goodput is the rate of requests meeting the SLOs at the operating
	// point, in requests per second; 0 when not measured.
	Goodput float64
	// USDPerHour is the price of one instance per hour; 0 when unknown.
	USDPerHour float64
	// USDPerMillionTokens is the cost of one million output tokens at the
	// operating point; 0 when unknown.
	USDPerMillionTokens float64
	// PriceSource says where the price came from, e.g. "on-demand catalog
	// 2025-01-01" or "user override".
	PriceSource string
	// EnergyJoulesPerToken is the measured GPU energy per output token;
	// 0 when not measured.
	EnergyJoulesPerToken float64
	// InstancesForTarget is the number of instances needed to serve the
	// job's target load; 0 when no target load was given.
	InstancesForTarget int
	// Points are every measured load level, for the Pareto chart.
	Points []Point
}

// Point is one measured load level of a candidate.
type Point struct {
	// Label names the load level, e.g. "concurrency 16".
	Label string
	// LatencyMs is the latency metric named by
	// [Recommendation.PointLatency], in milliseconds.
	LatencyMs float64
	// TokensPerSecond is the output tokens per second per instance.
	TokensPerSecond float64
	// Feasible reports whether the level met the SLOs; infeasible points
	// are drawn hollow.
	Feasible bool
	// Operating marks the candidate's operating point. When no point of a
	// candidate is marked, the point whose Label equals
	// [Candidate.OperatingPoint] is used, else the feasible point with the
	// highest throughput.
	Operating bool
}
