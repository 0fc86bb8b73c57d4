package endpoint_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/perfleet/perfleet/coordinator/endpoint"
	"github.com/perfleet/perfleet/coordinator/fsm"
	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/arn"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

const (
	account      = "123456789012"
	otherAccount = "210987654321"
	roleARN      = "arn:aws:iam::123456789012:role/PerfleetRole"
	validSpec    = "benchmark: {type: aiperf}\nparameters: {concurrency: [1, 4], isl: 128, osl: 64}\n"
)

var (
	scope = arn.Scope{Partition: "aws", Region: "us-east-1"}
	t0    = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
)

// clock is the leader clock of a test; backends over one FSM share it.
type clock struct{ now time.Time }

// backend is an endpoint.Backend over a real FSM, applying commands the way
// the server does after Raft commits them.
type backend struct {
	fsm       *fsm.FSM
	clock     *clock
	account   string
	maxActive uint32
}

var _ endpoint.Backend = (*backend)(nil)

func (b *backend) State() *state.Store { return b.fsm.State() }
func (b *backend) Apply(_ context.Context, t fsm.MessageType, msg proto.Message) (any, error) {
	data, err := fsm.Encode(t, msg)
	if err != nil {
		return nil, err
	}
	res := b.fsm.ApplyBytes(data)
	if err, ok := res.(error); ok {
		return nil, err
	}
	return res, nil
}
func (b *backend) Scope() arn.Scope               { return scope }
func (b *backend) Account(context.Context) string { return b.account }
func (b *backend) Now() time.Time                 { return b.clock.now }
func (b *backend) PageKey() []byte                { return b.fsm.State().Meta().GetPageTokenKey() }
func (b *backend) MaxActiveJobs() uint32          { return b.maxActive }
func (b *backend) Progress(string, string) (int, *pb.LevelProgress, bool) {
	return 0, nil, false
}

// env is one endpoint over a fresh FSM whose cluster meta holds a page key.
type env struct {
	t   *testing.T
	ctx context.Context
	b   *backend
	e   *endpoint.Endpoint
}

func newEnv(t *testing.T) *env { return newEnvKey(t, []byte("0123456789abcdef0123456789abcdef")) }

// newEnvKey returns an env whose page token key is key; without one the
// cluster meta is not set yet.
func newEnvKey(t *testing.T, key []byte) *env {
	t.Helper()
	f := fsm.New(nil)
	if key != nil {
		if res := f.ApplyBytes(mustEncode(t, fsm.SetClusterMetaType, &pb.SetClusterMetaCommand{
			Meta: &pb.ClusterMeta{ClusterId: "test", PageTokenKey: key}})); res != nil {
			t.Fatalf("set meta: %v", res)
		}
	}
	b := &backend{fsm: f, clock: &clock{now: t0}, account: account}
	v := &env{t: t, ctx: context.Background(), b: b, e: endpoint.New(b)}
	// The fleet recommendation jobs validate instance types against.
	v.addAgents("alive", "ml.g5.xlarge", "ml.g6.2xlarge", "ml.p5.48xlarge", "lab-8xH100")
	v.addAgents("failed", "ml.g5.2xlarge")
	return v
}

// as returns an endpoint over the same FSM and clock for another account.
func (v *env) as(acct string) *env {
	b := *v.b
	b.account = acct
	return &env{t: v.t, ctx: v.ctx, b: &b, e: endpoint.New(&b)}
}

