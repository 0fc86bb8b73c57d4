package endpoint_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func components(n int) []*pb.InferenceComponentRef {
	out := make([]*pb.InferenceComponentRef, n)
	for i := range out {
		out[i] = &pb.InferenceComponentRef{Identifier: fmt.Sprintf("ic-%d", i)}
	}
	return out
}

func TestCreateBenchmarkJobRules(t *testing.T) {
	const ep = "benchmark_target.endpoint"
	const vpc = "network_config.vpc_config"
	const out = "output_config.s3_output_location"
	type req = pb.CreateAIBenchmarkJobRequest
	cases := []struct {
		name string
		set  func(r *req)
		w    *want // nil: the request must succeed
	}{
		{"valid", func(r *req) {}, nil},
		{"workload config ARN", func(r *req) { r.AiWorkloadConfigIdentifier = scope.Build(account, "ai-workload-config", "wl") }, nil},
		{"unregistered endpoint name", func(r *req) { r.BenchmarkTarget.Endpoint.Identifier = "my-endpoint" },
			ptr(invalid(ep+".identifier", `names no registered endpoint "my-endpoint"`))},
		{"https target, 10 components", func(r *req) {
			r.BenchmarkTarget.Endpoint.Identifier = "https://llm.internal:8443/v1"
			r.BenchmarkTarget.Endpoint.InferenceComponents = components(10)
		}, nil},
		{"file output", func(r *req) { r.OutputConfig.S3OutputLocation = "file:///var/lib/perfleet/results" }, nil},
		{"no network config", func(r *req) { r.NetworkConfig = nil }, nil},
		{"5 groups, 16 subnets", func(r *req) {
			r.NetworkConfig.VpcConfig = &pb.VpcConfig{SecurityGroupIds: ids("sg", 5), Subnets: ids("subnet", 16)}
		}, nil},

		{"empty role_arn", func(r *req) { r.RoleArn = "" }, ptr(invalid("role_arn", "is required"))},
		{"short role_arn", func(r *req) { r.RoleArn = "arn:aws:iam::1:role" }, ptr(invalid("role_arn", "20-2048 characters"))},
		{"role_arn pattern", func(r *req) { r.RoleArn = "arn:aws:iam::123456789012:user/bob" }, ptr(invalid("role_arn", "must be an IAM role ARN"))},
		{"missing output", func(r *req) { r.OutputConfig = nil }, ptr(invalid(out, "is required"))},
		{"http output", func(r *req) { r.OutputConfig.S3OutputLocation = "http://results-bucket/x" }, ptr(invalid(out, `got scheme "http"`))},
		{"relative file output", func(r *req) { r.OutputConfig.S3OutputLocation = "file://results/run1" }, ptr(invalid(out, "must be absolute"))},
		{"bad output bucket", func(r *req) { r.OutputConfig.S3OutputLocation = "s3://Results_Bucket/x" }, ptr(invalid(out, "s3 bucket"))},
		{"cloud_watch_logs set", func(r *req) { r.OutputConfig.CloudWatchLogs = []*pb.CloudWatchLogs{{LogStreamName: "s"}} },
			ptr(invalid("output_config.cloud_watch_logs", "output only"))},
		{"missing target", func(r *req) { r.BenchmarkTarget = nil }, ptr(invalid(ep, "is required"))},
		{"missing endpoint identifier", func(r *req) { r.BenchmarkTarget.Endpoint.Identifier = "" }, ptr(invalid(ep+".identifier", "is required"))},
		{"ftp target", func(r *req) { r.BenchmarkTarget.Endpoint.Identifier = "ftp://llm.internal/x" }, ptr(invalid(ep+".identifier", "must be an http(s)://host:port URL"))},
		{"target URL without host", func(r *req) { r.BenchmarkTarget.Endpoint.Identifier = "http:///v1" }, ptr(invalid(ep+".identifier", "must be an http(s)://host:port URL"))},
		{"bad endpoint name", func(r *req) { r.BenchmarkTarget.Endpoint.Identifier = "my_endpoint" }, ptr(invalid(ep+".identifier", "must match"))},
		{"257-char target", func(r *req) { r.BenchmarkTarget.Endpoint.Identifier = "http://h/" + strings.Repeat("p", 248) }, ptr(invalid(ep+".identifier", "at most 256 characters"))},
		{"64-char container hostname", func(r *req) { r.BenchmarkTarget.Endpoint.TargetContainerHostname = strings.Repeat("h", 64) },
			ptr(invalid(ep+".target_container_hostname", "at most 63 characters"))},
		{"11 inference components", func(r *req) { r.BenchmarkTarget.Endpoint.InferenceComponents = components(11) },
			ptr(invalid(ep+".inference_components", "at most 10 components, got 11"))},
		{"empty component identifier", func(r *req) { r.BenchmarkTarget.Endpoint.InferenceComponents[0].Identifier = "" },
			ptr(invalid(ep+".inference_components[0].identifier", "is required"))},
		{"no security groups", func(r *req) { r.NetworkConfig.VpcConfig.SecurityGroupIds = nil }, ptr(invalid(vpc+".security_group_ids", "1-5 IDs, got 0"))},
		{"6 security groups", func(r *req) { r.NetworkConfig.VpcConfig.SecurityGroupIds = ids("sg", 6) }, ptr(invalid(vpc+".security_group_ids", "1-5 IDs, got 6"))},
		{"no subnets", func(r *req) { r.NetworkConfig.VpcConfig.Subnets = nil }, ptr(invalid(vpc+".subnets", "1-16 subnets, got 0"))},
		{"17 subnets", func(r *req) { r.NetworkConfig.VpcConfig.Subnets = ids("subnet", 17) }, ptr(invalid(vpc+".subnets", "1-16 subnets, got 17"))},
		{"bad security group ID", func(r *req) { r.NetworkConfig.VpcConfig.SecurityGroupIds = []string{"sg_1"} }, ptr(invalid(vpc+".security_group_ids[0]", "[-0-9a-zA-Z]+"))},
		{"bad subnet ID", func(r *req) { r.NetworkConfig.VpcConfig.Subnets = []string{strings.Repeat("s", 33)} }, ptr(invalid(vpc+".subnets[0]", "1-32 characters"))},
	}
	v := withWorkloads(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := benchReq(fmt.Sprintf("bench-%d", i))
			tc.set(r)
			arn, err := v.createBench(r)
			if tc.w == nil {
				if err != nil {
					t.Fatalf("valid request failed: %v", err)
				}
				if want := scope.Build(account, state.KindBenchmark, r.GetAiBenchmarkJobName()); arn != want {
					t.Fatalf("ARN = %q, want %q", arn, want)
				}
				return
			}
			checkErr(t, err, *tc.w)
		})
	}
}

