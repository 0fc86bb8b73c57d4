package endpoint_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/perfleet/perfleet/coordinator/state"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// createOp is one of the three create operations, driven through reflection
// so that the rules every create shares are tested on each of them.
type createOp struct {
	name      string
	nameField string
	valid     func(name string) proto.Message
	call      func(v *env, req proto.Message) error
}

var createOps = []createOp{
	{"CreateAIWorkloadConfig", "ai_workload_config_name",
		func(n string) proto.Message { return configReq(n) },
		func(v *env, r proto.Message) error {
			_, err := v.createConfig(r.(*pb.CreateAIWorkloadConfigRequest))
			return err
		}},
	{"CreateAIBenchmarkJob", "ai_benchmark_job_name",
		func(n string) proto.Message { return benchReq(n) },
		func(v *env, r proto.Message) error {
			_, err := v.createBench(r.(*pb.CreateAIBenchmarkJobRequest))
			return err
		}},
	{"CreateAIRecommendationJob", "ai_recommendation_job_name",
		func(n string) proto.Message { return recReq(n) },
		func(v *env, r proto.Message) error {
			_, err := v.createRec(r.(*pb.CreateAIRecommendationJobRequest))
			return err
		}},
}

func setString(m proto.Message, field, val string) {
	r := m.ProtoReflect()
	r.Set(r.Descriptor().Fields().ByName(protoreflect.Name(field)), protoreflect.ValueOfString(val))
}

func setTags(m proto.Message, tags ...*pb.Tag) {
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName("tags")
	l := r.NewField(fd).List()
	for _, t := range tags {
		l.Append(protoreflect.ValueOfMessage(t.ProtoReflect()))
	}
	r.Set(fd, protoreflect.ValueOfList(l))
}

func manyTags(n int) []*pb.Tag {
	tags := make([]*pb.Tag, n)
	for i := range tags {
		tags[i] = &pb.Tag{Key: fmt.Sprintf("k%d", i), Value: "v"}
	}
	return tags
}

// nameField in a case's field stands for the operation's name field.
const nameField = "NAME"

func TestCreateCommonRules(t *testing.T) {
	cases := []struct {
		name  string
		set   func(m proto.Message, nameField string)
		field string // "" for a request that must succeed
		rule  string
	}{
		{"valid", func(proto.Message, string) {}, "", ""},
		{"empty name", func(m proto.Message, f string) { setString(m, f, "") }, nameField, "is required"},
		{"64-char name", func(m proto.Message, f string) { setString(m, f, strings.Repeat("n", 64)) }, nameField, "at most 63 characters"},
		{"leading hyphen", func(m proto.Message, f string) { setString(m, f, "-name") }, nameField, "must match"},
		{"trailing hyphen", func(m proto.Message, f string) { setString(m, f, "name-") }, nameField, "must match"},
		{"underscore", func(m proto.Message, f string) { setString(m, f, "my_name") }, nameField, "must match"},
		{"51 tags", func(m proto.Message, _ string) { setTags(m, manyTags(51)...) }, "tags", "at most 50 tags, got 51"},
		{"empty tag key", func(m proto.Message, _ string) { setTags(m, &pb.Tag{Key: "", Value: "v"}) }, "tags[0].key", "is required"},
		{"129-char tag key", func(m proto.Message, _ string) { setTags(m, &pb.Tag{Key: strings.Repeat("k", 129)}) }, "tags[0].key", "at most 128 characters"},
		{"257-char tag value", func(m proto.Message, _ string) { setTags(m, &pb.Tag{Key: "k", Value: strings.Repeat("v", 257)}) }, "tags[0].value", "at most 256 characters"},
		{"bad tag key character", func(m proto.Message, _ string) { setTags(m, &pb.Tag{Key: "team*", Value: "v"}) }, "tags[0].key", "may contain only"},
		{"bad tag value character", func(m proto.Message, _ string) { setTags(m, &pb.Tag{Key: "k", Value: "a#b"}) }, "tags[0].value", "may contain only"},
		{"aws: tag prefix", func(m proto.Message, _ string) { setTags(m, &pb.Tag{Key: "aws:createdBy", Value: "v"}) }, "tags[0].key", "reserved prefix aws:"},
		{"duplicate tag key", func(m proto.Message, _ string) { setTags(m, &pb.Tag{Key: "team"}, &pb.Tag{Key: "team", Value: "x"}) }, "tags[1].key", `duplicates tag key "team"`},
		{"client_token pattern", func(m proto.Message, _ string) { setString(m, "client_token", "bad token!") }, "client_token", "[a-zA-Z0-9-_.:]"},
		{"65-char client_token", func(m proto.Message, _ string) { setString(m, "client_token", strings.Repeat("t", 65)) }, "client_token", "1-64 characters"},
	}
	for _, op := range createOps {
		t.Run(op.name, func(t *testing.T) {
			v := withWorkloads(t)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					req := op.valid("res-1")
					tc.set(req, op.nameField)
					err := op.call(v, req)
					if tc.field == "" {
						if err != nil {
							t.Fatalf("valid request failed: %v", err)
						}
						return
					}
					field := strings.Replace(tc.field, nameField, op.nameField, 1)
					checkErr(t, err, invalid(field, tc.rule))
				})
			}
		})
	}
}

// identOp is an operation taking a name-or-ARN identifier.
type identOp struct {
	name, field, kind, target string
	call                      func(v *env, ident string) error
}