func mustEncode(t *testing.T, typ fsm.MessageType, msg proto.Message) []byte {
	t.Helper()
	b, err := fsm.Encode(typ, msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// setStatus moves a job directly, the way the job runner would.
func (v *env) setStatus(kind, name, to string, from ...string) {
	v.t.Helper()
	if _, err := v.b.Apply(v.ctx, fsm.SetJobStatusType, &pb.SetJobStatusCommand{Kind: kind, AccountId: v.b.account, Name: name,
		Status: to, FromStatuses: from, Time: timestamppb.New(v.b.clock.now)}); err != nil {
		v.t.Fatalf("set status of %s: %v", name, err)
	}
}

// The three create calls, with the error mapped as the server interceptor
// maps it.

func (v *env) createConfig(req *pb.CreateAIWorkloadConfigRequest) (string, error) {
	resp, err := v.e.CreateAIWorkloadConfig(v.ctx, req)
	return resp.GetAiWorkloadConfigArn(), endpoint.ToStatus(err)
}

func (v *env) createBench(req *pb.CreateAIBenchmarkJobRequest) (string, error) {
	resp, err := v.e.CreateAIBenchmarkJob(v.ctx, req)
	return resp.GetAiBenchmarkJobArn(), endpoint.ToStatus(err)
}

func (v *env) createRec(req *pb.CreateAIRecommendationJobRequest) (string, error) {
	resp, err := v.e.CreateAIRecommendationJob(v.ctx, req)
	return resp.GetAiRecommendationJobArn(), endpoint.ToStatus(err)
}

func (v *env) mustCreateConfig(req *pb.CreateAIWorkloadConfigRequest) string {
	v.t.Helper()
	a, err := v.createConfig(req)
	if err != nil {
		v.t.Fatalf("CreateAIWorkloadConfig(%s): %v", req.GetAiWorkloadConfigName(), err)
	}
	return a
}

func (v *env) mustCreateBench(req *pb.CreateAIBenchmarkJobRequest) string {
	v.t.Helper()
	a, err := v.createBench(req)
	if err != nil {
		v.t.Fatalf("CreateAIBenchmarkJob(%s): %v", req.GetAiBenchmarkJobName(), err)
	}
	return a
}

func (v *env) mustCreateRec(req *pb.CreateAIRecommendationJobRequest) string {
	v.t.Helper()
	a, err := v.createRec(req)
	if err != nil {
		v.t.Fatalf("CreateAIRecommendationJob(%s): %v", req.GetAiRecommendationJobName(), err)
	}
	return a
}

// Valid requests; each test case changes one field.

func configReq(name string) *pb.CreateAIWorkloadConfigRequest {
	return &pb.CreateAIWorkloadConfigRequest{
		AiWorkloadConfigName: name,
		AiWorkloadConfigs:    &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: validSpec}},
		DatasetConfig:        &pb.DatasetConfig{InputDataConfig: []*pb.InputDataConfig{channel("dataset", "s3://datasets-bucket/sharegpt.jsonl")}},
		Tags:                 []*pb.Tag{{Key: "team", Value: "inference"}},
	}
}

func channel(name, uri string) *pb.InputDataConfig {
	return &pb.InputDataConfig{ChannelName: name, DataSource: &pb.DataSource{S3DataSource: &pb.S3DataSource{S3Uri: uri}}}
}

func benchReq(name string) *pb.CreateAIBenchmarkJobRequest {
	return &pb.CreateAIBenchmarkJobRequest{
		AiBenchmarkJobName:         name,
		AiWorkloadConfigIdentifier: "wl",
		BenchmarkTarget: &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: "http://127.0.0.1:8000",
			InferenceComponents: []*pb.InferenceComponentRef{{Identifier: "ic-llama"}}}},
		OutputConfig:  &pb.AIBenchmarkOutputConfig{S3OutputLocation: "s3://results-bucket/bench"},
		RoleArn:       roleARN,
		NetworkConfig: &pb.NetworkConfig{VpcConfig: &pb.VpcConfig{SecurityGroupIds: []string{"sg-0123"}, Subnets: []string{"subnet-0abc"}}},
		Tags:          []*pb.Tag{{Key: "team", Value: "inference"}},
	}
}

