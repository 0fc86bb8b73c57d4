package gateway

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/schemas"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// sdkSchemas pairs each operation with the SageMaker SDK's own schemas of
// its input and output: the ground truth the shapes table is checked
// against.
var sdkSchemas = map[string][2]*smithy.Schema{
	"CreateAIWorkloadConfig":      {schemas.CreateAIWorkloadConfigRequest, schemas.CreateAIWorkloadConfigResponse},
	"DescribeAIWorkloadConfig":    {schemas.DescribeAIWorkloadConfigRequest, schemas.DescribeAIWorkloadConfigResponse},
	"ListAIWorkloadConfigs":       {schemas.ListAIWorkloadConfigsRequest, schemas.ListAIWorkloadConfigsResponse},
	"DeleteAIWorkloadConfig":      {schemas.DeleteAIWorkloadConfigRequest, schemas.DeleteAIWorkloadConfigResponse},
	"CreateAIBenchmarkJob":        {schemas.CreateAIBenchmarkJobRequest, schemas.CreateAIBenchmarkJobResponse},
	"DescribeAIBenchmarkJob":      {schemas.DescribeAIBenchmarkJobRequest, schemas.DescribeAIBenchmarkJobResponse},
	"ListAIBenchmarkJobs":         {schemas.ListAIBenchmarkJobsRequest, schemas.ListAIBenchmarkJobsResponse},
	"StopAIBenchmarkJob":          {schemas.StopAIBenchmarkJobRequest, schemas.StopAIBenchmarkJobResponse},
	"DeleteAIBenchmarkJob":        {schemas.DeleteAIBenchmarkJobRequest, schemas.DeleteAIBenchmarkJobResponse},
	"CreateAIRecommendationJob":   {schemas.CreateAIRecommendationJobRequest, schemas.CreateAIRecommendationJobResponse},
	"DescribeAIRecommendationJob": {schemas.DescribeAIRecommendationJobRequest, schemas.DescribeAIRecommendationJobResponse},
	"ListAIRecommendationJobs":    {schemas.ListAIRecommendationJobsRequest, schemas.ListAIRecommendationJobsResponse},
	"StopAIRecommendationJob":     {schemas.StopAIRecommendationJobRequest, schemas.StopAIRecommendationJobResponse},
	"DeleteAIRecommendationJob":   {schemas.DeleteAIRecommendationJobRequest, schemas.DeleteAIRecommendationJobResponse},
}

// TestShapesMatchSDKSchemas walks every operation's input and output in the
// SDK's schemas beside the perfleet.v1 messages: every SDK member must map
// to a field of a compatible type, every mapped member must exist in the
// SDK (but for perfleet extensions and output-only members of inputs), and
// every protobuf field must be either mapped or declared gRPC-only.
func TestShapesMatchSDKSchemas(t *testing.T) {
	if len(sdkSchemas) != len(operationNames) {
		t.Fatalf("%d schemas for %d operations", len(sdkSchemas), len(operationNames))
	}
	svc := pb.File_perfleet_v1_inference_optimization_proto.Services().ByName("InferenceOptimization")
	for _, op := range operationNames {
		s, ok := sdkSchemas[op]
		if !ok {
			t.Fatalf("no SDK schema for %s", op)
		}
		method := svc.Methods().ByName(protoreflect.Name(op))
		compareShape(t, op+"Request", method.Input(), s[0], true)
		compareShape(t, op+"Response", method.Output(), s[1], false)
	}
	// Every shape in the table is reachable from an operation and names
	// real fields.
	for name, sh := range shapes {
		for _, mb := range sh.members {
			if mb.name == "" || mb.field == "" {
				t.Errorf("%s: empty member %+v", name, mb)
			}
		}
	}
}

func compareShape(t *testing.T, path string, md protoreflect.MessageDescriptor, s *smithy.Schema, input bool) {
	t.Helper()
	sh := shapeOf(md)
	if sh == nil {
		t.Errorf("%s: no shape for %s", path, md.FullName())
		return
	}
	if want := s.Type() == smithy.ShapeTypeUnion; sh.union != want {
		t.Errorf("%s: shape union=%v, SDK union=%v", path, sh.union, want)
	}
	for name, ms := range s.Members() {
		mp := path + "." + name
		mb, ok := sh.byName(name)
		if !ok {
			t.Errorf("%s: SDK member has no perfleet field", mp)
			continue
		}
		fd := md.Fields().ByName(mb.field)
		if fd == nil {
			t.Errorf("%s: %s has no field %s", mp, md.FullName(), mb.field)
			continue
		}
		if mb.extension {
			t.Errorf("%s: marked as a perfleet extension but the SDK has it", mp)
		}
		compareMember(t, mp, fd, mb, ms, input)
	}
	for _, mb := range sh.members {
		if s.Member(mb.name) != nil {
			continue
		}
		switch {
		case mb.extension:
		case mb.outputOnly && input:
		default:
			t.Errorf("%s.%s: mapped from %s but the SDK has no such member", path, mb.name, mb.field)
		}
	}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		_, mapped := sh.byField(fd.Name())
		grpcOnly := false
		for _, n := range sh.grpcOnly {
			grpcOnly = grpcOnly || n == fd.Name()
		}
		if mapped == grpcOnly {
			t.Errorf("%s: field %s must be either mapped or gRPC-only (mapped=%v, grpcOnly=%v)", path, fd.Name(), mapped, grpcOnly)
		}
	}
}

func compareMember(t *testing.T, path string, fd protoreflect.FieldDescriptor, mb member, ms *smithy.Schema, input bool) {
	t.Helper()
	switch ms.Type() {
	case smithy.ShapeTypeList:
		if !fd.IsList() {
			t.Errorf("%s: SDK list, field %s is not repeated", path, fd.Name())
			return
		}
		el := ms.ListMember()
		if mb.wrap != "" {
			if el.Type() != smithy.ShapeTypeStructure || el.Member(mb.wrap) == nil || fd.Kind() != protoreflect.StringKind {
				t.Errorf("%s: wrap %q needs a list of structures with that member over repeated strings", path, mb.wrap)
			}
			return
		}
		compareElement(t, path+"[]", fd, el, input)
	case smithy.ShapeTypeMap:
		if !fd.IsMap() || fd.MapKey().Kind() != protoreflect.StringKind || fd.MapValue().Kind() != protoreflect.StringKind {
			t.Errorf("%s: SDK map, field %s is not map<string,string>", path, fd.Name())
		}
	default:
		if fd.IsList() || fd.IsMap() {
			t.Errorf("%s: SDK %v, field %s is repeated", path, ms.Type(), fd.Name())
			return
		}
		compareElement(t, path, fd, ms, input)
	}
}