func TestDescribeBenchmarkJobReturnsWhatWasCreated(t *testing.T) {
	v := withWorkloads(t)
	req := benchReq("b1")
	req.AiWorkloadConfigIdentifier = scope.Build(account, state.KindWorkloadConfig, "wl")
	arn := v.mustCreateBench(req)
	got, err := v.e.DescribeAIBenchmarkJob(v.ctx, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: arn})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetAiBenchmarkJobArn() != arn || got.GetAiBenchmarkJobStatus() != state.StatusInProgress ||
		got.GetAiWorkloadConfigIdentifier() != req.GetAiWorkloadConfigIdentifier() || got.GetRoleArn() != roleARN ||
		!proto.Equal(got.GetBenchmarkTarget(), req.GetBenchmarkTarget()) ||
		got.GetOutputConfig().GetS3OutputLocation() != req.GetOutputConfig().GetS3OutputLocation() ||
		!proto.Equal(got.GetNetworkConfig(), req.GetNetworkConfig()) || !got.GetCreationTime().AsTime().Equal(t0) {
		t.Fatalf("Describe = %v", got)
	}
	// Describe names the job's log stream (output only, as in SageMaker).
	logs := got.GetOutputConfig().GetCloudWatchLogs()
	if len(logs) != 1 || logs[0].GetLogStreamName() != "b1" ||
		logs[0].GetLogGroupArn() != "arn:aws:logs:us-east-1:"+account+":log-group:/perfleet/ai-benchmark-jobs" {
		t.Fatalf("cloud_watch_logs = %v", logs)
	}
	// The list shows the resolved workload config name, not the ARN.
	list, err := v.e.ListAIBenchmarkJobs(v.ctx, &pb.ListAIBenchmarkJobsRequest{})
	if err != nil || len(list.GetAiBenchmarkJobs()) != 1 || list.GetAiBenchmarkJobs()[0].GetAiWorkloadConfigName() != "wl" {
		t.Fatalf("List = %v, %v", list, err)
	}
}
