package runner

import (
	"strings"
	"testing"

	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/workload"
)

func TestResolveTargetFillsInTheEndpointsAPI(t *testing.T) {
	st := state.New()
	if _, err := st.PutEndpoint(&pb.PutEndpointCommand{Endpoint: &pb.EndpointRecord{AccountId: "111111111111",
		Endpoint: &pb.DescribeEndpointResponse{EndpointName: "triton", EndpointArn: "arn:aws:sagemaker:us-east-1:111111111111:endpoint/triton",
			Urls: []string{"http://10.0.0.1:8000", "http://10.0.0.2:8000"}, ApiType: "kserve-v2", ModelName: "resnet"}}}); err != nil {
		t.Fatal(err)
	}
	parse := func(doc string) (*workload.Spec, []byte, bool) {
		s, err := workload.Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		return s, c, workload.APIGiven([]byte(doc))
	}
	ep := &pb.BenchmarkEndpoint{Identifier: "arn:aws:sagemaker:us-east-1:111111111111:endpoint/triton"}

	// The spec leaves the API out: the endpoint's is used, with its standard.
	spec, canon, given := parse("benchmark: {type: aiperf}\nparameters: {concurrency: 2}\n")
	tgt, err := resolveTarget(st, "111111111111", ep, spec, canon, given)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := workload.Parse(tgt.canonical)
	if err != nil {
		t.Fatalf("the spec sent to agents does not parse: %v", err)
	}
	if sent.Parameters.API != workload.APIKServeV2 || sent.Tooling.APIStandard != workload.APIStandardKServe {
		t.Fatalf("sent api %q standard %q", sent.Parameters.API, sent.Tooling.APIStandard)
	}
	if spec.Parameters.API != workload.APIOpenAIChat {
		t.Fatal("the cached spec was changed")
	}
	if len(tgt.models) != 1 || tgt.models[0] != "resnet" || tgt.url(0) != "http://10.0.0.1:8000" || tgt.url(3) != "http://10.0.0.2:8000" {
		t.Fatalf("target %+v", tgt)
	}

	// A spec that names another API is refused with a reason.
	spec, canon, given = parse("benchmark: {type: aiperf}\nparameters: {concurrency: 2, api: openai-chat}\n")
	if _, err := resolveTarget(st, "111111111111", ep, spec, canon, given); err == nil || !strings.Contains(err.Error(), "speaks kserve-v2") {
		t.Fatalf("mismatch: %v", err)
	}
	// Another account's endpoint is not found.
	if _, err := resolveTarget(st, "222222222222", &pb.BenchmarkEndpoint{Identifier: "triton"}, spec, canon, given); err == nil {
		t.Fatal("another account resolved the endpoint")
	}
}