// compareElement checks a single value (a member or a list element).
func compareElement(t *testing.T, path string, fd protoreflect.FieldDescriptor, ms *smithy.Schema, input bool) {
	t.Helper()
	k := fd.Kind()
	isTS := k == protoreflect.MessageKind && fd.Message().FullName() == timestampName
	ok := true
	switch ms.Type() {
	case smithy.ShapeTypeString, smithy.ShapeTypeEnum:
		ok = k == protoreflect.StringKind
	case smithy.ShapeTypeBoolean:
		ok = k == protoreflect.BoolKind
	case smithy.ShapeTypeInteger, smithy.ShapeTypeLong:
		ok = k == protoreflect.Int32Kind || k == protoreflect.Int64Kind
	case smithy.ShapeTypeTimestamp:
		ok = isTS
	case smithy.ShapeTypeStructure, smithy.ShapeTypeUnion:
		if k != protoreflect.MessageKind || isTS {
			ok = false
			break
		}
		compareShape(t, path, fd.Message(), ms, input)
	default:
		ok = false
	}
	if !ok {
		t.Errorf("%s: SDK type %v does not fit field %s of kind %v", path, ms.Type(), fd.Name(), k)
	}
}

// requireFull fails unless every member of msg that the JSON wire carries
// is set, recursively: the table below then exercises every field. Unions
// need one member; extensions and always-written scalars are exempt, and so
// are output-only members of requests.
func requireFull(t *testing.T, path string, m protoreflect.Message, input bool) {
	t.Helper()
	sh := shapeOf(m.Descriptor())
	if sh == nil {
		t.Fatalf("%s: no shape", path)
	}
	set := 0
	for _, mb := range sh.members {
		if mb.extension || mb.always || (mb.outputOnly && input) {
			continue
		}
		fd := m.Descriptor().Fields().ByName(mb.field)
		mp := path + "." + mb.name
		switch {
		case fd.IsList():
			l := m.Get(fd).List()
			if l.Len() > 0 {
				set++
			}
			if fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() != timestampName {
				for i := 0; i < l.Len(); i++ {
					requireFull(t, mp, l.Get(i).Message(), input)
				}
			}
			if l.Len() == 0 && !sh.union {
				t.Errorf("%s is empty", mp)
			}
		case fd.IsMap():
			if m.Get(fd).Map().Len() > 0 {
				set++
			} else {
				t.Errorf("%s is empty", mp)
			}
		default:
			if m.Has(fd) {
				set++
				if fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() != timestampName {
					requireFull(t, mp, m.Get(fd).Message(), input)
				}
			} else if !sh.union {
				t.Errorf("%s is not set", mp)
			}
		}
	}
	if sh.union && set == 0 {
		t.Errorf("%s: union with no member set", path)
	}
}

var (
	t1  = time.Unix(1767225600, 250e6).UTC() // exact in binary: the SDK keeps milliseconds through a float64
	t2  = time.Unix(1767229200, 500e6).UTC()
	t3  = time.Unix(1767232800, 0).UTC()
	ts1 = timestamppb.New(t1)
	ts2 = timestamppb.New(t2)
	ts3 = timestamppb.New(t3)
)

const (
	wlARN    = "arn:aws:sagemaker:us-east-1:000000000000:ai-workload-config/wl"
	bjARN    = "arn:aws:sagemaker:us-east-1:000000000000:ai-benchmark-job/bj"
	rjARN    = "arn:aws:sagemaker:us-east-1:000000000000:ai-recommendation-job/rj"
	roleARN  = "arn:aws:iam::000000000000:role/Bench"
	mlflow   = "arn:aws:sagemaker:us-east-1:000000000000:mlflow-app/app"
	pkgARN   = "arn:aws:sagemaker:us-east-1:000000000000:model-package/adapters/1"
	specYAML = "benchmark: {type: aiperf}\nparameters: {concurrency: 2}\n"
)

// shapeCase is one operation: a fully populated SDK input and the request
// the gateway must decode it to; a fully populated perfleet response and
// the output the SDK must decode from what the gateway wrote.
type shapeCase struct {
	op      string
	call    func(ctx context.Context, c *sagemaker.Client) (any, error)
	wantReq proto.Message
	resp    proto.Message
	wantOut any
}