func recReq(name string) *pb.CreateAIRecommendationJobRequest {
	return &pb.CreateAIRecommendationJobRequest{
		AiRecommendationJobName:    name,
		AiWorkloadConfigIdentifier: "wl",
		ModelSource:                &pb.ModelSource{S3: &pb.S3ModelSource{S3Uri: "s3://models-bucket/llama-3-8b"}},
		OutputConfig:               &pb.AIRecommendationOutputConfig{S3OutputLocation: "s3://results-bucket/rec"},
		PerformanceTarget:          &pb.PerformanceTarget{Constraints: []*pb.PerformanceConstraint{{Metric: "ttft-ms"}}},
		RoleArn:                    roleARN,
		ComputeSpec: &pb.ComputeSpec{InstanceTypes: []string{"ml.g5.xlarge", "ml.g6.2xlarge"},
			CapacityReservationConfig: &pb.CapacityReservationConfig{CapacityReservationPreference: "capacity-reservations-only"}},
		InferenceSpecification: &pb.InferenceSpecification{Framework: "VLLM"},
		AdapterSource:          &pb.AdapterSource{S3Uris: []*pb.AdapterS3Uri{{AdapterId: "adapter-1", S3Uri: "s3://adapters-bucket/a1"}}},
		Tags:                   []*pb.Tag{{Key: "team", Value: "inference"}},
	}
}

// withWorkloads returns an env holding the workload configs "wl" (with a
// dataset) and "wl-nodata" (without).
func withWorkloads(t *testing.T) *env {
	v := newEnv(t)
	v.mustCreateConfig(configReq("wl"))
	noData := configReq("wl-nodata")
	noData.DatasetConfig = nil
	v.mustCreateConfig(noData)
	return v
}

// addAgents records one agent per instance type in a gossip status.
func (v *env) addAgents(status string, types ...string) {
	v.t.Helper()
	for _, typ := range types {
		a := &pb.Agent{AgentId: "agent-" + typ, InstanceType: typ, Status: status, Gpus: &pb.GPUSummary{Count: 1, Model: "NVIDIA L4", MemoryMib: 23034}}
		if _, err := v.b.Apply(v.ctx, fsm.UpsertAgentType, &pb.UpsertAgentCommand{Agent: a}); err != nil {
			v.t.Fatal(err)
		}
	}
}

// want is the expected gRPC error of a call.
type want struct {
	code   codes.Code
	reason string // google.rpc.ErrorInfo reason
	field  string // for ValidationException: the one field every violation names
	rule   string // a substring of that field's rule, or of the message
}

func invalid(field, rule string) want {
	return want{code: codes.InvalidArgument, reason: "ValidationException", field: field, rule: rule}
}

// checkErr asserts a mapped error: code, ErrorInfo reason and domain, and for
// validation errors BadRequest violations that all name want.field, one of
// them with want.rule in its description.
func checkErr(t *testing.T, err error, w want) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v %s", w.code, w.reason)
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("error %v is not a gRPC status", err)
	}
	if st.Code() != w.code {
		t.Fatalf("code = %v, want %v (%v)", st.Code(), w.code, err)
	}
	var info *errdetails.ErrorInfo
	var br *errdetails.BadRequest
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			info = d
		case *errdetails.BadRequest:
			br = d
		}
	}
	if info.GetReason() != w.reason || info.GetDomain() != endpoint.ErrorDomain {
		t.Fatalf("ErrorInfo = %v, want reason %s in %s", info, w.reason, endpoint.ErrorDomain)
	}
	if w.field == "" {
		if !strings.Contains(st.Message(), w.rule) {
			t.Fatalf("message %q does not contain %q", st.Message(), w.rule)
		}
		return
	}
	if len(br.GetFieldViolations()) == 0 {
		t.Fatalf("no BadRequest field violations in %v", err)
	}
	matched := false
	for _, fv := range br.GetFieldViolations() {
		if fv.GetField() != w.field {
			t.Fatalf("violation on %q (%s), want only %q", fv.GetField(), fv.GetDescription(), w.field)
		}
		matched = matched || strings.Contains(fv.GetDescription(), w.rule)
	}
	if !matched {
		t.Fatalf("no violation of %s contains %q: %v", w.field, w.rule, br.GetFieldViolations())
	}
}

// mapErr maps a handler's error the way the server's interceptor does.
func mapErr(err error) error { return endpoint.ToStatus(err) }
