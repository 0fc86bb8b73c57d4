package server

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/perfleet/perfleet/agent/daemon"
	"github.com/perfleet/perfleet/agent/gpu"
	"github.com/perfleet/perfleet/agent/modelserver"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// The three classes of the ranking fleet. Their performance models give a
// known answer (prompts of 128 tokens, 16 output tokens, TTFT SLO 250 ms,
// levels at concurrency 2 and 16):
//
//	fast  1 x H200, batch capped at 2: the quickest prefill (TTFT ~5 ms at
//	      concurrency 2) but only 2 requests at a time, so concurrency 16
//	      breaks the TTFT SLO
//	big   2 x A100: slower per request, and 16 prompts arriving together
//	      queue for prefill (TTFT p50 ~30-50 ms), but the most tokens/s
//	cheap 1 x L4 priced at $0.05/hour: slow (ITL ~55 ms; only concurrency 2
//	      meets the SLO) and by far the lowest cost per token
const rankingSpec = `benchmark: {type: aiperf}
parameters:
  model: rank-llm
  concurrency: [2, 16]
  request_count: 32
  prompt_input_tokens_mean: 128
  prompt_input_tokens_stddev: 0
  output_tokens_mean: 16
  extra_inputs: "ignore_eos:true"
  goodput: "time_to_first_token:250"
  random_seed: 7
`

const rankingPrices = `instances:
  lab-1xH200: {usd_per_hour: 3.00}
  lab-2xA100: {usd_per_hour: 4.00}
  lab-1xL4: {usd_per_hour: 0.05}
`

// rankingFleet starts a one-node cluster with one agent of each class.
func rankingFleet(t *testing.T) (*Server, pb.InferenceOptimizationClient, string) {
	t.Helper()
	bin := buildAgent(t)
	prices := filepath.Join(t.TempDir(), "prices.yaml")
	if err := os.WriteFile(prices, []byte(rankingPrices), 0o600); err != nil {
		t.Fatal(err)
	}
	servers := TestCluster(t, 1, func(_ int, c *Config) { c.PricingFile = prices })
	s := servers[0]
	logs := t.TempDir()
	for _, a := range []struct{ id, gpus, typ string }{{"fast", "1xH200-141GB", "lab-1xH200"}, {"big", "2xA100-80GB", "lab-2xA100"}, {"cheap", "1xL4", "lab-1xL4"}} {
		spec, err := gpu.ParseSimulated(a.gpus)
		if err != nil {
			t.Fatal(err)
		}
		ms := modelserver.Config{Executable: bin, LogDir: filepath.Join(logs, a.id), CacheDir: t.TempDir(), StopGrace: 5 * time.Second}
		if a.id == "fast" {
			ms.Programs = map[modelserver.Framework][]string{modelserver.FrameworkSimulator: {bin, "simulate", "--max-num-seqs", "2"}}
		}
		d, err := daemon.Start(daemon.Config{ID: a.id, InstanceType: a.typ, GossipAddr: "127.0.0.1:0", Join: []string{s.GossipAddr()}, FastGossip: true,
			GPUs: gpu.NewSimulated(spec, gpu.SimOptions{Seed: a.id}), Heartbeat: 200 * time.Millisecond, DataDir: t.TempDir(), ModelServers: ms,
			SampleInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Kill() })
	}
	fleet := pb.NewFleetServiceClient(testConn(t, s.Addr()))
	eventually(t, 15*time.Second, "agents connected", func() bool {
		n := 0
		for _, a := range listAgents(t, fleet, &pb.ListAgentsRequest{Status: "alive"}) {
			if a.GetConnected() {
				n++
			}
		}
		return n == 3
	})
	c := client(t, s.Addr())
	if _, err := c.CreateAIWorkloadConfig(context.Background(), &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "rank-wl",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: rankingSpec}}}); err != nil {
		t.Fatal(err)
	}
	return s, c, t.TempDir()
}

func recRequest(name, goal, out string, types ...string) *pb.CreateAIRecommendationJobRequest {
	f := false
	return &pb.CreateAIRecommendationJobRequest{AiRecommendationJobName: name, AiWorkloadConfigIdentifier: "rank-wl",
		ModelSource: &pb.ModelSource{S3: &pb.S3ModelSource{S3Uri: "s3://models/rank-llm-8b"}}, OptimizeModel: &f,
		OutputConfig:      &pb.AIRecommendationOutputConfig{S3OutputLocation: "file://" + out},
		PerformanceTarget: &pb.PerformanceTarget{Constraints: []*pb.PerformanceConstraint{{Metric: goal}}},
		RoleArn:           "arn:aws:iam::000000000000:role/rec", ComputeSpec: &pb.ComputeSpec{InstanceTypes: types}}
}

