package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/perfleet/perfleet/agent/daemon"
	"github.com/perfleet/perfleet/agent/gpu"
	"github.com/perfleet/perfleet/coordinator/runner"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/telemetry"
)

// observedFleet starts a one-node cluster with mutate applied and one
// connected agent ("load-a", one simulated L4) configured by agentCfg.
func observedFleet(t *testing.T, mutate func(c *Config), agentCfg func(c *daemon.Config)) (*Server, pb.InferenceOptimizationClient) {
	t.Helper()
	s := TestCluster(t, 1, func(_ int, c *Config) { mutate(c) })[0]
	spec, _ := gpu.ParseSimulated("1xL4")
	cfg := daemon.Config{ID: "load-a", GossipAddr: "127.0.0.1:0", Join: []string{s.GossipAddr()}, FastGossip: true,
		GPUs: gpu.NewSimulated(spec, gpu.SimOptions{}), SampleInterval: 100 * time.Millisecond, Heartbeat: 200 * time.Millisecond, DataDir: t.TempDir()}
	if agentCfg != nil {
		agentCfg(&cfg)
	}
	a, err := daemon.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Kill() })
	fleet := pb.NewFleetServiceClient(testConn(t, s.Addr()))
	eventually(t, 10*time.Second, "agent connected", func() bool {
		a := listAgents(t, fleet, &pb.ListAgentsRequest{Status: "alive"})["load-a"]
		return a != nil && a.GetConnected()
	})
	return s, client(t, s.Addr())
}

// runJob runs a one-level benchmark job of n requests against the simulator
// and waits until it completes.
func runJob(t *testing.T, c pb.InferenceOptimizationClient, name, spec string) {
	t.Helper()
	_, target := simTarget(t)
	createJob(t, c, name, spec, target, t.TempDir())
	eventually(t, 60*time.Second, "job "+name+" completed", func() bool {
		d := jobStatus(t, c, name)
		if d.GetAiBenchmarkJobStatus() == "Failed" {
			t.Fatalf("job failed: %s", d.GetFailureReason())
		}
		return d.GetAiBenchmarkJobStatus() == "Completed"
	})
}

const smallSpec = "benchmark:\n  type: aiperf\nparameters:\n  concurrency: 2\n  request_count: 8\n  isl: 16\n  osl: 4\n  extra_inputs: \"ignore_eos:true\"\n"

