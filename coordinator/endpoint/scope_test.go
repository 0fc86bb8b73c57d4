package endpoint_test

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/perfleet/perfleet/coordinator/endpoint"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func TestARNOfAnotherRegionOrPartitionIsRefused(t *testing.T) {
	v := newEnv(t)
	v.mustCreateConfig(configReq("wl"))
	for _, ident := range []string{
		"arn:aws:sagemaker:eu-west-1:" + account + ":ai-workload-config/wl",
		"arn:aws-cn:sagemaker:us-east-1:" + account + ":ai-workload-config/wl",
	} {
		_, err := v.e.DescribeAIWorkloadConfig(v.ctx, &pb.DescribeAIWorkloadConfigRequest{AiWorkloadConfigName: ident})
		checkErr(t, endpoint.ToStatus(err), want{code: codes.InvalidArgument, reason: "ValidationException", field: "ai_workload_config_name", rule: "this cluster serves partition aws, region us-east-1"})
	}
	// The same ARN with this cluster's scope resolves.
	if _, err := v.e.DescribeAIWorkloadConfig(v.ctx, &pb.DescribeAIWorkloadConfigRequest{AiWorkloadConfigName: "arn:aws:sagemaker:us-east-1:" + account + ":ai-workload-config/wl"}); err != nil {
		t.Fatal(err)
	}
}

func TestNextTokenIsBoundToItsOperation(t *testing.T) {
	v := newEnv(t)
	for _, n := range []string{"a", "b", "c"} {
		v.mustCreateConfig(configReq(n))
	}
	page, err := v.e.ListAIWorkloadConfigs(v.ctx, &pb.ListAIWorkloadConfigsRequest{MaxResults: 1})
	if err != nil || page.GetNextToken() == "" {
		t.Fatalf("want a next token: %v", err)
	}
	_, err = v.e.ListAIBenchmarkJobs(v.ctx, &pb.ListAIBenchmarkJobsRequest{MaxResults: 1, NextToken: page.GetNextToken()})
	checkErr(t, endpoint.ToStatus(err), want{code: codes.InvalidArgument, reason: "ValidationException", field: "next_token", rule: "different filters"})
}