func shapeCases() []shapeCase {
	s := aws.String
	tags := []types.Tag{{Key: s("team"), Value: s("ml")}, {Key: s("env"), Value: s("dev")}}
	pbTags := []*pb.Tag{{Key: "team", Value: "ml"}, {Key: "env", Value: "dev"}}
	mlflowSDK := &types.AIMlflowConfig{MlflowResourceArn: s(mlflow), MlflowExperimentName: s("exp"), MlflowRunName: s("run")}
	mlflowPB := &pb.MlflowConfig{MlflowResourceArn: mlflow, MlflowExperimentName: "exp", MlflowRunName: "run"}
	wlConfigsSDK := &types.AIWorkloadConfigs{WorkloadSpec: &types.WorkloadSpecMemberInline{Value: specYAML}}
	wlConfigsPB := &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: specYAML}}
	datasetSDK := &types.AIDatasetConfigMemberInputDataConfig{Value: []types.AIWorkloadInputDataConfig{
		{ChannelName: s("dataset"), DataSource: &types.AIWorkloadDataSource{S3DataSource: &types.AIWorkloadS3DataSource{S3Uri: s("s3://bucket/data")}}},
		{ChannelName: s("template"), DataSource: &types.AIWorkloadDataSource{S3DataSource: &types.AIWorkloadS3DataSource{S3Uri: s("file:///data/tpl")}}},
	}}
	datasetPB := &pb.DatasetConfig{InputDataConfig: []*pb.InputDataConfig{
		{ChannelName: "dataset", DataSource: &pb.DataSource{S3DataSource: &pb.S3DataSource{S3Uri: "s3://bucket/data"}}},
		{ChannelName: "template", DataSource: &pb.DataSource{S3DataSource: &pb.S3DataSource{S3Uri: "file:///data/tpl"}}},
	}}
	targetSDK := &types.AIBenchmarkTargetMemberEndpoint{Value: types.AIBenchmarkEndpoint{Identifier: s("http://10.0.0.1:8000"),
		TargetContainerHostname: s("c1"), InferenceComponents: []types.AIBenchmarkInferenceComponent{{Identifier: s("ic-a")}, {Identifier: s("ic-b")}}}}
	targetPB := &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: "http://10.0.0.1:8000", TargetContainerHostname: "c1",
		InferenceComponents: []*pb.InferenceComponentRef{{Identifier: "ic-a"}, {Identifier: "ic-b"}}}}
	netSDK := &types.AIBenchmarkNetworkConfig{VpcConfig: &types.VpcConfig{SecurityGroupIds: []string{"sg-1", "sg-2"}, Subnets: []string{"subnet-1"}}}
	netPB := &pb.NetworkConfig{VpcConfig: &pb.VpcConfig{SecurityGroupIds: []string{"sg-1", "sg-2"}, Subnets: []string{"subnet-1"}}}
	computeSDK := &types.AIRecommendationComputeSpec{InstanceTypes: []types.AIRecommendationInstanceType{"ml.g5.12xlarge", "ml.p5.48xlarge"},
		CapacityReservationConfig: &types.AICapacityReservationConfig{CapacityReservationPreference: "capacity-reservations-only", MlReservationArns: []string{"arn:r1"}}}
	computePB := &pb.ComputeSpec{InstanceTypes: []string{"ml.g5.12xlarge", "ml.p5.48xlarge"},
		CapacityReservationConfig: &pb.CapacityReservationConfig{CapacityReservationPreference: "capacity-reservations-only", MlReservationArns: []string{"arn:r1"}}}
	perfSDK := &types.AIRecommendationPerformanceTarget{Constraints: []types.AIRecommendationConstraint{{Metric: "ttft-ms"}}}
	perfPB := &pb.PerformanceTarget{Constraints: []*pb.PerformanceConstraint{{Metric: "ttft-ms"}}}

	return []shapeCase{
		{
			op: "CreateAIWorkloadConfig",
			call: func(ctx context.Context, c *sagemaker.Client) (any, error) {
				return c.CreateAIWorkloadConfig(ctx, &sagemaker.CreateAIWorkloadConfigInput{AIWorkloadConfigName: s("wl"),
					AIWorkloadConfigs: wlConfigsSDK, DatasetConfig: datasetSDK, Tags: tags})
			},
			wantReq: &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "wl", AiWorkloadConfigs: wlConfigsPB, DatasetConfig: datasetPB, Tags: pbTags},
			resp:    &pb.CreateAIWorkloadConfigResponse{AiWorkloadConfigArn: wlARN},
			wantOut: &sagemaker.CreateAIWorkloadConfigOutput{AIWorkloadConfigArn: s(wlARN)},
		},
		{
			op: "DescribeAIWorkloadConfig",
			call: func(ctx context.Context, c *sagemaker.Client) (any, error) {
				return c.DescribeAIWorkloadConfig(ctx, &sagemaker.DescribeAIWorkloadConfigInput{AIWorkloadConfigName: s(wlARN)})
			},
			wantReq: &pb.DescribeAIWorkloadConfigRequest{AiWorkloadConfigName: wlARN},
			resp: &pb.DescribeAIWorkloadConfigResponse{AiWorkloadConfigArn: wlARN, AiWorkloadConfigName: "wl", AiWorkloadConfigs: wlConfigsPB,
				DatasetConfig: datasetPB, Tags: pbTags, CreationTime: ts1},
			wantOut: &sagemaker.DescribeAIWorkloadConfigOutput{AIWorkloadConfigArn: s(wlARN), AIWorkloadConfigName: s("wl"), CreationTime: &t1,
				AIWorkloadConfigs: wlConfigsSDK, DatasetConfig: datasetSDK, Tags: tags},
		},
		{
			op: "ListAIWorkloadConfigs",
			call: func(ctx context.Context, c *sagemaker.Client) (any, error) {
				return c.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{CreationTimeAfter: &t1, CreationTimeBefore: &t2,
					MaxResults: aws.Int32(2), NameContains: s("w"), NextToken: s("tok1"), SortBy: types.ListAIWorkloadConfigsSortByName,
					SortOrder: types.SortOrderAscending})
			},
			wantReq: &pb.ListAIWorkloadConfigsRequest{NameContains: "w", CreationTimeAfter: ts1, CreationTimeBefore: ts2, SortBy: "Name",
				SortOrder: "Ascending", MaxResults: 2, NextToken: "tok1"},
			resp: &pb.ListAIWorkloadConfigsResponse{NextToken: "tok2", AiWorkloadConfigs: []*pb.AIWorkloadConfigSummary{
				{AiWorkloadConfigName: "wl", AiWorkloadConfigArn: wlARN, CreationTime: ts1},
				{AiWorkloadConfigName: "wl2", AiWorkloadConfigArn: wlARN + "2", CreationTime: ts3}}},
			wantOut: &sagemaker.ListAIWorkloadConfigsOutput{NextToken: s("tok2"), AIWorkloadConfigs: []types.AIWorkloadConfigSummary{
				{AIWorkloadConfigName: s("wl"), AIWorkloadConfigArn: s(wlARN), CreationTime: &t1},
				{AIWorkloadConfigName: s("wl2"), AIWorkloadConfigArn: s(wlARN + "2"), CreationTime: &t3}}},
		},
		{
			op: "DeleteAIWorkloadConfig",
			call: func(ctx context.Context, c *sagemaker.Client) (any, error) {
				return c.DeleteAIWorkloadConfig(ctx, &sagemaker.DeleteAIWorkloadConfigInput{AIWorkloadConfigName: s("wl")})
			},
			wantReq: &pb.DeleteAIWorkloadConfigRequest{AiWorkloadConfigName: "wl"},
			resp:    &pb.DeleteAIWorkloadConfigResponse{AiWorkloadConfigArn: wlARN},
			wantOut: &sagemaker.DeleteAIWorkloadConfigOutput{AIWorkloadConfigArn: s(wlARN)},
		},
		{
			op: "CreateAIBenchmarkJob",
			call: func(ctx context.Context, c *sagemaker.Client) (any, error) {
				return c.CreateAIBenchmarkJob(ctx, &sagemaker.CreateAIBenchmarkJobInput{AIBenchmarkJobName: s("bj"), AIWorkloadConfigIdentifier: s("wl"),
					BenchmarkTarget: targetSDK, OutputConfig: &types.AIBenchmarkOutputConfig{S3OutputLocation: s("s3://bucket/out"), MlflowConfig: mlflowSDK},
					RoleArn: s(roleARN), NetworkConfig: netSDK, Tags: tags})
			},
			wantReq: &pb.CreateAIBenchmarkJobRequest{AiBenchmarkJobName: "bj", AiWorkloadConfigIdentifier: "wl", BenchmarkTarget: targetPB,
				OutputConfig: &pb.AIBenchmarkOutputConfig{S3OutputLocation: "s3://bucket/out", MlflowConfig: mlflowPB}, RoleArn: roleARN,
				NetworkConfig: netPB, Tags: pbTags},
			resp:    &pb.CreateAIBenchmarkJobResponse{AiBenchmarkJobArn: bjARN},
			wantOut: &sagemaker.CreateAIBenchmarkJobOutput{AIBenchmarkJobArn: s(bjARN)},
		},
		{
			op: "DescribeAIBenchmarkJob",
			call: func(ctx context.Context, c *sagemaker.Client) (any, error) {
				return c.DescribeAIBenchmarkJob(ctx, &sagemaker.DescribeAIBenchmarkJobInput{AIBenchmarkJobName: s("bj")})
			},
			wantReq: &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: "bj"},
			resp: &pb.DescribeAIBenchmarkJobResponse{AiBenchmarkJobArn: bjARN, AiBenchmarkJobName: "bj", AiBenchmarkJobStatus: "Failed",
				AiWorkloadConfigIdentifier: "wl", BenchmarkTarget: targetPB, CreationTime: ts1,
				OutputConfig: &pb.AIBenchmarkOutputConfig{S3OutputLocation: "s3://bucket/out", MlflowConfig: mlflowPB,
					CloudWatchLogs: []*pb.CloudWatchLogs{{LogGroupArn: "arn:aws:logs:us-east-1:000000000000:log-group:/perfleet/ai-benchmark-jobs", LogStreamName: "bj"}}},
				RoleArn: roleARN, StartTime: ts1, EndTime: ts2, FailureReason: "no agents", NetworkConfig: netPB, Tags: pbTags, LastModifiedTime: ts2},
			wantOut: &sagemaker.DescribeAIBenchmarkJobOutput{AIBenchmarkJobArn: s(bjARN), AIBenchmarkJobName: s("bj"), AIBenchmarkJobStatus: types.AIBenchmarkJobStatusFailed,
				AIWorkloadConfigIdentifier: s("wl"), BenchmarkTarget: targetSDK, CreationTime: &t1,
				OutputConfig: &types.AIBenchmarkOutputResult{S3OutputLocation: s("s3://bucket/out"), MlflowConfig: mlflowSDK,
					CloudWatchLogs: []types.AICloudWatchLogs{{LogGroupArn: s("arn:aws:logs:us-east-1:000000000000:log-group:/perfleet/ai-benchmark-jobs"), LogStreamName: s("bj")}}},
				RoleArn: s(roleARN), StartTime: &t1, EndTime: &t2, FailureReason: s("no agents"), NetworkConfig: netSDK, Tags: tags},
		},
		{
			op: "ListAIBenchmarkJobs",
			call: func(ctx context.Context, c *sagemaker.Client) (any, error) {
				return c.ListAIBenchmarkJobs(ctx, &sagemaker.ListAIBenchmarkJobsInput{CreationTimeAfter: &t1, CreationTimeBefore: &t2,
					MaxResults: aws.Int32(100), NameContains: s("b"), NextToken: s("tok1"), SortBy: types.ListAIBenchmarkJobsSortByStatus,
					SortOrder: types.SortOrderDescending, StatusEquals: types.AIBenchmarkJobStatusStopped})
			},
			wantReq: &pb.ListAIBenchmarkJobsRequest{NameContains: "b", StatusEquals: "Stopped", CreationTimeAfter: ts1, CreationTimeBefore: ts2,
				SortBy: "Status", SortOrder: "Descending", MaxResults: 100, NextToken: "tok1"},
			resp: &pb.ListAIBenchmarkJobsResponse{NextToken: "tok2", AiBenchmarkJobs: []*pb.AIBenchmarkJobSummary{{AiBenchmarkJobName: "bj",
				AiBenchmarkJobArn: bjARN, AiBenchmarkJobStatus: "Stopped", CreationTime: ts1, EndTime: ts2, AiWorkloadConfigName: "wl"}}},
			wantOut: &sagemaker.ListAIBenchmarkJobsOutput{NextToken: s("tok2"), AIBenchmarkJobs: []types.AIBenchmarkJobSummary{{AIBenchmarkJobName: s("bj"),
				AIBenchmarkJobArn: s(bjARN), AIBenchmarkJobStatus: types.AIBenchmarkJobStatusStopped, CreationTime: &t1, EndTime: &t2, AIWorkloadConfigName: s("wl")}}},
		},
		{
			op: "StopAIBenchmarkJob",
			call: func(ctx context.Context, c *sagemaker.Client) (any, error) {
				return c.StopAIBenchmarkJob(ctx, &sagemaker.StopAIBenchmarkJobInput{AIBenchmarkJobName: s("bj")})
			},
			wantReq: &pb.StopAIBenchmarkJobRequest{AiBenchmarkJobName: "bj"},
			resp:    &pb.StopAIBenchmarkJobResponse{AiBenchmarkJobArn: bjARN},
			wantOut: &sagemaker.StopAIBenchmarkJobOutput{AIBenchmarkJobArn: s(bjARN)},
		},
		{
			op: "DeleteAIBenchmarkJob",
			call: func(ctx context.Context, c *sagemaker.Client) (any, error) {
				return c.DeleteAIBenchmarkJob(ctx, &sagemaker.DeleteAIBenchmarkJobInput{AIBenchmarkJobName: s("bj")})
			},
			wantReq: &pb.DeleteAIBenchmarkJobRequest{AiBenchmarkJobName: "bj"},
			resp:    &pb.DeleteAIBenchmarkJobResponse{AiBenchmarkJobArn: bjARN},
			wantOut: &sagemaker.DeleteAIBenchmarkJobOutput{AIBenchmarkJobArn: s(bjARN)},
		},
		{
			op: "CreateAIRecommendationJob",
			call: func(ctx context.Context, c *sagemaker.Client) (any, error) {
				return c.CreateAIRecommendationJob(ctx, &sagemaker.CreateAIRecommendationJobInput{AIRecommendationJobName: s("rj"),
					AIWorkloadConfigIdentifier: s("wl"), ModelSource: &types.AIModelSourceMemberS3{Value: types.AIModelSourceS3{S3Uri: s("s3://bucket/model")}},
					OutputConfig:      &types.AIRecommendationOutputConfig{S3OutputLocation: s("s3://bucket/out"), ModelPackageGroupIdentifier: s("group"), MlflowConfig: mlflowSDK},
					PerformanceTarget: perfSDK, RoleArn: s(roleARN), ComputeSpec: computeSDK,
					InferenceSpecification: &types.AIRecommendationInferenceSpecification{Framework: types.AIRecommendationInferenceFrameworkVllm},
					OptimizeModel:          aws.Bool(false),
					AdapterSource: &types.AIAdapterSourceMemberS3Uris{Value: []types.AIAdapterS3Entry{
						{AdapterId: s("a1"), S3Uri: s("s3://bucket/a1")}, {AdapterId: s("a2"), S3Uri: s("s3://bucket/a2")}}},
					Tags: tags})
			},
			wantReq: &pb.CreateAIRecommendationJobRequest{AiRecommendationJobName: "rj", AiWorkloadConfigIdentifier: "wl",
				ModelSource:       &pb.ModelSource{S3: &pb.S3ModelSource{S3Uri: "s3://bucket/model"}},
				OutputConfig:      &pb.AIRecommendationOutputConfig{S3OutputLocation: "s3://bucket/out", ModelPackageGroupIdentifier: "group", MlflowConfig: mlflowPB},
				PerformanceTarget: perfPB, RoleArn: roleARN, ComputeSpec: computePB, InferenceSpecification: &pb.InferenceSpecification{Framework: "VLLM"},
				OptimizeModel: proto.Bool(false),
				AdapterSource: &pb.AdapterSource{S3Uris: []*pb.AdapterS3Uri{{AdapterId: "a1", S3Uri: "s3://bucket/a1"}, {AdapterId: "a2", S3Uri: "s3://bucket/a2"}}},
				Tags:          pbTags},
			resp:    &pb.CreateAIRecommendationJobResponse{AiRecommendationJobArn: rjARN},
			wantOut: &sagemaker.CreateAIRecommendationJobOutput{AIRecommendationJobArn: s(rjARN)},
		},
		{
			op: "DescribeAIRecommendationJob",
			call: func(ctx context.Context, c *sagemaker.Client) (any, error) {
				return c.DescribeAIRecommendationJob(ctx, &sagemaker.DescribeAIRecommendationJobInput{AIRecommendationJobName: s("rj")})
			},
			wantReq: &pb.DescribeAIRecommendationJobRequest{AiRecommendationJobName: "rj"},
			resp: &pb.DescribeAIRecommendationJobResponse{AiRecommendationJobArn: rjARN, AiRecommendationJobName: "rj", AiRecommendationJobStatus: "Completed",
				AiWorkloadConfigIdentifier: "wl", CreationTime: ts1, ModelSource: &pb.ModelSource{S3: &pb.S3ModelSource{S3Uri: "hf://org/model"}},
				OutputConfig: &pb.AIRecommendationOutputConfig{S3OutputLocation: "s3://bucket/out", ModelPackageGroupIdentifier: "group", MlflowConfig: mlflowPB},
				RoleArn:      roleARN, StartTime: ts1, EndTime: ts3, FailureReason: "partial", ComputeSpec: computePB,
				InferenceSpecification: &pb.InferenceSpecification{Framework: "LMI"}, OptimizeModel: false, PerformanceTarget: perfPB,
				AdapterSource: &pb.AdapterSource{ModelPackageArns: []*pb.AdapterModelPackage{{AdapterId: "p1", ModelPackageArn: pkgARN}}},
				Tags:          pbTags,
				Recommendations: []*pb.AIRecommendation{{
					RecommendationDescription: "best",
					OptimizationDetails:       []*pb.OptimizationDetail{{OptimizationType: "KernelTuning", OptimizationConfig: map[string]string{"tile": "64", "stages": "3"}}},
					ModelDetails: &pb.ModelDetails{ModelPackageArn: pkgARN, InferenceSpecificationName: "spec-1",
						InstanceDetails: []*pb.InstanceDetail{{InstanceType: "ml.g5.12xlarge", InstanceCount: 2, CopyCountPerInstance: 4}}},
					DeploymentConfiguration: &pb.DeploymentConfiguration{ImageUri: "vllm/vllm-openai:v0.8", InstanceType: "ml.g5.12xlarge", InstanceCount: 2,
						CopyCountPerInstance: 4, EnvironmentVariables: map[string]string{"TP": "2"}, MinCpuMemoryRequiredInMb: 65536,
						S3: []*pb.S3Channel{{ChannelName: "model", Uri: "s3://bucket/model"}}},
					AiBenchmarkJobArn:   bjARN,
					ExpectedPerformance: []*pb.ExpectedPerformance{{Metric: "TimeToFirstToken", Stat: "p50", Value: "41.5", Unit: "ms"}},
					AdapterDetails:      &pb.AdapterDetails{S3Uris: []string{"s3://bucket/x"}, ModelPackageArns: []string{pkgARN}},
				}},
				LastModifiedTime: ts3,
				Candidates:       []*pb.RecommendationCandidate{{Name: "c1", Status: "Completed", SetupTime: durationpb.New(time.Second), Rank: 1}},
			},
			wantOut: &sagemaker.DescribeAIRecommendationJobOutput{AIRecommendationJobArn: s(rjARN), AIRecommendationJobName: s("rj"),
				AIRecommendationJobStatus: types.AIRecommendationJobStatusCompleted, AIWorkloadConfigIdentifier: s("wl"), CreationTime: &t1,
				ModelSource:  &types.AIModelSourceMemberS3{Value: types.AIModelSourceS3{S3Uri: s("hf://org/model")}},
				OutputConfig: &types.AIRecommendationOutputResult{S3OutputLocation: s("s3://bucket/out"), ModelPackageGroupIdentifier: s("group"), MlflowConfig: mlflowSDK},
				RoleArn:      s(roleARN), StartTime: &t1, EndTime: &t3, FailureReason: s("partial"), ComputeSpec: computeSDK,
				InferenceSpecification: &types.AIRecommendationInferenceSpecification{Framework: types.AIRecommendationInferenceFrameworkLmi},
				OptimizeModel:          aws.Bool(false), PerformanceTarget: perfSDK,
				AdapterSource: &types.AIAdapterSourceMemberModelPackageArns{Value: []types.AIAdapterModelPackageEntry{{AdapterId: s("p1"), ModelPackageArn: s(pkgARN)}}},
				Tags:          tags,
				Recommendations: []types.AIRecommendation{{
					RecommendationDescription: s("best"),
					OptimizationDetails: []types.AIRecommendationOptimizationDetail{{OptimizationType: types.AIRecommendationOptimizationTypeKernelTuning,
						OptimizationConfig: map[string]string{"tile": "64", "stages": "3"}}},
					ModelDetails: &types.AIRecommendationModelDetails{ModelPackageArn: s(pkgARN), InferenceSpecificationName: s("spec-1"),
						InstanceDetails: []types.AIRecommendationInstanceDetail{{InstanceType: "ml.g5.12xlarge", InstanceCount: aws.Int32(2), CopyCountPerInstance: aws.Int32(4)}}},
					DeploymentConfiguration: &types.AIRecommendationDeploymentConfiguration{ImageUri: s("vllm/vllm-openai:v0.8"), InstanceType: "ml.g5.12xlarge",
						InstanceCount: aws.Int32(2), CopyCountPerInstance: aws.Int32(4), EnvironmentVariables: map[string]string{"TP": "2"},
						MinCpuMemoryRequiredInMb: aws.Int32(65536), S3: []types.AIRecommendationDeploymentS3Channel{{ChannelName: s("model"), Uri: s("s3://bucket/model")}}},
					AIBenchmarkJobArn:   s(bjARN),
					ExpectedPerformance: []types.AIRecommendationPerformanceMetric{{Metric: s("TimeToFirstToken"), Stat: s("p50"), Value: s("41.5"), Unit: s("ms")}},
					AdapterDetails: &types.AIRecommendationAdapterDetails{S3Uris: []types.AIAdapterS3Entry{{S3Uri: s("s3://bucket/x")}},
						ModelPackageArns: []types.AIAdapterModelPackageEntry{{AdapterId: s("p1"), ModelPackageArn: s(pkgARN)}}},
				}},
			},
		},
		{
			op: "ListAIRecommendationJobs",
			call: func(ctx context.Context, c *sagemaker.Client) (any, error) {
				return c.ListAIRecommendationJobs(ctx, &sagemaker.ListAIRecommendationJobsInput{CreationTimeAfter: &t1, CreationTimeBefore: &t3,
					MaxResults: aws.Int32(1), NameContains: s("r"), NextToken: s("tok1"), SortBy: types.ListAIRecommendationJobsSortByCreationTime,
					SortOrder: types.SortOrderAscending, StatusEquals: types.AIRecommendationJobStatusInProgress})
			},
			wantReq: &pb.ListAIRecommendationJobsRequest{NameContains: "r", StatusEquals: "InProgress", CreationTimeAfter: ts1, CreationTimeBefore: ts3,
				SortBy: "CreationTime", SortOrder: "Ascending", MaxResults: 1, NextToken: "tok1"},
			resp: &pb.ListAIRecommendationJobsResponse{NextToken: "tok2", AiRecommendationJobs: []*pb.AIRecommendationJobSummary{{AiRecommendationJobName: "rj",
				AiRecommendationJobArn: rjARN, AiRecommendationJobStatus: "InProgress", CreationTime: ts1, EndTime: ts2}}},
			wantOut: &sagemaker.ListAIRecommendationJobsOutput{NextToken: s("tok2"), AIRecommendationJobs: []types.AIRecommendationJobSummary{{
				AIRecommendationJobName: s("rj"), AIRecommendationJobArn: s(rjARN), AIRecommendationJobStatus: types.AIRecommendationJobStatusInProgress,
				CreationTime: &t1, EndTime: &t2}}},
		},
		{
			op: "StopAIRecommendationJob",
			call: func(ctx context.Context, c *sagemaker.Client) (any, error) {
				return c.StopAIRecommendationJob(ctx, &sagemaker.StopAIRecommendationJobInput{AIRecommendationJobName: s("rj")})
			},
			wantReq: &pb.StopAIRecommendationJobRequest{AiRecommendationJobName: "rj"},
			resp:    &pb.StopAIRecommendationJobResponse{AiRecommendationJobArn: rjARN},
			wantOut: &sagemaker.StopAIRecommendationJobOutput{AIRecommendationJobArn: s(rjARN)},
		},
		{
			op: "DeleteAIRecommendationJob",
			call: func(ctx context.Context, c *sagemaker.Client) (any, error) {
				return c.DeleteAIRecommendationJob(ctx, &sagemaker.DeleteAIRecommendationJobInput{AIRecommendationJobName: s("rj")})
			},
			wantReq: &pb.DeleteAIRecommendationJobRequest{AiRecommendationJobName: "rj"},
			resp:    &pb.DeleteAIRecommendationJobResponse{AiRecommendationJobArn: rjARN},
			wantOut: &sagemaker.DeleteAIRecommendationJobOutput{AIRecommendationJobArn: s(rjARN)},
		},
	}
}

