package server

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/perfleet/perfleet/agent/daemon"
	"github.com/perfleet/perfleet/agent/gpu"
	"github.com/perfleet/perfleet/pkg/llmsim"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// simTarget serves llmsim on loopback with a fast fixed inter-token latency.
func simTarget(t *testing.T) (*llmsim.Server, string) {
	t.Helper()
	prof, err := llmsim.ProfileFor("H100-80GB", 1)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := llmsim.New(llmsim.Config{Models: []string{"sim-llm"}, Profile: prof.WithFixedITL(2 * time.Millisecond), Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { hs.Close(); sim.Close() })
	return sim, hs.URL
}

// fleetOf starts a one-node cluster and n connected agents.
func fleetOf(t *testing.T, n int) (*Server, pb.InferenceOptimizationClient) {
	t.Helper()
	return fleetOfWith(t, n, nil)
}

// fleetOfWith is fleetOf with a change to the node's config.
func fleetOfWith(t *testing.T, n int, mutate func(i int, c *Config)) (*Server, pb.InferenceOptimizationClient) {
	t.Helper()
	servers := TestCluster(t, 1, mutate)
	s := servers[0]
	for i := 0; i < n; i++ {
		startL4Agent(t, s, "load-"+string(rune('a'+i)), t.TempDir())
	}
	waitAgentsConnected(t, s, n)
	return s, client(t, s.Addr())
}

// startL4Agent starts an agent with one simulated L4 that joins s with the
// fast test gossip timings, keeping its state in dir; the test kills it at
// the end.
func startL4Agent(t *testing.T, s *Server, id, dir string) *daemon.Agent {
	t.Helper()
	spec, _ := gpu.ParseSimulated("1xL4")
	a, err := daemon.Start(daemon.Config{ID: id, GossipAddr: "127.0.0.1:0", Join: []string{s.GossipAddr()}, FastGossip: true,
		GPUs: gpu.NewSimulated(spec, gpu.SimOptions{}), Heartbeat: 200 * time.Millisecond, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Kill() })
	return a
}

// waitAgentsConnected waits until n alive agents hold control streams to s.
func waitAgentsConnected(t *testing.T, s *Server, n int) {
	t.Helper()
	fleet := pb.NewFleetServiceClient(testConn(t, s.Addr()))
	eventually(t, 10*time.Second, "agents connected", func() bool {
		connected := 0
		for _, a := range listAgents(t, fleet, &pb.ListAgentsRequest{Status: "alive"}) {
			if a.GetConnected() {
				connected++
			}
		}
		return connected == n
	})
}

func createJob(t *testing.T, c pb.InferenceOptimizationClient, name, spec, target, out string) {
	t.Helper()
	createJobCtx(t, context.Background(), c, name, spec, target, out)
}

func createJobCtx(t *testing.T, ctx context.Context, c pb.InferenceOptimizationClient, name, spec, target, out string) {
	t.Helper()
	if _, err := c.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: name + "-wl",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: spec}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAIBenchmarkJob(ctx, &pb.CreateAIBenchmarkJobRequest{AiBenchmarkJobName: name, AiWorkloadConfigIdentifier: name + "-wl",
		BenchmarkTarget: &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: target, InferenceComponents: []*pb.InferenceComponentRef{{Identifier: "sim-llm"}}}},
		OutputConfig:    &pb.AIBenchmarkOutputConfig{S3OutputLocation: "file://" + out}, RoleArn: "arn:aws:iam::000000000000:role/bench"}); err != nil {
		t.Fatal(err)
	}
}