// TestMetricsEndpointServesKeySeries scrapes a node's and an agent's
// /metrics over HTTP after API calls and a job, and checks the key series
// and their values.
func TestMetricsEndpointServesKeySeries(t *testing.T) {
	agentMetrics, err := telemetry.NewMetrics("perfleet-agent")
	if err != nil {
		t.Fatal(err)
	}
	agentHTTP, err := telemetry.ServeMetrics("127.0.0.1:0", agentMetrics)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agentHTTP.Close() })
	s, c := observedFleet(t, func(c *Config) { c.MetricsAddr = "127.0.0.1:0" },
		func(c *daemon.Config) { c.MeterProvider = agentMetrics.MeterProvider() })
	if s.MetricsAddr() == "" || strings.HasSuffix(s.MetricsAddr(), ":0") {
		t.Fatalf("metrics address %q", s.MetricsAddr())
	}
	runJob(t, c, "scraped", smallSpec)
	if _, err := c.DescribeAIBenchmarkJob(context.Background(), &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: "missing"}); err == nil {
		t.Fatal("describe of a missing job succeeded")
	}

	body := scrapeMetrics(t, "http://"+s.MetricsAddr()+"/metrics")
	create := map[string]string{"method": pb.InferenceOptimization_CreateAIBenchmarkJob_FullMethodName, "code": "OK", "transport": "grpc"}
	for _, want := range []struct {
		name   string
		labels map[string]string
		ok     func(v float64) bool
		rule   string
	}{
		{MetricRaftTerm, nil, func(v float64) bool { return v >= 1 }, ">= 1"},
		{MetricRaftCommitIndex, nil, func(v float64) bool { return v >= 5 }, ">= 5"},
		{MetricRaftAppliedIndex, nil, func(v float64) bool { return v >= 5 }, ">= 5"},
		{MetricRaftLeader, nil, func(v float64) bool { return v == 1 }, "= 1"},
		{MetricRaftLastContact, nil, func(v float64) bool { return v == 0 }, "= 0 on the leader"},
		{MetricRaftLeaderChanges, nil, func(v float64) bool { return v >= 1 }, ">= 1"},
		{MetricRaftApply + "_count", map[string]string{"command": "CreateResourceCommand"}, func(v float64) bool { return v >= 2 }, ">= 2 (config and job)"},
		{MetricAPICalls, create, func(v float64) bool { return v == 1 }, "= 1"},
		{MetricAPICalls, map[string]string{"method": pb.InferenceOptimization_DescribeAIBenchmarkJob_FullMethodName, "code": "NotFound"},
			func(v float64) bool { return v == 1 }, "= 1"},
		{MetricAPIDuration + "_count", create, func(v float64) bool { return v == 1 }, "= 1"},
		{MetricJobs, map[string]string{"kind": "benchmark", "state": "Completed"}, func(v float64) bool { return v == 1 }, "= 1"},
		{MetricJobs, map[string]string{"kind": "benchmark", "state": "InProgress"}, func(v float64) bool { return v == 0 }, "= 0"},
		{MetricJobs, map[string]string{"kind": "recommendation", "state": "InProgress"}, func(v float64) bool { return v == 0 }, "= 0"},
		{MetricAgents, map[string]string{"status": "alive"}, func(v float64) bool { return v == 1 }, "= 1"},
		{MetricAgents, map[string]string{"status": "failed"}, func(v float64) bool { return v == 0 }, "= 0"},
		{MetricAgentsConnected, nil, func(v float64) bool { return v == 1 }, "= 1"},
		{runner.WindowMergeMetric + "_count", nil, func(v float64) bool { return v >= 1 }, ">= 1"},
	} {
		v, ok := sample(body, want.name, want.labels)
		if !ok {
			t.Errorf("%s%v missing", want.name, want.labels)
		} else if !want.ok(v) {
			t.Errorf("%s%v = %v, want %s", want.name, want.labels, v, want.rule)
		}
	}
	if !strings.Contains(body, `target_info{service_name="perfleet"`) {
		t.Error("no target_info naming the service")
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}

	// The agent's own listener: the load it generated and its GPUs.
	var agentBody string
	eventually(t, 5*time.Second, "agent GPU gauges", func() bool {
		agentBody = scrapeMetrics(t, "http://"+agentHTTP.Addr()+"/metrics")
		_, ok := sample(agentBody, daemon.MetricGPUPower, map[string]string{"agent": "load-a", "gpu": "0"})
		return ok
	})
	a := map[string]string{"agent": "load-a"}
	gpu0 := map[string]string{"agent": "load-a", "gpu": "0", "model": "NVIDIA L4"}
	for _, want := range []struct {
		name   string
		labels map[string]string
		ok     func(v float64) bool
	}{
		{daemon.MetricRequestsSent, a, func(v float64) bool { return v == 8 }},
		{daemon.MetricRequestsCompleted, a, func(v float64) bool { return v == 8 }},
		{daemon.MetricRequestErrors, a, func(v float64) bool { return v == 0 }},
		{daemon.MetricRequestsInFlight, a, func(v float64) bool { return v == 0 }},
		{daemon.MetricShardsRunning, a, func(v float64) bool { return v == 0 }},
		{daemon.MetricAchievedRate, a, func(v float64) bool { return v == 0 }},
		{daemon.MetricControlConnected, a, func(v float64) bool { return v == 1 }},
		{daemon.MetricGPUUtilization, gpu0, func(v float64) bool { return v >= 0 && v <= 100 }},
		{daemon.MetricGPUMemoryUsed, gpu0, func(v float64) bool { return v >= 0 }},
		{daemon.MetricGPUMemoryTotal, gpu0, func(v float64) bool { return v > 20e9 }},
		{daemon.MetricGPUPower, gpu0, func(v float64) bool { return v > 0 && v < 1000 }},
		{daemon.MetricGPUTemperature, gpu0, func(v float64) bool { return v > 0 && v < 120 }},
	} {
		if v, ok := sample(agentBody, want.name, want.labels); !ok || !want.ok(v) {
			t.Errorf("agent %s%v = %v (present %v)", want.name, want.labels, v, ok)
		}
	}
	if t.Failed() {
		t.Logf("agent scrape:\n%s", agentBody)
	}
}