// TestShapesThroughSDK sends a fully populated request of every operation
// through the SDK's own serializer and checks the gateway decoded every
// field into the perfleet.v1 request; the fully populated response comes
// back through the gateway's encoder and the SDK's deserializer, and must
// arrive whole.
func TestShapesThroughSDK(t *testing.T) {
	f, url := fakeGateway(t, nil)
	c := sdkClient(url, DevAccessKeyID, DevSecretAccessKey, "")
	ctx := context.Background()
	cases := shapeCases()
	if len(cases) != len(operationNames) {
		t.Fatalf("%d cases for %d operations", len(cases), len(operationNames))
	}
	for _, tc := range cases {
		t.Run(tc.op, func(t *testing.T) {
			requireFull(t, tc.op+"Request", tc.wantReq.ProtoReflect(), true)
			requireFull(t, tc.op+"Response", tc.resp.ProtoReflect(), false)
			f.set(tc.resp, nil)
			out, err := tc.call(ctx, c)
			if err != nil {
				t.Fatalf("%s: %v", tc.op, err)
			}
			method, req, _ := f.last()
			if want := "/perfleet.v1.InferenceOptimization/" + tc.op; method != want {
				t.Errorf("called %s, want %s", method, want)
			}
			if !proto.Equal(req, tc.wantReq) {
				t.Errorf("decoded request:\n%s\nwant:\n%s", prototext.Format(req), prototext.Format(tc.wantReq))
			}
			if id, ok := awsmiddleware.GetRequestIDMetadata(resultMetadata(t, out)); !ok || len(id) != 36 {
				t.Errorf("request ID %q, want a UUID", id)
			}
			// ResultMetadata has no exported fields: both sides marshal it as {}.
			got, _ := json.Marshal(out)
			want, _ := json.Marshal(tc.wantOut)
			if string(got) != string(want) {
				t.Errorf("SDK output:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// resultMetadata returns an SDK output's ResultMetadata.
func resultMetadata(t *testing.T, out any) middleware.Metadata {
	t.Helper()
	v := reflect.ValueOf(out).Elem().FieldByName("ResultMetadata")
	md, ok := v.Interface().(middleware.Metadata)
	if !ok {
		t.Fatalf("%T has no ResultMetadata", out)
	}
	return md
}

// TestEncodeLeavesOutGRPCOnlyFields checks that perfleet-only response
// fields never reach the JSON wire, that an AdapterDetails entry names its
// adapter, and that a false OptimizeModel is written.
func TestEncodeLeavesOutGRPCOnlyFields(t *testing.T) {
	var describe *pb.DescribeAIRecommendationJobResponse
	for _, tc := range shapeCases() {
		if tc.op == "DescribeAIRecommendationJob" {
			describe = tc.resp.(*pb.DescribeAIRecommendationJobResponse)
		}
	}
	b, err := encodeResponse(describe)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, bad := range []string{"LastModifiedTime", "Candidates", "candidates", "SetupTime", "last_modified_time"} {
		if strings.Contains(s, bad) {
			t.Errorf("response JSON carries %s: %s", bad, s)
		}
	}
	for _, want := range []string{`"OptimizeModel":false`, `"ModelPackageArns":[{"AdapterId":"p1","ModelPackageArn":"` + pkgARN + `"}]`,
		`"S3Uris":[{"S3Uri":"s3://bucket/x"}]`, `"CreationTime":1767225600.25`, `"EndTime":1767232800,`} {
		if !strings.Contains(s, want) {
			t.Errorf("response JSON lacks %s: %s", want, s)
		}
	}
	// An empty union is left out rather than written as {}.
	b, _ = encodeResponse(&pb.DescribeAIRecommendationJobResponse{AdapterSource: &pb.AdapterSource{}, ModelSource: &pb.ModelSource{}})
	if strings.Contains(string(b), "AdapterSource") || strings.Contains(string(b), "ModelSource") {
		t.Errorf("empty unions written: %s", b)
	}
}

// TestDecodeHandWrittenJSON decodes requests as the API reference shows
// them, and refuses what does not fit.
func TestDecodeHandWrittenJSON(t *testing.T) {
	var req pb.CreateAIBenchmarkJobRequest
	body := `{"AIBenchmarkJobName":"bj","AIWorkloadConfigIdentifier":"wl",
		"BenchmarkTarget":{"Endpoint":{"Identifier":"my-endpoint","InferenceComponents":[{"Identifier":"ic"}]}},
		"OutputConfig":{"S3OutputLocation":"s3://b/o"},"RoleArn":"` + roleARN + `","Tags":[{"Key":"k","Value":"v"}],
		"NetworkConfig":null,"ClientToken":"tok-1"}`
	if err := decodeRequest([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	want := &pb.CreateAIBenchmarkJobRequest{AiBenchmarkJobName: "bj", AiWorkloadConfigIdentifier: "wl",
		BenchmarkTarget: &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: "my-endpoint", InferenceComponents: []*pb.InferenceComponentRef{{Identifier: "ic"}}}},
		OutputConfig:    &pb.AIBenchmarkOutputConfig{S3OutputLocation: "s3://b/o"}, RoleArn: roleARN, Tags: []*pb.Tag{{Key: "k", Value: "v"}}, ClientToken: "tok-1"}
	if !proto.Equal(&req, want) {
		t.Errorf("got %v, want %v", &req, want)
	}

	var list pb.ListAIBenchmarkJobsRequest
	if err := decodeRequest([]byte(`{"CreationTimeAfter":1767225600.123456789,"CreationTimeBefore":1.7672256E9,"MaxResults":5}`), &list); err != nil {
		t.Fatal(err)
	}
	if got := list.GetCreationTimeAfter().AsTime(); !got.Equal(time.Unix(1767225600, 123456789)) {
		t.Errorf("fractional epoch seconds: %v", got)
	}
	if got := list.GetCreationTimeBefore().AsTime(); !got.Equal(time.Unix(1767225600, 0)) {
		t.Errorf("exponent epoch seconds: %v", got)
	}
	if err := decodeRequest(nil, &pb.ListAIBenchmarkJobsRequest{}); err != nil {
		t.Errorf("empty body: %v", err)
	}

	for _, tc := range []struct {
		body, typ, contains string
	}{
		{`{"AIBenchmarkJobName":"bj","Bogus":1}`, typeValidation, `unknown member "Bogus"`},
		{`{"BenchmarkTarget":{"Endpoint":{"Identifier":"x","Extra":true}}}`, typeValidation, `BenchmarkTarget.Endpoint: unknown member "Extra"`},
		{`{"ai_benchmark_job_name":"bj"}`, typeValidation, `unknown member "ai_benchmark_job_name"`},
		{`{"AIBenchmarkJobName":7}`, typeSerialization, "AIBenchmarkJobName: expected a string, got a number"},
		{`{"Tags":{"Key":"k"}}`, typeSerialization, "Tags: expected a JSON array"},
		{`{"Tags":[{"Key":1}]}`, typeSerialization, "Tags[0].Key: expected a string"},
		{`[1]`, typeSerialization, "request: expected a JSON object"},
		{`{"AIBenchmarkJobName":`, typeSerialization, "not valid JSON"},
		{`{} {}`, typeSerialization, "more than one JSON value"},
	} {
		err := decodeRequest([]byte(tc.body), &pb.CreateAIBenchmarkJobRequest{})
		ae, ok := err.(*apiError)
		if !ok || ae.typ != tc.typ || !strings.Contains(ae.message, tc.contains) {
			t.Errorf("%s: got %v, want %s containing %q", tc.body, err, tc.typ, tc.contains)
		}
	}
	for _, tc := range []struct{ body, contains string }{
		{`{"MaxResults":2.5}`, "MaxResults: 2.5 is not a 32-bit integer"},
		{`{"MaxResults":4294967296}`, "not a 32-bit integer"},
		{`{"CreationTimeAfter":"2026-01-01T00:00:00Z"}`, "expected a timestamp in epoch seconds"},
	} {
		err := decodeRequest([]byte(tc.body), &pb.ListAIBenchmarkJobsRequest{})
		ae, ok := err.(*apiError)
		if !ok || ae.typ != typeSerialization || !strings.Contains(ae.message, tc.contains) {
			t.Errorf("%s: got %v, want SerializationException containing %q", tc.body, err, tc.contains)
		}
	}
	var rj pb.CreateAIRecommendationJobRequest
	if err := decodeRequest([]byte(`{"OptimizeModel":false}`), &rj); err != nil || rj.OptimizeModel == nil || *rj.OptimizeModel {
		t.Errorf("OptimizeModel false must be present: %v %v", err, rj.OptimizeModel)
	}
}

func TestEpochSeconds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"0", time.Unix(0, 0)},
		{"1767225600", time.Unix(1767225600, 0)},
		{"1767225600.5", time.Unix(1767225600, 500e6)},
		{"1767225600.000000001", time.Unix(1767225600, 1)},
		{"1767225600.1234567899", time.Unix(1767225600, 123456789)},
		{"1.767225600123E9", time.Unix(1767225600, 123e6)},
		{"-1.5", time.Unix(-2, 500e6)},
	} {
		got, err := parseEpochSeconds(tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseEpochSeconds(%s) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "abc", "1e400", "1.2.3"} {
		if _, err := parseEpochSeconds(bad); err == nil {
			t.Errorf("parseEpochSeconds(%q) accepted", bad)
		}
	}
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Unix(1767225600, 0), "1767225600"},
		{time.Unix(1767225600, 250e6), "1767225600.25"},
		{time.Unix(1767225600, 123999999), "1767225600.123"},
		{time.Unix(1767225600, 5e6), "1767225600.005"},
	} {
		if got := formatEpochSeconds(timestamppb.New(tc.in)); got != tc.want {
			t.Errorf("formatEpochSeconds(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestAWSPath(t *testing.T) {
	in := (&pb.CreateAIBenchmarkJobRequest{}).ProtoReflect().Descriptor()
	rj := (&pb.CreateAIRecommendationJobRequest{}).ProtoReflect().Descriptor()
	for _, tc := range []struct {
		md   protoreflect.MessageDescriptor
		path string
		want string
	}{
		{in, "ai_benchmark_job_name", "AIBenchmarkJobName"},
		{in, "tags[3].key", "Tags[3].Key"},
		{in, "benchmark_target.endpoint.inference_components[0].identifier", "BenchmarkTarget.Endpoint.InferenceComponents[0].Identifier"},
		{in, "output_config.cloud_watch_logs", "OutputConfig.CloudWatchLogs"},
		{in, "network_config.vpc_config.security_group_ids[1]", "NetworkConfig.VpcConfig.SecurityGroupIds[1]"},
		{in, "client_token", "ClientToken"},
		{rj, "performance_target.constraints[0].metric", "PerformanceTarget.Constraints[0].Metric"},
		{rj, "adapter_source.s3_uris[0].adapter_id", "AdapterSource.S3Uris[0].AdapterId"},
		{rj, "optimize_model", "OptimizeModel"},
		{in, "no_such_field", "no_such_field"},
		{in, "role_arn.deeper", "role_arn.deeper"},
	} {
		if got := awsPath(tc.md, tc.path); got != tc.want {
			t.Errorf("awsPath(%s) = %s, want %s", tc.path, got, tc.want)
		}
	}
}
