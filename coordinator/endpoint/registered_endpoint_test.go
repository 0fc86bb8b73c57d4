package endpoint_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func (v *env) register(req *pb.RegisterEndpointRequest) (string, error) {
	resp, err := v.e.RegisterEndpoint(v.ctx, req)
	return resp.GetEndpointArn(), mapErr(err)
}

func TestRegisterEndpointRules(t *testing.T) {
	v := newEnv(t)
	ok := func() *pb.RegisterEndpointRequest {
		return &pb.RegisterEndpointRequest{EndpointName: "chat", Urls: []string{"http://10.0.0.7:8000", "https://10.0.0.8"},
			ApiType: "openai-chat", ModelName: "llama"}
	}
	for _, tc := range []struct {
		name   string
		change func(r *pb.RegisterEndpointRequest)
		want   want
	}{
		{"bad name", func(r *pb.RegisterEndpointRequest) { r.EndpointName = "no_underscores" }, invalid("endpoint_name", "must match")},
		{"no URLs", func(r *pb.RegisterEndpointRequest) { r.Urls = nil }, invalid("urls", "must have 1-16 URLs, got 0")},
		{"not http", func(r *pb.RegisterEndpointRequest) { r.Urls = []string{"ftp://x:1"} }, invalid("urls[0]", "http(s)://host[:port]")},
		{"duplicate", func(r *pb.RegisterEndpointRequest) { r.Urls = []string{"http://a:1", "http://a:1"} }, invalid("urls[1]", "duplicates")},
		{"credentials", func(r *pb.RegisterEndpointRequest) { r.Urls = []string{"http://u:p@a:1"} }, invalid("urls[0]", "must not carry user:password@")},
		{"api type", func(r *pb.RegisterEndpointRequest) { r.ApiType = "grpc" }, invalid("api_type", "must be one of")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok()
			tc.change(r)
			_, err := v.register(r)
			checkErr(t, err, tc.want)
		})
	}

	arn, err := v.register(ok())
	if err != nil || arn != scope.Build(account, state.KindEndpoint, "chat") {
		t.Fatalf("register = %q, %v", arn, err)
	}
	// Registering again replaces the settings and keeps the creation time.
	v.b.clock.now = t0.Add(time.Hour)
	again := ok()
	again.Urls = []string{"http://10.0.0.9:8000"}
	if _, err := v.register(again); err != nil {
		t.Fatal(err)
	}
	got, err := v.e.DescribeEndpoint(v.ctx, &pb.DescribeEndpointRequest{EndpointName: arn})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.GetUrls()) != 1 || got.GetUrls()[0] != "http://10.0.0.9:8000" || !got.GetCreationTime().AsTime().Equal(t0) ||
		!got.GetLastModifiedTime().AsTime().Equal(t0.Add(time.Hour)) {
		t.Fatalf("after re-register: %v", got)
	}
	// Other accounts neither see it nor can target it.
	other := v.as(otherAccount)
	if _, err := other.e.DescribeEndpoint(other.ctx, &pb.DescribeEndpointRequest{EndpointName: "chat"}); err == nil {
		t.Fatal("another account described the endpoint")
	}
	list, err := v.e.ListEndpoints(v.ctx, &pb.ListEndpointsRequest{})
	if err != nil || len(list.GetEndpoints()) != 1 {
		t.Fatalf("list = %v, %v", list, err)
	}
}

func TestBenchmarkJobTargetsRegisteredEndpoint(t *testing.T) {
	v := withWorkloads(t)
	r := benchReq("b1")
	r.BenchmarkTarget.Endpoint.Identifier = "chat"
	_, err := v.createBench(r)
	checkErr(t, err, invalid("benchmark_target.endpoint.identifier", `names no registered endpoint "chat"; see 'perfleet endpoint list'`))

	arn, err := v.register(&pb.RegisterEndpointRequest{EndpointName: "chat", Urls: []string{"http://10.0.0.7:8000"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.createBench(r); err != nil {
		t.Fatalf("job on a registered endpoint: %v", err)
	}
	r2 := benchReq("b2")
	r2.BenchmarkTarget.Endpoint.Identifier = arn
	if _, err := v.createBench(r2); err != nil {
		t.Fatalf("job on a registered endpoint's ARN: %v", err)
	}
	r3 := benchReq("b3")
	r3.BenchmarkTarget.Endpoint.Identifier = "arn:aws:sagemaker:us-east-1:" + otherAccount + ":endpoint/chat"
	_, err = v.createBench(r3)
	checkErr(t, err, invalid("benchmark_target.endpoint.identifier", "ARN names account "+otherAccount))

	// Its URLs cannot change under a running job (a new leader re-resolves
	// the target), but tags can.
	_, err = v.register(&pb.RegisterEndpointRequest{EndpointName: "chat", Urls: []string{"http://10.0.0.9:8000"}})
	checkErr(t, err, want{code: codes.FailedPrecondition, reason: "ResourceInUse", rule: "cannot change until it ends"})
	if _, err := v.register(&pb.RegisterEndpointRequest{EndpointName: "chat", Urls: []string{"http://10.0.0.7:8000"},
		Tags: []*pb.Tag{{Key: "team", Value: "a"}}}); err != nil {
		t.Fatalf("re-register with the same settings and new tags: %v", err)
	}
	// Deregistering is refused while a job that targets it runs.
	dereg := func() error {
		_, err := v.e.DeregisterEndpoint(v.ctx, &pb.DeregisterEndpointRequest{EndpointName: "chat"})
		return mapErr(err)
	}
	checkErr(t, dereg(), want{code: codes.FailedPrecondition, reason: "ResourceInUse", rule: `is the target of ai-benchmark-job "b1"`})
	v.setStatus(state.KindBenchmark, "b1", state.StatusCompleted, state.StatusInProgress)
	checkErr(t, dereg(), want{code: codes.FailedPrecondition, reason: "ResourceInUse", rule: `ai-benchmark-job "b2"`})
	v.setStatus(state.KindBenchmark, "b2", state.StatusFailed, state.StatusInProgress)
	if err := dereg(); err != nil {
		t.Fatalf("deregister once its jobs ended: %v", err)
	}
	checkErr(t, dereg(), want{code: codes.NotFound, reason: "ResourceNotFound", rule: "is not registered"})
}