// sample finds the series name with at least the given labels in a
// Prometheus text exposition and returns its value.
func sample(body, name string, labels map[string]string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		got := map[string]string{}
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndex(rest, "}")
			if end < 0 {
				continue
			}
			for _, m := range labelRE.FindAllStringSubmatch(rest[1:end], -1) {
				got[m[1]] = m[2]
			}
			rest = rest[end+1:]
		}
		if !strings.HasPrefix(rest, " ") {
			continue // a longer name with the same prefix
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		return v, err == nil
	}
	return 0, false
}

var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

func scrapeMetrics(t *testing.T, url string) string {
	t.Helper()
	hc := http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// TestJobSpanTree runs a two-level job with an in-memory span exporter and
// checks the job's span tree: the create call, the job, its plan, levels,
// shards and results, and the Raft applies.
func TestJobSpanTree(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	_, c := observedFleet(t, func(c *Config) { c.TracerProvider = tp }, func(c *daemon.Config) { c.TracerProvider = tp })
	spec := "benchmark:\n  type: aiperf\nparameters:\n  concurrency: [1, 2]\n  request_count: 4\n  isl: 16\n  osl: 4\n  extra_inputs: \"ignore_eos:true\"\n"
	runJob(t, c, "traced", spec)

	// The job's span ends after its report is written, just after the
	// status change the test waited for.
	var job tracetest.SpanStub
	eventually(t, 10*time.Second, "job span ended", func() bool {
		for _, s := range exp.GetSpans() {
			if s.Name == runner.SpanBenchmarkJob && attr(s, "perfleet.job.name") == "traced" {
				job = s
				return true
			}
		}
		return false
	})
	spans := exp.GetSpans()
	children := func(parent tracetest.SpanStub, name string) []tracetest.SpanStub {
		var out []tracetest.SpanStub
		for _, s := range spans {
			if s.Parent.SpanID() == parent.SpanContext.SpanID() && s.SpanContext.TraceID() == parent.SpanContext.TraceID() && s.Name == name {
				out = append(out, s)
			}
		}
		return out
	}
	// The job is a child of the CreateAIBenchmarkJob call that created it.
	var create *tracetest.SpanStub
	for i, s := range spans {
		if s.SpanContext.SpanID() == job.Parent.SpanID() {
			create = &spans[i]
		}
	}
	if create == nil || create.Name != strings.TrimPrefix(pb.InferenceOptimization_CreateAIBenchmarkJob_FullMethodName, "/") {
		t.Fatalf("the job span's parent is %v, want the CreateAIBenchmarkJob server span", create)
	}
	creates := 0
	applies := children(*create, SpanRaftApply)
	for _, a := range applies {
		if attr(a, "perfleet.raft.command") == "CreateResourceCommand" {
			creates++
		}
	}
	if creates != 1 {
		t.Errorf("create call's raft.apply spans: %v, want one CreateResourceCommand", names(applies))
	}
	if got := attr(job, "perfleet.job.outcome"); got != "Completed" {
		t.Errorf("job outcome %q", got)
	}
	if p := children(job, runner.SpanPlan); len(p) != 1 || attr(p[0], "perfleet.levels") != "2" {
		t.Errorf("plan spans: %v", p)
	}
	if r := children(job, runner.SpanReport); len(r) != 1 {
		t.Errorf("report spans: %d", len(r))
	}
	levels := children(job, runner.SpanLevel)
	if len(levels) != 2 {
		t.Fatalf("%d level spans, want 2", len(levels))
	}
	for _, l := range levels {
		shards := children(l, runner.SpanShard)
		if len(shards) != 1 || attr(shards[0], "perfleet.agent") != "load-a" || attr(shards[0], "perfleet.ok") != "4" {
			t.Errorf("level %s: shard spans %v", attr(l, "perfleet.level.name"), shards)
		}
		results := children(l, runner.SpanResults)
		if len(results) != 1 {
			t.Fatalf("level %s: %d results spans", attr(l, "perfleet.level.name"), len(results))
		}
		if a := children(results[0], SpanRaftApply); len(a) != 1 || attr(a[0], "perfleet.raft.command") != "RecordLevelResultCommand" {
			t.Errorf("level %s: results' raft.apply spans %v", attr(l, "perfleet.level.name"), names(a))
		}
		if attr(l, "perfleet.requests") != "4" {
			t.Errorf("level %s: requests %q", attr(l, "perfleet.level.name"), attr(l, "perfleet.requests"))
		}
	}
	// The agent traced its shard runs too.
	agentShards := 0
	for _, s := range spans {
		if s.Name == daemon.SpanAgentShard && attr(s, "perfleet.sent") == "4" {
			agentShards++
		}
	}
	if agentShards != 2 {
		t.Errorf("%d agent shard spans with 4 sends, want 2", agentShards)
	}
	if t.Failed() {
		for _, s := range spans {
			t.Logf("%s %s parent %s", s.SpanContext.SpanID(), s.Name, s.Parent.SpanID())
		}
	}
}

func attr(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func names(spans []tracetest.SpanStub) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name+"("+attr(s, "perfleet.raft.command")+")")
	}
	return out
}

