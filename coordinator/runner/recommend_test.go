package runner

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/workload"
)

func agent(id, typ, model string, gpus uint32, memMiB uint64) *pb.Agent {
	return &pb.Agent{AgentId: id, InstanceType: typ, Status: "alive", Connected: true,
		Gpus: &pb.GPUSummary{Count: gpus, Model: model, MemoryMib: memMiB, Source: "simulated"}}
}

func TestModelWeightsFromName(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want float64 // GiB, 0 = unknown
	}{
		{"s3://models/llama-3.1-8b", 14.9},
		{"hf://meta-llama/Llama-3.1-70B-Instruct", 130.4},
		{"s3://m/mixtral-8x7b/", 104.3},
		{"file:///models/qwen2.5-1.5b-instruct", 2.8},
		{"s3://m/demo-llm", 0},
		{"s3://m/bert-base", 0},
	} {
		got, note := modelWeightsGiB(tc.uri)
		if math.Abs(got-tc.want) > 0.1 {
			t.Errorf("%s: %.1f GiB (%s), want %.1f", tc.uri, got, note, tc.want)
		}
	}
}

func TestPlanCandidatesChoosesLayoutBySizeAndGoal(t *testing.T) {
	fleet := []*pb.Agent{
		agent("h100-a", "lab-8xH100", "NVIDIA H100 80GB HBM3", 8, 81559),
		agent("h100-b", "lab-8xH100", "NVIDIA H100 80GB HBM3", 8, 81559),
		agent("l4-a", "ml.g6.xlarge", "NVIDIA L4", 1, 23034),
		agent("a10-a", "ml.g5.12xlarge", "NVIDIA A10G", 4, 23028),
	}
	gone := agent("l40s", "ml.g6e.xlarge", "NVIDIA L40S", 1, 46068)
	gone.Status = "failed"
	fleet = append(fleet, gone)

	// An 8B model (~15 GiB) fits one GPU of each class.
	cands, _ := planCandidates(planInput{Goal: GoalThroughput, InstanceTypes: []string{"lab-8xH100", "ml.g6.xlarge", "ml.g6e.xlarge"},
		ModelURI: "s3://m/llama-3.1-8b", Agents: fleet})
	// 8xH100 gets two layouts (8 narrow copies, one wide copy), the one-GPU
	// L4 one.
	if len(cands) != 4 {
		t.Fatalf("%d candidates", len(cands))
	}
	h, wide, l4, l40 := cands[0], cands[1], cands[2], cands[3]
	if wide.GetTensorParallelDegree() != 8 || wide.GetDeploymentConfiguration().GetCopyCountPerInstance() != 1 || wide.GetAgentId() != "h100-b" {
		t.Fatalf("wide layout: %v", wide)
	}
	if h.GetStatus() != CandidatePending || h.GetTensorParallelDegree() != 1 || h.GetDeploymentConfiguration().GetCopyCountPerInstance() != 8 ||
		h.GetAgentId() != "h100-a" || h.GetDeploymentConfiguration().GetEnvironmentVariables()[frameworkEnv] != "SIMULATOR" {
		t.Fatalf("8xH100 for throughput: %v", h)
	}
	if l4.GetTensorParallelDegree() != 1 || l4.GetDeploymentConfiguration().GetCopyCountPerInstance() != 1 {
		t.Fatalf("L4: %v", l4)
	}
	if l40.GetStatus() != CandidateSkipped || !strings.Contains(l40.GetStatusReason(), "no live agent") {
		t.Fatalf("type whose only agent failed: %v", l40)
	}

	// The TTFT goal gives each copy every GPU.
	cands, _ = planCandidates(planInput{Goal: GoalTTFT, InstanceTypes: []string{"lab-8xH100"}, ModelURI: "s3://m/llama-3.1-8b", Agents: fleet})
	if c := cands[0]; c.GetTensorParallelDegree() != 8 || c.GetDeploymentConfiguration().GetCopyCountPerInstance() != 1 {
		t.Fatalf("8xH100 for TTFT: %v", c)
	}

	// A 70B model (~130 GiB) needs TP 4 on H100s, and does not fit 4 x 24 GiB
	// A10Gs or one L4: skipped with the reason.
	cands, _ = planCandidates(planInput{Goal: GoalThroughput, InstanceTypes: []string{"lab-8xH100", "ml.g5.12xlarge", "ml.g6.xlarge"},
		ModelURI: "hf://meta-llama/Llama-3.1-70B", Agents: fleet})
	if c := cands[0]; c.GetTensorParallelDegree() != 4 || c.GetDeploymentConfiguration().GetCopyCountPerInstance() != 2 {
		t.Fatalf("70B on 8xH100: tp %d x %d (%s)", c.GetTensorParallelDegree(), c.GetDeploymentConfiguration().GetCopyCountPerInstance(), c.GetExplanation())
	}
	if c := cands[1]; c.GetTensorParallelDegree() != 8 || c.GetStatus() != CandidatePending {
		t.Fatalf("70B wide layout: %v", c)
	}
	for _, c := range cands[2:] {
		if c.GetStatus() != CandidateSkipped || !strings.Contains(c.GetStatusReason(), "do not fit") {
			t.Fatalf("70B on %s: %v", c.GetDeploymentConfiguration().GetInstanceType(), c)
		}
	}

	// Two candidates of one type go to different agents, so they run in
	// parallel.
	cands, _ = planCandidates(planInput{Goal: GoalThroughput, InstanceTypes: []string{"lab-8xH100"}, ModelURI: "m-8b", Agents: fleet})
	if len(cands) != 2 || cands[0].GetAgentId() != "h100-a" || cands[1].GetAgentId() != "h100-b" {
		t.Fatalf("agents %v", cands)
	}

	// The cost goal picks the cheapest types that fit.
	price := map[string]float64{"lab-8xH100": 16, "ml.g6.xlarge": 0.8, "ml.g5.12xlarge": 7}
	cands, notes := planCandidates(planInput{Goal: GoalCost, ModelURI: "s3://m/llama-3.1-8b", Agents: fleet,
		Price: func(t string, _ *pb.Agent) float64 { return price[t] }})
	var got []string
	for _, c := range cands {
		got = append(got, c.GetDeploymentConfiguration().GetInstanceType())
	}
	if strings.Join(got, ",") != "ml.g6.xlarge,ml.g5.12xlarge,ml.g5.12xlarge,lab-8xH100,lab-8xH100" || !strings.Contains(strings.Join(notes, ";"), "cheapest") {
		t.Fatalf("cost goal chose %v (%v)", got, notes)
	}
}