func jobStatus(t *testing.T, c pb.InferenceOptimizationClient, name string) *pb.DescribeAIBenchmarkJobResponse {
	t.Helper()
	d, err := c.DescribeAIBenchmarkJob(context.Background(), &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: name})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBenchmarkJobRunsAcrossAgents(t *testing.T) {
	sim, target := simTarget(t)
	_, c := fleetOf(t, 2)
	out := t.TempDir()
	spec := "benchmark:\n  type: aiperf\nplacement:\n  agents: 2\nparameters:\n  concurrency: [2, 4]\n  request_count: 20\n" +
		"  warmup_request_count: 4\n  isl: 16\n  osl: 8\n  extra_inputs: \"ignore_eos:true\"\n"
	createJob(t, c, "sweep", spec, target, out)
	watch, err := c.WatchAIBenchmarkJob(context.Background(), &pb.WatchAIBenchmarkJobRequest{AiBenchmarkJobName: "sweep"})
	if err != nil {
		t.Fatal(err)
	}
	var updates []*pb.WatchAIBenchmarkJobResponse
	for {
		u, err := watch.Recv()
		if err != nil {
			t.Fatalf("watch ended before the final update: %v", err)
		}
		updates = append(updates, u)
		if u.GetFinal() {
			break
		}
	}
	final := updates[len(updates)-1]
	if final.GetAiBenchmarkJobStatus() != "Completed" || final.GetLevelsFinished() != 2 {
		t.Fatalf("final update %v", final)
	}
	live := false
	for _, u := range updates {
		if l := u.GetLevel(); l != nil && l.GetAgents() == 2 && u.GetLevelsTotal() == 2 && l.GetPlannedRequestCount() == 20 {
			live = true
		}
	}
	if !live {
		t.Fatalf("no live level update among %d updates: %v", len(updates), updates)
	}
	eventually(t, 60*time.Second, "job completed", func() bool {
		d := jobStatus(t, c, "sweep")
		if d.GetAiBenchmarkJobStatus() == "Failed" {
			t.Fatalf("job failed: %s", d.GetFailureReason())
		}
		return d.GetAiBenchmarkJobStatus() == "Completed"
	})
	d := jobStatus(t, c, "sweep")
	if d.GetEndTime() == nil {
		t.Fatal("no end time")
	}
	total := 0.0
	for _, level := range []string{"concurrency_2", "concurrency_4"} {
		b, err := os.ReadFile(filepath.Join(out, "sweep", level, "profile_export_aiperf.json"))
		if err != nil {
			t.Fatalf("result file: %v", err)
		}
		var res map[string]any
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatal(err)
		}
		rc, _ := res["request_count"].(map[string]any)
		// Both agents' shards merge into exactly the level's request count.
		if rc["avg"] != 20.0 {
			t.Fatalf("%s request_count %v, want 20: %s", level, rc, b[:min(len(b), 600)])
		}
		total += rc["avg"].(float64)
		if _, err := os.Stat(filepath.Join(out, "sweep", level, "profile_export_aiperf.csv")); err != nil {
			t.Fatal(err)
		}
	}
	logResp, err := c.GetAIBenchmarkJobLog(context.Background(), &pb.GetAIBenchmarkJobLogRequest{AiBenchmarkJobName: "sweep"})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, ev := range logResp.GetEvents() {
		lines = append(lines, ev.GetLevel()+" "+ev.GetMessage())
	}
	joined := strings.Join(lines, "\n")
	for _, want := range []string{"planned 2 level(s) on agent(s) load-a, load-b", "level concurrency_2 warmup: starting",
		"level concurrency_4: done, 20 requests, 0 errors", "INFO completed 2 level(s)"} {
		if !strings.Contains(joined, want) {
			t.Fatalf("job log lacks %q:\n%s", want, joined)
		}
	}
	if logs := d.GetOutputConfig().GetCloudWatchLogs(); len(logs) != 1 || logs[0].GetLogStreamName() != "sweep" {
		t.Fatalf("describe does not name the log: %v", logs)
	}
	for _, f := range []string{"inputs.json", "MANIFEST.txt", "job.log"} {
		if _, err := os.Stat(filepath.Join(out, "sweep", f)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	manifest, _ := os.ReadFile(filepath.Join(out, "sweep", "MANIFEST.txt"))
	if !strings.Contains(string(manifest), "concurrency_4/profile_export_aiperf.json") || !strings.Contains(string(manifest), "job.log") {
		t.Fatalf("MANIFEST.txt lacks the level files:\n%s", manifest)
	}
	// Each level first ran its 4 warmup requests, which the results leave out.
	if got := sim.Stats().RequestsCompleted; float64(got) != total+2*4 {
		t.Fatalf("the simulator completed %d requests; the results count %v plus 2 warmups of 4", got, total)
	}

	// The same figures come back through the API, from the replicated state.
	res, err := c.GetAIBenchmarkJobResults(context.Background(), &pb.GetAIBenchmarkJobResultsRequest{AiBenchmarkJobName: "sweep"})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetAiBenchmarkJobStatus() != "Completed" || len(res.GetLevels()) != 2 {
		t.Fatalf("results: %v", res)
	}
	for i, l := range res.GetLevels() {
		if l.GetName() != []string{"concurrency_2", "concurrency_4"}[i] || l.GetRequestCount() != 20 || l.GetErrorRequestCount() != 0 ||
			!strings.HasSuffix(l.GetLocation(), "/sweep/"+l.GetName()) {
			t.Fatalf("level %d: %v", i, l)
		}
		var ttft *pb.MetricSummary
		for _, m := range l.GetMetrics() {
			if m.GetTag() == "time_to_first_token" {
				ttft = m
			}
		}
		if ttft == nil || ttft.GetCount() != 20 || ttft.GetAvg() <= 0 || ttft.GetP99() < ttft.GetP50() || ttft.GetUnit() != "ms" {
			t.Fatalf("level %d time_to_first_token: %v", i, ttft)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "sweep", "report.html")); err != nil {
		t.Fatalf("report.html: %v", err)
	}

	// Delete with purge_results removes the record and the result files.
	del, err := c.DeleteAIBenchmarkJob(context.Background(), &pb.DeleteAIBenchmarkJobRequest{AiBenchmarkJobName: "sweep", PurgeResults: true})
	if err != nil || del.GetPurgedObjects() < 7 {
		t.Fatalf("delete --purge-results: %v %v", del, err)
	}
	if _, err := os.Stat(filepath.Join(out, "sweep")); !os.IsNotExist(err) {
		t.Fatalf("results still there after the purge: %v", err)
	}
}

func TestStopBenchmarkJobMidLevel(t *testing.T) {
	_, target := simTarget(t)
	_, c := fleetOf(t, 2)
	spec := "benchmark:\n  type: aiperf\nplacement:\n  agents: 2\nparameters:\n  concurrency: 4\n  benchmark_duration: 60\n" +
		"  benchmark_grace_period: 1\n  isl: 16\n  osl: 64\n"
	createJob(t, c, "long", spec, target, t.TempDir())
	time.Sleep(3 * time.Second) // the level is running
	if _, err := c.StopAIBenchmarkJob(context.Background(), &pb.StopAIBenchmarkJobRequest{AiBenchmarkJobName: "long"}); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 20*time.Second, "job stopped", func() bool {
		return jobStatus(t, c, "long").GetAiBenchmarkJobStatus() == "Stopped"
	})
	t.Logf("stopped %v after Stop", took)
}