// exportedMetrics are every series name the coordinator and the agent
// export.
var exportedMetrics = []string{MetricRaftTerm, MetricRaftCommitIndex, MetricRaftAppliedIndex, MetricRaftLastIndex, MetricRaftLastContact,
	MetricRaftLeader, MetricRaftLeaderChanges, MetricRaftApply, MetricAPICalls, MetricAPIDuration, MetricJobs, MetricAgents,
	MetricAgentsConnected, runner.WindowMergeMetric,
	daemon.MetricShardsRunning, daemon.MetricRequestsInFlight, daemon.MetricAchievedRate, daemon.MetricTargetRate, daemon.MetricScheduleLag,
	daemon.MetricRequestsSent, daemon.MetricRequestsCompleted, daemon.MetricRequestErrors, daemon.MetricLateSends, daemon.MetricDroppedSends,
	daemon.MetricControlConnected, daemon.MetricGPUUtilization, daemon.MetricGPUMemoryUsed, daemon.MetricGPUMemoryTotal, daemon.MetricGPUPower,
	daemon.MetricGPUTemperature, daemon.MetricGPUSMClock}

// TestDashboardUsesExportedMetrics checks that the Grafana dashboard queries
// only series perfleet exports, covers all of them, and reads them from its
// Prometheus datasource variable.
func TestDashboardUsesExportedMetrics(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "perfleet.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Templating struct {
			List []struct{ Name, Type, Query any }
		}
		Panels []struct {
			Type, Title string
			Datasource  struct{ Type, UID string }
			Targets     []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	hasDS := false
	for _, v := range dash.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		t.Error("no Prometheus datasource variable")
	}
	known := map[string]bool{}
	for _, m := range exportedMetrics {
		known[m] = true
	}
	used := map[string]bool{}
	series := regexp.MustCompile(`perfleet_[a-z0-9_]+`)
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %q, %d queries", p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, q := range p.Targets {
			for _, name := range series.FindAllString(q.Expr, -1) {
				base := name
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if b, ok := strings.CutSuffix(name, suffix); ok && known[b] {
						base = b
					}
				}
				if !known[base] {
					t.Errorf("panel %q queries %s, which perfleet does not export", p.Title, name)
				}
				used[base] = true
			}
		}
	}
	for _, m := range exportedMetrics {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}