func TestOptimizationsAreHonest(t *testing.T) {
	fleet := []*pb.Agent{agent("h", "lab-8xH100", "NVIDIA H100 80GB HBM3", 8, 81559)}
	cands, _ := planCandidates(planInput{Goal: GoalThroughput, InstanceTypes: []string{"lab-8xH100"}, Framework: "VLLM", OptimizeModel: true,
		ModelURI: "s3://m/llama-3.1-8b", Agents: fleet})
	c := cands[0]
	if len(c.GetOptimizationDetails()) != 1 || c.GetOptimizationDetails()[0].GetOptimizationType() != "SpeculativeDecoding" {
		t.Fatalf("vLLM throughput: %v", c.GetOptimizationDetails())
	}
	if args := speculativeArgs(c); len(args) != 2 || args[1] != `{"method":"ngram","num_speculative_tokens":4,"prompt_lookup_max":4}` {
		t.Fatalf("speculative args %q", args)
	}
	cands, _ = planCandidates(planInput{Goal: GoalTTFT, InstanceTypes: []string{"lab-8xH100"}, Framework: "SIMULATOR", OptimizeModel: true,
		ModelURI: "s3://m/llama-3.1-8b", Agents: fleet})
	if c := cands[0]; len(c.GetOptimizationDetails()) != 0 || len(c.GetNotApplied()) != 1 || !strings.Contains(c.GetNotApplied()[0], "KernelTuning") {
		t.Fatalf("simulator TTFT: applied %v, not applied %v", c.GetOptimizationDetails(), c.GetNotApplied())
	}
	cands, _ = planCandidates(planInput{Goal: GoalTTFT, InstanceTypes: []string{"lab-8xH100"}, Framework: "VLLM", ModelURI: "s3://m/x-8b", Agents: fleet})
	if c := cands[0]; len(c.GetOptimizationDetails())+len(c.GetNotApplied()) != 0 {
		t.Fatalf("optimize_model=false: %v %v", c.GetOptimizationDetails(), c.GetNotApplied())
	}
}

