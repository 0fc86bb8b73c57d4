package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// A job that targets a registered endpoint by name sends each agent's share
// to one of the endpoint's URLs, and uses its model when the job names none.
func TestBenchmarkJobOnRegisteredEndpoint(t *testing.T) {
	simA, urlA := simTarget(t)
	simB, urlB := simTarget(t)
	_, c := fleetOf(t, 2)
	ctx := context.Background()
	if _, err := c.RegisterEndpoint(ctx, &pb.RegisterEndpointRequest{EndpointName: "pair", Urls: []string{urlA, urlB},
		ApiType: "openai-chat", ModelName: "sim-llm"}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	spec := "benchmark:\n  type: aiperf\nplacement:\n  agents: 2\nparameters:\n  concurrency: 2\n  request_count: 20\n" +
		"  isl: 16\n  osl: 4\n  extra_inputs: \"ignore_eos:true\"\n"
	if _, err := c.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "pair-wl",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: spec}}}); err != nil {
		t.Fatal(err)
	}
	// No inference_components: the endpoint's model_name is used.
	if _, err := c.CreateAIBenchmarkJob(ctx, &pb.CreateAIBenchmarkJobRequest{AiBenchmarkJobName: "on-pair", AiWorkloadConfigIdentifier: "pair-wl",
		BenchmarkTarget: &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: "pair"}},
		OutputConfig:    &pb.AIBenchmarkOutputConfig{S3OutputLocation: "file://" + out}, RoleArn: "arn:aws:iam::000000000000:role/bench"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "job on-pair finished", func() bool {
		st := jobStatus(t, c, "on-pair").GetAiBenchmarkJobStatus()
		return st != "InProgress" && st != "Stopping"
	})
	if d := jobStatus(t, c, "on-pair"); d.GetAiBenchmarkJobStatus() != "Completed" {
		t.Fatalf("job %s: %s\n%s", d.GetAiBenchmarkJobStatus(), d.GetFailureReason(), strings.Join(logLines(t, c, "on-pair"), "\n"))
	}
	a, b := simA.Stats(), simB.Stats()
	if a.RequestsCompleted != 10 || b.RequestsCompleted != 10 || a.RequestsFailed+b.RequestsFailed != 0 {
		t.Fatalf("each URL should serve one agent's 10 requests: A %+v, B %+v", a, b)
	}
	res, err := c.GetAIBenchmarkJobResults(ctx, &pb.GetAIBenchmarkJobResultsRequest{AiBenchmarkJobName: "on-pair"})
	if err != nil || len(res.GetLevels()) != 1 || res.GetLevels()[0].GetRequestCount() != 20 || res.GetLevels()[0].GetErrorRequestCount() != 0 {
		t.Fatalf("results %v, %v", res, err)
	}
	log := strings.Join(logLines(t, c, "on-pair"), "\n")
	if !strings.Contains(log, "endpoint pair ("+urlA+", "+urlB+")") {
		t.Fatalf("job log does not name the endpoint and its URLs:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(out, "on-pair", "profile_export_aiperf.json")); err != nil {
		t.Fatal(err)
	}

	// The spec's api must agree with the endpoint's.
	if _, err := c.RegisterEndpoint(ctx, &pb.RegisterEndpointRequest{EndpointName: "kserve", Urls: []string{urlA}, ApiType: "kserve-v2"}); err != nil {
		t.Fatal(err)
	}
	chat := strings.Replace(spec, "parameters:\n", "parameters:\n  api: openai-chat\n", 1)
	createJob(t, c, "mismatch", chat, "kserve", t.TempDir())
	eventually(t, 30*time.Second, "job mismatch failed", func() bool { return jobStatus(t, c, "mismatch").GetAiBenchmarkJobStatus() == "Failed" })
	if r := jobStatus(t, c, "mismatch").GetFailureReason(); !strings.Contains(r, `endpoint "kserve" speaks kserve-v2 but the workload spec's parameters.api is openai-chat`) {
		t.Fatalf("failure reason %q", r)
	}
}