// waitRec waits for a recommendation job to end.
func waitRec(t *testing.T, c pb.InferenceOptimizationClient, name string, timeout time.Duration) *pb.DescribeAIRecommendationJobResponse {
	t.Helper()
	var d *pb.DescribeAIRecommendationJobResponse
	eventually(t, timeout, name+" ends", func() bool {
		var err error
		d, err = c.DescribeAIRecommendationJob(context.Background(), &pb.DescribeAIRecommendationJobRequest{AiRecommendationJobName: name})
		if err != nil {
			t.Fatal(err)
		}
		switch d.GetAiRecommendationJobStatus() {
		case "Completed", "Failed", "Stopped":
			return true
		}
		return false
	})
	return d
}

func TestRecommendationRanksEachGoalsWinnerFirst(t *testing.T) {
	_, c, out := rankingFleet(t)
	ctx := context.Background()
	types := []string{"lab-1xH200", "lab-2xA100", "lab-1xL4"}
	for _, tc := range []struct {
		goal, want string
		types      []string
	}{
		{"ttft-ms", "lab-1xH200", types},
		{"throughput", "lab-2xA100", types},
		{"cost", "lab-1xL4", nil}, // the cost goal chooses the types itself
	} {
		name := "rank-" + strings.ReplaceAll(tc.goal, "-ms", "")
		if _, err := c.CreateAIRecommendationJob(ctx, recRequest(name, tc.goal, out, tc.types...)); err != nil {
			t.Fatalf("%s: %v", tc.goal, err)
		}
		d := waitRec(t, c, name, 3*time.Minute)
		if d.GetAiRecommendationJobStatus() != "Completed" {
			t.Fatalf("%s: %s: %s (candidates %v)", tc.goal, d.GetAiRecommendationJobStatus(), d.GetFailureReason(), d.GetCandidates())
		}
		recs := d.GetRecommendations()
		for _, r := range recs {
			t.Logf("%s: %s", tc.goal, r.GetRecommendationDescription())
		}
		// 2xA100 gets a second layout (one copy over both GPUs) for the
		// throughput and cost goals.
		want := 3
		if tc.goal != "ttft-ms" {
			want = 4
		}
		if len(recs) != want {
			t.Fatalf("%s: %d recommendations: %v", tc.goal, len(recs), d.GetCandidates())
		}
		if got := recs[0].GetDeploymentConfiguration().GetInstanceType(); got != tc.want {
			var lines []string
			for _, r := range recs {
				lines = append(lines, r.GetRecommendationDescription())
			}
			t.Fatalf("%s: first is %s, want %s:\n%s", tc.goal, got, tc.want, strings.Join(lines, "\n"))
		}
		// Every recommendation is backed by a completed child job that
		// ListAIBenchmarkJobs shows under a name derived from the parent.
		for _, r := range recs {
			child := r.GetAiBenchmarkJobArn()[strings.LastIndex(r.GetAiBenchmarkJobArn(), "/")+1:]
			if !strings.HasPrefix(child, name+"-c") {
				t.Fatalf("child job name %q", child)
			}
			bj, err := c.DescribeAIBenchmarkJob(ctx, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: child})
			if err != nil || bj.GetAiBenchmarkJobStatus() != "Completed" {
				t.Fatalf("child %s: %v %v", child, bj.GetAiBenchmarkJobStatus(), err)
			}
			rows := map[string]string{}
			for _, p := range r.GetExpectedPerformance() {
				rows[p.GetMetric()+"/"+p.GetStat()] = p.GetValue() + " " + p.GetUnit()
			}
			for _, k := range []string{"TimeToFirstToken/p50", "InterTokenLatency/p50", "RequestLatency/p99", "OutputTokenThroughput/avg",
				"RequestThroughput/avg", "ClientSideConcurrency/avg", "CostPerHour/avg", "CostPerMillionTokens/avg",
				"GpuUtilization/avg", "EnergyPerToken/avg"} {
				if rows[k] == "" {
					t.Fatalf("%s: no %s row in %v", child, k, rows)
				}
			}
		}
		for _, cand := range d.GetCandidates() {
			if cand.GetRank() == 0 || cand.GetSetupTime().AsDuration() <= 0 || cand.GetStatus() != "Completed" {
				t.Fatalf("candidate %v", cand)
			}
		}
	}
	list, err := c.ListAIBenchmarkJobs(ctx, &pb.ListAIBenchmarkJobsRequest{NameContains: "rank-cost-c"})
	if err != nil || len(list.GetAiBenchmarkJobs()) != 4 {
		t.Fatalf("children listed: %v %v", list, err)
	}
	var doc struct {
		Goal       string `json:"goal"`
		Candidates []struct {
			Rank         int      `json:"rank"`
			InstanceType string   `json:"instance_type"`
			USDPerMillon *float64 `json:"usd_per_million_output_tokens"`
			PriceSource  string   `json:"price_source"`
		} `json:"candidates"`
	}
	raw, err := os.ReadFile(filepath.Join(out, "rank-cost", "recommendations.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Goal != "cost" || len(doc.Candidates) != 4 || doc.Candidates[0].Rank != 1 ||
		doc.Candidates[0].InstanceType != "lab-1xL4" || doc.Candidates[0].USDPerMillon == nil || doc.Candidates[0].PriceSource == "" {
		t.Fatalf("recommendations.json: %v\n%s", err, raw)
	}
	if _, err := os.Stat(filepath.Join(out, "rank-cost", "report.html")); err != nil {
		t.Fatalf("report.html: %v", err)
	}
}

func TestRecommendationCandidateFailuresAndStop(t *testing.T) {
	bin := buildAgent(t)
	servers := TestCluster(t, 1, nil)
	s := servers[0]
	// "broken" starts a simulator with a flag it refuses, so its server
	// never becomes ready.
	logs := t.TempDir()
	for _, a := range []struct{ id, typ string }{{"ok", "lab-1xH100"}, {"broken", "lab-1xL4"}} {
		spec, _ := gpu.ParseSimulated("1xH100-80GB")
		ms := modelserver.Config{Executable: bin, LogDir: filepath.Join(logs, a.id), CacheDir: t.TempDir(), StopGrace: 5 * time.Second}
		if a.id == "broken" {
			ms.Programs = map[modelserver.Framework][]string{modelserver.FrameworkSimulator: {bin, "simulate", "--no-such-flag"}}
		}
		d, err := daemon.Start(daemon.Config{ID: a.id, InstanceType: a.typ, GossipAddr: "127.0.0.1:0", Join: []string{s.GossipAddr()}, FastGossip: true,
			GPUs: gpu.NewSimulated(spec, gpu.SimOptions{Seed: a.id}), Heartbeat: 200 * time.Millisecond, DataDir: t.TempDir(), ModelServers: ms,
			SampleInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Kill() })
	}
	fleet := pb.NewFleetServiceClient(testConn(t, s.Addr()))
	eventually(t, 15*time.Second, "agents connected", func() bool {
		as := listAgents(t, fleet, &pb.ListAgentsRequest{Status: "alive"})
		return as["ok"].GetConnected() && as["broken"].GetConnected()
	})
	c := client(t, s.Addr())
	ctx := context.Background()
	long := strings.Replace(rankingSpec, "request_count: 32", "benchmark_duration: 120", 1)
	if long == rankingSpec {
		t.Fatal("the long workload is not longer than rankingSpec: update the replacement")
	}
	for name, spec := range map[string]string{"rank-wl": rankingSpec, "long-wl": long} {
		if _, err := c.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: name,
			AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: spec}}}); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()

	// A candidate whose server fails is listed with its reason; the other
	// still makes a recommendation.
	if _, err := c.CreateAIRecommendationJob(ctx, recRequest("one-fails", "ttft-ms", out, "lab-1xH100", "lab-1xL4")); err != nil {
		t.Fatal(err)
	}
	d := waitRec(t, c, "one-fails", 2*time.Minute)
	if d.GetAiRecommendationJobStatus() != "Completed" || len(d.GetRecommendations()) != 1 {
		t.Fatalf("%s %s %v", d.GetAiRecommendationJobStatus(), d.GetFailureReason(), d.GetCandidates())
	}
	var broken *pb.RecommendationCandidate
	for _, cand := range d.GetCandidates() {
		if cand.GetAgentId() == "broken" {
			broken = cand
		}
	}
	if broken.GetStatus() != "Failed" || !strings.Contains(broken.GetStatusReason(), "model server did not start") ||
		!strings.Contains(broken.GetStatusReason(), "no-such-flag") {
		t.Fatalf("broken candidate: %v", broken)
	}

	// Stop in the middle of the benchmark tears every server down.
	req := recRequest("stopped", "ttft-ms", out, "lab-1xH100")
	req.AiWorkloadConfigIdentifier = "long-wl"
	if _, err := c.CreateAIRecommendationJob(ctx, req); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "candidate benchmarking", func() bool {
		d, _ := c.DescribeAIRecommendationJob(ctx, &pb.DescribeAIRecommendationJobRequest{AiRecommendationJobName: "stopped"})
		return len(d.GetCandidates()) == 1 && d.GetCandidates()[0].GetStatus() == "Benchmarking"
	})
	if simulators(t, bin) == 0 {
		t.Fatal("no simulator process while benchmarking")
	}
	// Watching the child job shows the candidate's GPU utilisation live.
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	watch, err := c.WatchAIBenchmarkJob(wctx, &pb.WatchAIBenchmarkJobRequest{AiBenchmarkJobName: "stopped-c1"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		u, err := watch.Recv()
		if err != nil {
			child, _ := c.DescribeAIBenchmarkJob(ctx, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: "stopped-c1"})
			lg, _ := c.GetAIBenchmarkJobLog(ctx, &pb.GetAIBenchmarkJobLogRequest{AiBenchmarkJobName: "stopped-c1"})
			t.Fatalf("no live GPU utilisation for agent ok: %v; child job %s (%s); log: %v", err,
				child.GetAiBenchmarkJobStatus(), child.GetFailureReason(), lg.GetEvents())
		}
		if _, ok := u.GetLevel().GetGpuUtilization()["ok"]; ok {
			break
		}
	}
	wcancel()
	if _, err := c.StopAIRecommendationJob(ctx, &pb.StopAIRecommendationJobRequest{AiRecommendationJobName: "stopped"}); err != nil {
		t.Fatal(err)
	}
	d = waitRec(t, c, "stopped", time.Minute)
	if d.GetAiRecommendationJobStatus() != "Stopped" || d.GetCandidates()[0].GetStatus() != "Stopped" {
		t.Fatalf("after stop: %s %v", d.GetAiRecommendationJobStatus(), d.GetCandidates())
	}
	child, err := c.DescribeAIBenchmarkJob(ctx, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: "stopped-c1"})
	if err != nil || child.GetAiBenchmarkJobStatus() != "Stopped" {
		t.Fatalf("child after stop: %v %v", child.GetAiBenchmarkJobStatus(), err)
	}
	eventually(t, 15*time.Second, "no simulator process left", func() bool { return simulators(t, bin) == 0 })
}