// level builds a level result with TTFT p50, output tokens/s and errors.
func level(i uint32, ttft, tps float64, reqs, errs int64, good float64) *pb.LevelResult {
	return &pb.LevelResult{Index: i, RequestCount: reqs, ErrorRequestCount: errs, Metrics: []*pb.MetricSummary{
		{Tag: "time_to_first_token", P50: ttft, Avg: ttft, P99: 2 * ttft},
		{Tag: "inter_token_latency", P50: 10, Avg: 10},
		{Tag: "request_latency", P50: 500, Avg: 500},
		{Tag: "output_token_throughput", Value: tps},
		{Tag: "request_throughput", Value: tps / 100},
		{Tag: "good_request_fraction", Value: good},
	}}
}

func TestOperatingPointIsTheBestFeasibleLevel(t *testing.T) {
	plan := []workload.Level{{Index: 0, Mode: workload.ModeConcurrency, Concurrency: 1}, {Index: 1, Mode: workload.ModeConcurrency, Concurrency: 8},
		{Index: 2, Mode: workload.ModeConcurrency, Concurrency: 32}}
	levels := []*pb.LevelResult{level(0, 20, 100, 100, 0, 1), level(1, 40, 700, 100, 0, 0.95), level(2, 300, 1500, 100, 0, 0.5)}
	m, why := operatingPoint(levels, plan, slos{maxErrorRate: 0.01, goodput: true, stat: "avg"})
	if why != "" || m.concurrency != 8 || m.outTPS != 700 || math.Abs(m.goodTPS-665) > 1e-9 {
		t.Fatalf("operating point %+v (%s)", m, why)
	}
	// Without SLOs the highest-throughput level without errors wins; a
	// level over the error limit is not feasible.
	levels[2].ErrorRequestCount = 5
	m, _ = operatingPoint(levels, plan, slos{maxErrorRate: 0.01, stat: "avg"})
	if m.concurrency != 8 {
		t.Fatalf("with errors at 32: %d", m.concurrency)
	}
	ttft := 30.0
	_, why = operatingPoint(levels, plan, slos{maxErrorRate: 0.01, ttft: &ttft, stat: "p50"})
	if m2, _ := operatingPoint(levels, plan, slos{maxErrorRate: 0.01, ttft: &ttft, stat: "p50"}); m2.concurrency != 1 {
		t.Fatalf("TTFT SLA 30 ms: %d", m2.concurrency)
	}
	low := 5.0
	_, why = operatingPoint(levels, plan, slos{maxErrorRate: 0.01, ttft: &low, stat: "p50"})
	if !strings.Contains(why, "no load level met the SLOs") || !strings.Contains(why, "concurrency 1: TTFT p50 20.0 ms above 5 ms") {
		t.Fatalf("no feasible level: %q", why)
	}
}

func TestRankingPerGoalWithTiesToTheCheaper(t *testing.T) {
	mk := func(name string, ttft, tps, usd float64) *measured {
		m := &measured{cand: &pb.RecommendationCandidate{Name: name}, ttft: &pb.MetricSummary{P50: ttft}, outTPS: tps, goodTPS: tps, usdHour: usd}
		m.costPerM = costPerMillion(usd, tps)
		return m
	}
	a, b, c := mk("fast", 10, 800, 40), mk("big", 40, 5000, 98), mk("cheap", 90, 300, 0.8)
	names := func(ms []*measured) string {
		var out []string
		for _, m := range ms {
			out = append(out, m.cand.GetName())
		}
		return strings.Join(out, ",")
	}
	for goal, want := range map[string]string{GoalTTFT: "fast,big,cheap", GoalThroughput: "big,fast,cheap", GoalCost: "cheap,big,fast"} {
		ms := []*measured{c, a, b}
		rankMeasured(goal, ms)
		if got := names(ms); got != want {
			t.Errorf("%s: %s, want %s", goal, got, want)
		}
	}
	// Within 1 % the cheaper wins.
	x, y := mk("x", 10.05, 100, 5), mk("y", 10, 100, 3)
	ms := []*measured{y, x}
	rankMeasured(GoalTTFT, ms)
	if names(ms) != "y,x" {
		t.Fatalf("tie: %s", names(ms))
	}
	x.usdHour = 1
	rankMeasured(GoalTTFT, ms)
	if names(ms) != "x,y" {
		t.Fatalf("tie to the cheaper: %s", names(ms))
	}
	if got := costPerMillion(3.6, 1000); math.Abs(got-1) > 1e-12 {
		t.Fatalf("$3.60/h at 1000 tok/s = $%v per 1M tokens, want $1", got)
	}
}