func TestBenchmarkJobSurvivesLeaderLoss(t *testing.T) {
	_, target := simTarget(t)
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	var join []string
	for _, s := range servers {
		join = append(join, s.GossipAddr())
	}
	spec, _ := gpu.ParseSimulated("1xL4")
	a, err := daemon.Start(daemon.Config{ID: "load-f", GossipAddr: "127.0.0.1:0", Join: join, FastGossip: true,
		GPUs: gpu.NewSimulated(spec, gpu.SimOptions{}), Heartbeat: 200 * time.Millisecond, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Kill() })
	fs := followers(servers)
	c := pb.NewInferenceOptimizationClient(testConn(t, fs[0].Addr()))
	fleet := pb.NewFleetServiceClient(testConn(t, leader.Addr()))
	eventually(t, 10*time.Second, "agent connected", func() bool {
		return listAgents(t, fleet, &pb.ListAgentsRequest{})["load-f"].GetConnected()
	})
	createJob(t, c, "failover", "benchmark:\n  type: aiperf\nparameters:\n  concurrency: [1, 2, 4]\n  request_count: 30\n"+
		"  isl: 16\n  osl: 32\n  extra_inputs: \"ignore_eos:true\"\n", target, t.TempDir())
	results := func() *pb.GetAIBenchmarkJobResultsResponse {
		r, err := c.GetAIBenchmarkJobResults(context.Background(), &pb.GetAIBenchmarkJobResultsRequest{AiBenchmarkJobName: "failover"})
		if err != nil {
			return nil
		}
		return r
	}
	eventually(t, 60*time.Second, "first level recorded", func() bool { return len(results().GetLevels()) >= 1 })
	first := results().GetLevels()[0]
	leader.Kill()
	WaitForLeader(t, fs...)
	eventually(t, 90*time.Second, "job completed under the new leader", func() bool {
		r := results()
		if r.GetAiBenchmarkJobStatus() == "Failed" {
			t.Fatalf("job failed: %v", jobStatus(t, c, "failover").GetFailureReason())
		}
		return r.GetAiBenchmarkJobStatus() == "Completed"
	})
	levels := results().GetLevels()
	if len(levels) != 3 {
		t.Fatalf("want 3 levels, got %v", levels)
	}
	for _, l := range levels {
		if l.GetRequestCount() != 30 {
			t.Fatalf("level %s: %d requests, want 30", l.GetName(), l.GetRequestCount())
		}
	}
	if !levels[0].GetEndTime().AsTime().Equal(first.GetEndTime().AsTime()) {
		t.Fatal("the new leader ran the finished first level again")
	}
}