var identOps = []identOp{
	{"DescribeAIWorkloadConfig", "ai_workload_config_name", state.KindWorkloadConfig, "wl", func(v *env, id string) error {
		_, err := v.e.DescribeAIWorkloadConfig(v.ctx, &pb.DescribeAIWorkloadConfigRequest{AiWorkloadConfigName: id})
		return mapErr(err)
	}},
	{"DeleteAIWorkloadConfig", "ai_workload_config_name", state.KindWorkloadConfig, "wl", func(v *env, id string) error {
		_, err := v.e.DeleteAIWorkloadConfig(v.ctx, &pb.DeleteAIWorkloadConfigRequest{AiWorkloadConfigName: id})
		return mapErr(err)
	}},
	{"CreateAIBenchmarkJob", "ai_workload_config_identifier", state.KindWorkloadConfig, "wl", func(v *env, id string) error {
		r := benchReq("b-new")
		r.AiWorkloadConfigIdentifier = id
		_, err := v.createBench(r)
		return err
	}},
	{"CreateAIRecommendationJob", "ai_workload_config_identifier", state.KindWorkloadConfig, "wl", func(v *env, id string) error {
		r := recReq("r-new")
		r.AiWorkloadConfigIdentifier = id
		_, err := v.createRec(r)
		return err
	}},
	{"DescribeAIBenchmarkJob", "ai_benchmark_job_name", state.KindBenchmark, "b1", func(v *env, id string) error {
		_, err := v.e.DescribeAIBenchmarkJob(v.ctx, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: id})
		return mapErr(err)
	}},
	{"StopAIBenchmarkJob", "ai_benchmark_job_name", state.KindBenchmark, "b1", func(v *env, id string) error {
		_, err := v.e.StopAIBenchmarkJob(v.ctx, &pb.StopAIBenchmarkJobRequest{AiBenchmarkJobName: id})
		return mapErr(err)
	}},
	{"DeleteAIBenchmarkJob", "ai_benchmark_job_name", state.KindBenchmark, "b1", func(v *env, id string) error {
		_, err := v.e.DeleteAIBenchmarkJob(v.ctx, &pb.DeleteAIBenchmarkJobRequest{AiBenchmarkJobName: id})
		return mapErr(err)
	}},
	{"DescribeAIRecommendationJob", "ai_recommendation_job_name", state.KindRecommendation, "r1", func(v *env, id string) error {
		_, err := v.e.DescribeAIRecommendationJob(v.ctx, &pb.DescribeAIRecommendationJobRequest{AiRecommendationJobName: id})
		return mapErr(err)
	}},
	{"StopAIRecommendationJob", "ai_recommendation_job_name", state.KindRecommendation, "r1", func(v *env, id string) error {
		_, err := v.e.StopAIRecommendationJob(v.ctx, &pb.StopAIRecommendationJobRequest{AiRecommendationJobName: id})
		return mapErr(err)
	}},
	{"DeleteAIRecommendationJob", "ai_recommendation_job_name", state.KindRecommendation, "r1", func(v *env, id string) error {
		_, err := v.e.DeleteAIRecommendationJob(v.ctx, &pb.DeleteAIRecommendationJobRequest{AiRecommendationJobName: id})
		return mapErr(err)
	}},
}

// withFinishedJobs returns an env with workload config "wl" and the Completed
// jobs "b1" and "r1", so every identifier operation can succeed.
func withFinishedJobs(t *testing.T) *env {
	v := withWorkloads(t)
	v.mustCreateBench(benchReq("b1"))
	v.mustCreateRec(recReq("r1"))
	v.setStatus(state.KindBenchmark, "b1", state.StatusCompleted, state.StatusInProgress)
	v.setStatus(state.KindRecommendation, "r1", state.StatusCompleted, state.StatusInProgress)
	return v
}

func TestIdentifierRules(t *testing.T) {
	for _, op := range identOps {
		t.Run(op.name, func(t *testing.T) {
			otherKind := state.KindWorkloadConfig
			if op.kind == state.KindWorkloadConfig {
				otherKind = state.KindBenchmark
			}
			v := withFinishedJobs(t)
			for _, tc := range []struct {
				name, ident string
				w           want
			}{
				{"empty", "", invalid(op.field, "is required")},
				{"bad name", "bad_name", invalid(op.field, "must match")},
				{"257 chars", strings.Repeat("a", 257), invalid(op.field, "at most 256 characters")},
				{"wrong resource type", scope.Build(account, otherKind, op.target), invalid(op.field, "ARN names a "+otherKind+", want a "+op.kind)},
				{"malformed ARN", "arn:aws:sagemaker:us-east-1:12345:" + op.kind + "/" + op.target, invalid(op.field, "malformed ARN")},
				{"bad name in ARN", scope.Build(account, op.kind, op.target+"-"), invalid(op.field, "ARN resource name must match")},
				{"other account", scope.Build(otherAccount, op.kind, op.target), invalid(op.field, "ARN names account "+otherAccount)},
				{"missing, by ARN", scope.Build(account, op.kind, "missing"), want{code: codes.NotFound, reason: "ResourceNotFound", rule: `"missing" does not exist`}},
				{"missing, by name", "missing", want{code: codes.NotFound, reason: "ResourceNotFound", rule: `"missing" does not exist`}},
			} {
				t.Run(tc.name, func(t *testing.T) { checkErr(t, op.call(v, tc.ident), tc.w) })
			}
			if err := op.call(v, scope.Build(account, op.kind, op.target)); err != nil {
				t.Fatalf("own-account ARN: %v", err)
			}
		})
	}
}