func TestExpectedPerformanceRows(t *testing.T) {
	m := &measured{ttft: &pb.MetricSummary{Avg: 12.3456, P50: 11, P90: 15, P99: 20}, outTPS: 1234.5, reqTPS: 9.5, goodTPS: 1234.5,
		concurrency: 16, usdHour: 4.5, costPerM: 1.0126}
	rows := expectedPerformance(m)
	find := func(metric, stat string) *pb.ExpectedPerformance {
		for _, r := range rows {
			if r.GetMetric() == metric && r.GetStat() == stat {
				return r
			}
		}
		return nil
	}
	for _, w := range []struct{ metric, stat, value, unit string }{
		{"TimeToFirstToken", "avg", "12.346", "ms"}, {"TimeToFirstToken", "p99", "20", "ms"},
		{"OutputTokenThroughput", "avg", "1234.5", "tokens/second"}, {"RequestThroughput", "avg", "9.5", "requests/second"},
		{"ClientSideConcurrency", "avg", "16", "count"}, {"CostPerHour", "avg", "4.5", "USD"}, {"CostPerMillionTokens", "avg", "1.013", "USD"},
	} {
		r := find(w.metric, w.stat)
		if r == nil || r.GetValue() != w.value || r.GetUnit() != w.unit {
			t.Errorf("%s %s = %v, want %s %s", w.metric, w.stat, r, w.value, w.unit)
		}
	}
	if find("InterTokenLatency", "avg") != nil {
		t.Error("a metric that was not measured has rows")
	}
}

func TestChildNameFitsTheNameRule(t *testing.T) {
	long := strings.Repeat("a", 62) + "b"
	if got := childName(long, "c2"); len(got) > 63 || !strings.HasSuffix(got, "-c2") {
		t.Fatalf("%q", got)
	}
	if got := childName("rec", "c1"); got != "rec-c1" {
		t.Fatalf("%q", got)
	}
	if simulatorGPU("NVIDIA H100 80GB HBM3") != "H100" || simulatorGPU("NVIDIA A100-SXM4-80GB") != "A100" || simulatorGPU("Tesla T4") != "" {
		t.Fatal("simulator GPU mapping")
	}
}

func TestCheckpointSizeDecidesTheLayout(t *testing.T) {
	dir := t.TempDir()
	// A 40 GiB checkpoint (sparse files) needs TP 1 on an 80 GiB H100 but
	// does not fit a 24 GiB L4, whatever its name says.
	for _, name := range []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(20 << 30); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &Runner{}
	gib, note := r.checkpointSize(context.Background(), "file://"+dir)
	if math.Abs(gib-40) > 1e-9 || !strings.Contains(note, "2 weight file(s)") {
		t.Fatalf("checkpoint: %v GiB (%s)", gib, note)
	}
	fleet := []*pb.Agent{agent("h", "lab-1xH100", "NVIDIA H100 80GB HBM3", 1, 81559), agent("l", "lab-1xL4", "NVIDIA L4", 1, 23034)}
	cands, notes := planCandidates(planInput{Goal: GoalThroughput, InstanceTypes: []string{"lab-1xH100", "lab-1xL4"}, ModelURI: "file://" + dir + "/tiny-1b",
		CheckpointGiB: gib, CheckpointNote: note, Agents: fleet})
	if cands[0].GetStatus() != CandidatePending || cands[1].GetStatus() != CandidateSkipped || !strings.Contains(notes[0], "weight file") {
		t.Fatalf("candidates %v, notes %v", cands, notes)
	}
	if gib, _ := r.checkpointSize(context.Background(), "hf://org/model"); gib != 0 {
		t.Fatal("hub IDs cannot be listed")
	}
}