func TestBenchmarkJobFailsOnSustainedErrorRate(t *testing.T) {
	prof, _ := llmsim.ProfileFor("H100-80GB", 1)
	sim, err := llmsim.New(llmsim.Config{Models: []string{"sim-llm"}, Profile: prof.WithFixedITL(2 * time.Millisecond), Seed: 3,
		Faults: llmsim.Faults{ErrorRate: 0.9, RateLimitShare: 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	sim.Start(context.Background())
	hs := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { hs.Close(); sim.Close() })
	s, c := fleetOf(t, 1)
	s.runner.ErrorWindow = 2 * time.Second
	createJob(t, c, "flaky", "benchmark:\n  type: aiperf\nparameters:\n  concurrency: 4\n  benchmark_duration: 60\n"+
		"  benchmark_grace_period: 1\n  isl: 16\n  osl: 8\n", hs.URL, t.TempDir())
	eventually(t, 30*time.Second, "job failed on its error rate", func() bool {
		return jobStatus(t, c, "flaky").GetAiBenchmarkJobStatus() == "Failed"
	})
	reason := jobStatus(t, c, "flaky").GetFailureReason()
	if !strings.Contains(reason, "above error_rate_sla 0.50") || !strings.Contains(reason, "http_") {
		t.Fatalf("failure reason %q", reason)
	}
	t.Logf("failure reason: %s", reason)
}

// TestLostAgentsShardIsReassigned kills one of a level's two agents; the
// third takes the rest of its shard and the level still sends exactly its
// request count.
func TestLostAgentsShardIsReassigned(t *testing.T) {
	prof, err := llmsim.ProfileFor("H100-80GB", 1)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := llmsim.New(llmsim.Config{Models: []string{"sim-llm"}, Profile: prof.WithFixedITL(5 * time.Millisecond), Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { hs.Close(); sim.Close() })

	servers := TestCluster(t, 1, nil)
	s := servers[0]
	s.runner.LostAfter = 2 * time.Second
	agents := map[string]*daemon.Agent{}
	for _, id := range []string{"load-a", "load-b", "load-c"} {
		agents[id] = startL4Agent(t, s, id, t.TempDir())
	}
	waitAgentsConnected(t, s, 3)
	c := client(t, s.Addr())
	spec := "benchmark:\n  type: aiperf\nplacement:\n  agents: 2\nparameters:\n  concurrency: 4\n  request_count: 80\n" +
		"  isl: 16\n  osl: 128\n  extra_inputs: \"ignore_eos:true\"\n"
	createJob(t, c, "lost", spec, hs.URL, t.TempDir())
	// Kill one of the two agents that run the level once it has sent windows.
	var victim string
	eventually(t, 30*time.Second, "level running", func() bool {
		_, lvl, ok := s.runner.Progress("000000000000", "lost")
		if !ok || lvl == nil || lvl.GetRequestCount() < 4 {
			return false
		}
		for _, line := range logLines(t, c, "lost") {
			if strings.Contains(line, "starting at") {
				for _, id := range []string{"load-a", "load-b", "load-c"} {
					if strings.Contains(line, id+" (") && victim == "" {
						victim = id
					}
				}
			}
		}
		return victim != ""
	})
	agents[victim].Kill()
	eventually(t, 90*time.Second, "job ended", func() bool {
		st := jobStatus(t, c, "lost").GetAiBenchmarkJobStatus()
		return st == "Completed" || st == "Failed"
	})
	d := jobStatus(t, c, "lost")
	if d.GetAiBenchmarkJobStatus() != "Completed" {
		t.Fatalf("job %s: %s", d.GetAiBenchmarkJobStatus(), d.GetFailureReason())
	}
	res, err := c.GetAIBenchmarkJobResults(context.Background(), &pb.GetAIBenchmarkJobResultsRequest{AiBenchmarkJobName: "lost"})
	if err != nil || len(res.GetLevels()) != 1 {
		t.Fatalf("results %v %v", res, err)
	}
	l := res.GetLevels()[0]
	if l.GetRequestCount()+l.GetErrorRequestCount() != 80 || len(l.GetNotes()) != 1 || !strings.Contains(l.GetNotes()[0], "agent "+victim+" lost") ||
		!strings.Contains(l.GetNotes()[0], "reassigned to load-") {
		t.Fatalf("level: %d requests, %d errors, notes %q", l.GetRequestCount(), l.GetErrorRequestCount(), l.GetNotes())
	}
	t.Log(l.GetNotes()[0])

	// With the two agents left both running the level, losing one fails
	// the job with a reason that names the agent and the level.
	createJob(t, c, "nospare", spec, hs.URL, t.TempDir())
	eventually(t, 30*time.Second, "second job running", func() bool {
		_, lvl, ok := s.runner.Progress("000000000000", "nospare")
		return ok && lvl != nil && lvl.GetRequestCount() >= 4
	})
	for id, a := range agents {
		if id != victim {
			a.Kill()
			victim = id
			break
		}
	}
	eventually(t, 60*time.Second, "second job failed", func() bool { return jobStatus(t, c, "nospare").GetAiBenchmarkJobStatus() == "Failed" })
	if r := jobStatus(t, c, "nospare").GetFailureReason(); !strings.Contains(r, "agent "+victim+" was lost during level") || !strings.Contains(r, "no spare agent") {
		t.Fatalf("failure reason %q", r)
	}
}

// logLines returns a job's event log.
func logLines(t *testing.T, c pb.InferenceOptimizationClient, name string) []string {
	t.Helper()
	r, err := c.GetAIBenchmarkJobLog(context.Background(), &pb.GetAIBenchmarkJobLogRequest{AiBenchmarkJobName: name})
	if err != nil {
		return nil
	}
	var out []string
	for _, ev := range r.GetEvents() {
		out = append(out, ev.GetMessage())
	}
	return out
}