// simulators counts running processes of bin's simulate subcommand.
func simulators(t *testing.T, bin string) int {
	t.Helper()
	out, _ := exec.Command("pgrep", "-f", bin+" simulate").Output()
	return len(strings.Fields(string(out)))
}

func TestRecommendationSurvivesLeaderLoss(t *testing.T) {
	bin := buildAgent(t)
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	var join []string
	for _, s := range servers {
		join = append(join, s.GossipAddr())
	}
	spec, _ := gpu.ParseSimulated("1xH100-80GB")
	d, err := daemon.Start(daemon.Config{ID: "gpu-f", InstanceType: "lab-1xH100", GossipAddr: "127.0.0.1:0", Join: join, FastGossip: true,
		GPUs: gpu.NewSimulated(spec, gpu.SimOptions{Seed: "f"}), Heartbeat: 200 * time.Millisecond, DataDir: t.TempDir(),
		ModelServers: modelserver.Config{Executable: bin, LogDir: t.TempDir(), CacheDir: t.TempDir(), StopGrace: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Kill() })
	fs := followers(servers)
	c := pb.NewInferenceOptimizationClient(testConn(t, fs[0].Addr()))
	fleet := pb.NewFleetServiceClient(testConn(t, leader.Addr()))
	eventually(t, 15*time.Second, "agent connected", func() bool {
		return listAgents(t, fleet, &pb.ListAgentsRequest{})["gpu-f"].GetConnected()
	})
	ctx := context.Background()
	wl := strings.Replace(rankingSpec, "concurrency: [2, 16]", "concurrency: [1, 2, 4]", 1)
	if _, err := c.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "rank-wl",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: wl}}}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, err := c.CreateAIRecommendationJob(ctx, recRequest("failover", "ttft-ms", out, "lab-1xH100")); err != nil {
		t.Fatal(err)
	}
	// Kill the leader once the child job has finished a level.
	eventually(t, time.Minute, "child job measuring", func() bool {
		r, err := c.GetAIBenchmarkJobResults(ctx, &pb.GetAIBenchmarkJobResultsRequest{AiBenchmarkJobName: "failover-c1"})
		return err == nil && len(r.GetLevels()) >= 1
	})
	leader.Kill()
	WaitForLeader(t, fs...)
	got := waitRec(t, c, "failover", 2*time.Minute)
	if got.GetAiRecommendationJobStatus() != "Completed" || len(got.GetRecommendations()) != 1 || got.GetCandidates()[0].GetStatus() != "Completed" {
		t.Fatalf("after the leader's loss: %s %s %v", got.GetAiRecommendationJobStatus(), got.GetFailureReason(), got.GetCandidates())
	}
	child, err := c.GetAIBenchmarkJobResults(ctx, &pb.GetAIBenchmarkJobResultsRequest{AiBenchmarkJobName: "failover-c1"})
	if err != nil || len(child.GetLevels()) != 3 {
		t.Fatalf("child levels %v %v", child.GetLevels(), err)
	}
	// The new leader tore the server down.
	eventually(t, 15*time.Second, "no simulator process left", func() bool { return simulators(t, bin) == 0 })
}
