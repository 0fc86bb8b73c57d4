package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	smithy "github.com/aws/smithy-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/perfleet/perfleet/agent/daemon"
	"github.com/perfleet/perfleet/agent/gpu"
	"github.com/perfleet/perfleet/coordinator/gateway"
	"github.com/perfleet/perfleet/coordinator/server"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

const (
	e2eRole = "arn:aws:iam::000000000000:role/PerfleetBench"
	e2eSpec = "benchmark: {type: aiperf}\nparameters: {concurrency: 1, request_count: 5, isl: 16, osl: 8}\n"
)

// e2eClient is the stock SageMaker client with only BaseEndpoint changed.
func e2eClient(url, region, akid, secret string) *sagemaker.Client {
	return sagemaker.NewFromConfig(aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""),
	}, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(url) })
}

// apiCode returns an SDK error's AWS error code and message.
func apiCode(err error) (string, string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "", ""
}

func wantCode(t *testing.T, what string, err error, code, contains string) {
	t.Helper()
	got, msg := apiCode(err)
	if got != code || !strings.Contains(msg, contains) {
		t.Fatalf("%s: got %v; want %s containing %q", what, err, code, contains)
	}
}

func terminal(s string) bool { return s == "Completed" || s == "Failed" || s == "Stopped" }

// TestSageMakerSDKAgainstCluster runs every one of the 14 operations with
// the real AWS SDK for Go v2 SageMaker client against an in-process
// perfleet node, changing nothing but BaseEndpoint.
func TestSageMakerSDKAgainstCluster(t *testing.T) {
	s := server.TestCluster(t, 1, func(_ int, c *server.Config) { c.GatewayAddr = "127.0.0.1:0" })[0]
	if s.GatewayAddr() == "" {
		t.Fatal("no gateway address")
	}
	url := "http://" + s.GatewayAddr()
	region := s.Scope().Region
	c := e2eClient(url, region, gateway.DevAccessKeyID, gateway.DevSecretAccessKey)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := "file://" + t.TempDir()

	// --- AI workload configs -------------------------------------------
	wl, err := c.CreateAIWorkloadConfig(ctx, &sagemaker.CreateAIWorkloadConfigInput{
		AIWorkloadConfigName: aws.String("wl-main"),
		AIWorkloadConfigs:    &types.AIWorkloadConfigs{WorkloadSpec: &types.WorkloadSpecMemberInline{Value: e2eSpec}},
		DatasetConfig: &types.AIDatasetConfigMemberInputDataConfig{Value: []types.AIWorkloadInputDataConfig{{ChannelName: aws.String("dataset"),
			DataSource: &types.AIWorkloadDataSource{S3DataSource: &types.AIWorkloadS3DataSource{S3Uri: aws.String("s3://datasets/chat")}}}}},
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("ml")}},
	})
	if err != nil {
		t.Fatalf("CreateAIWorkloadConfig: %v", err)
	}
	wlARN := aws.ToString(wl.AIWorkloadConfigArn)
	if want := fmt.Sprintf("arn:aws:sagemaker:%s:000000000000:ai-workload-config/wl-main", region); wlARN != want {
		t.Errorf("ARN %s, want %s", wlARN, want)
	}
	if id, ok := awsmiddleware.GetRequestIDMetadata(wl.ResultMetadata); !ok || len(id) != 36 {
		t.Errorf("x-amzn-RequestId %q", id)
	}
	for _, ident := range []string{"wl-main", wlARN} {
		d, err := c.DescribeAIWorkloadConfig(ctx, &sagemaker.DescribeAIWorkloadConfigInput{AIWorkloadConfigName: aws.String(ident)})
		if err != nil {
			t.Fatalf("DescribeAIWorkloadConfig(%s): %v", ident, err)
		}
		spec, _ := d.AIWorkloadConfigs.WorkloadSpec.(*types.WorkloadSpecMemberInline)
		ds, _ := d.DatasetConfig.(*types.AIDatasetConfigMemberInputDataConfig)
		if aws.ToString(d.AIWorkloadConfigName) != "wl-main" || aws.ToString(d.AIWorkloadConfigArn) != wlARN || spec == nil || spec.Value != e2eSpec ||
			ds == nil || len(ds.Value) != 1 || aws.ToString(ds.Value[0].DataSource.S3DataSource.S3Uri) != "s3://datasets/chat" ||
			len(d.Tags) != 1 || aws.ToString(d.Tags[0].Value) != "ml" || d.CreationTime == nil || time.Since(*d.CreationTime) > time.Minute {
			t.Errorf("DescribeAIWorkloadConfig(%s) = %+v", ident, d)
		}
	}
	_, err = c.CreateAIWorkloadConfig(ctx, &sagemaker.CreateAIWorkloadConfigInput{AIWorkloadConfigName: aws.String("wl-main"),
		AIWorkloadConfigs: &types.AIWorkloadConfigs{WorkloadSpec: &types.WorkloadSpecMemberInline{Value: e2eSpec}}})
	var inUse *types.ResourceInUse
	if !errors.As(err, &inUse) {
		t.Fatalf("duplicate name: got %v, want *types.ResourceInUse", err)
	}
	_, err = c.DescribeAIWorkloadConfig(ctx, &sagemaker.DescribeAIWorkloadConfigInput{AIWorkloadConfigName: aws.String("no-such-config")})
	var notFound *types.ResourceNotFound
	if !errors.As(err, &notFound) {
		t.Fatalf("missing config: got %v, want *types.ResourceNotFound", err)
	}
	_, err = c.CreateAIWorkloadConfig(ctx, &sagemaker.CreateAIWorkloadConfigInput{AIWorkloadConfigName: aws.String("bad_name"),
		AIWorkloadConfigs: &types.AIWorkloadConfigs{WorkloadSpec: &types.WorkloadSpecMemberInline{Value: "benchmark: {type: aiperf}\nbogus: 1\n"}}})
	wantCode(t, "invalid config", err, "ValidationException", "AIWorkloadConfigName: ")
	wantCode(t, "invalid config", err, "ValidationException", "AIWorkloadConfigs.WorkloadSpec.Inline[bogus]: unknown key")

	// Five more configs, a few milliseconds apart, to page through.
	var created []time.Time
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("page-%d", i)
		if _, err := c.CreateAIWorkloadConfig(ctx, &sagemaker.CreateAIWorkloadConfigInput{AIWorkloadConfigName: aws.String(name),
			AIWorkloadConfigs: &types.AIWorkloadConfigs{WorkloadSpec: &types.WorkloadSpecMemberInline{Value: e2eSpec}}}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		d, err := c.DescribeAIWorkloadConfig(ctx, &sagemaker.DescribeAIWorkloadConfigInput{AIWorkloadConfigName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, *d.CreationTime)
		time.Sleep(3 * time.Millisecond)
	}
	// Pagination by hand: MaxResults 2 and NextToken.
	var names []string
	var pages int
	var token *string
	for {
		p, err := c.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{NameContains: aws.String("page"), MaxResults: aws.Int32(2),
			SortBy: types.ListAIWorkloadConfigsSortByName, SortOrder: types.SortOrderAscending, NextToken: token})
		if err != nil {
			t.Fatalf("ListAIWorkloadConfigs page %d: %v", pages, err)
		}
		pages++
		if len(p.AIWorkloadConfigs) > 2 {
			t.Fatalf("page of %d", len(p.AIWorkloadConfigs))
		}
		for _, s := range p.AIWorkloadConfigs {
			names = append(names, aws.ToString(s.AIWorkloadConfigName))
			if !strings.HasSuffix(aws.ToString(s.AIWorkloadConfigArn), "/"+aws.ToString(s.AIWorkloadConfigName)) || s.CreationTime == nil {
				t.Errorf("summary %+v", s)
			}
		}
		if token = p.NextToken; token == nil {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if got := strings.Join(names, ","); got != "page-1,page-2,page-3,page-4,page-5" || pages != 3 {
		t.Errorf("paged %d times through %s", pages, got)
	}
	// The SDK's own paginator follows NextToken too.
	pager := sagemaker.NewListAIWorkloadConfigsPaginator(c, &sagemaker.ListAIWorkloadConfigsInput{NameContains: aws.String("page"),
		SortBy: types.ListAIWorkloadConfigsSortByName, SortOrder: types.SortOrderDescending}, func(o *sagemaker.ListAIWorkloadConfigsPaginatorOptions) { o.Limit = 2 })
	names = nil
	for pager.HasMorePages() {
		p, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range p.AIWorkloadConfigs {
			names = append(names, aws.ToString(s.AIWorkloadConfigName))
		}
	}
	if got := strings.Join(names, ","); got != "page-5,page-4,page-3,page-2,page-1" {
		t.Errorf("paginator, Name Descending: %s", got)
	}
	// Filters: NameContains, CreationTimeAfter/Before; default order is
	// CreationTime Descending.
	after := created[2].Add(time.Millisecond) // after page-3, in the millisecond the wire keeps
	l, err := c.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{NameContains: aws.String("page"), CreationTimeAfter: &after})
	if err != nil {
		t.Fatal(err)
	}
	names = nil
	for _, s := range l.AIWorkloadConfigs {
		names = append(names, aws.ToString(s.AIWorkloadConfigName))
	}
	if got := strings.Join(names, ","); got != "page-5,page-4" {
		t.Errorf("CreationTimeAfter page-3: %s", got)
	}
	before := created[1]
	l, err = c.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{CreationTimeBefore: &before, SortBy: types.ListAIWorkloadConfigsSortByCreationTime,
		SortOrder: types.SortOrderAscending})
	if err != nil {
		t.Fatal(err)
	}
	names = nil
	for _, s := range l.AIWorkloadConfigs {
		names = append(names, aws.ToString(s.AIWorkloadConfigName))
	}
	if got := strings.Join(names, ","); got != "wl-main,page-1" {
		t.Errorf("CreationTimeBefore page-2, oldest first: %s", got)
	}
	_, err = c.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{MaxResults: aws.Int32(500)})
	wantCode(t, "MaxResults 500", err, "ValidationException", "MaxResults: ")

	// --- AI benchmark jobs ------------------------------------------------
	bj, err := c.CreateAIBenchmarkJob(ctx, &sagemaker.CreateAIBenchmarkJobInput{
		AIBenchmarkJobName:         aws.String("bj-1"),
		AIWorkloadConfigIdentifier: aws.String(wlARN),
		BenchmarkTarget: &types.AIBenchmarkTargetMemberEndpoint{Value: types.AIBenchmarkEndpoint{Identifier: aws.String("http://127.0.0.1:9"),
			InferenceComponents: []types.AIBenchmarkInferenceComponent{{Identifier: aws.String("sim-llm")}}}},
		OutputConfig: &types.AIBenchmarkOutputConfig{S3OutputLocation: aws.String(out)},
		RoleArn:      aws.String(e2eRole),
		Tags:         []types.Tag{{Key: aws.String("run"), Value: aws.String("e2e")}},
	})
	if err != nil {
		t.Fatalf("CreateAIBenchmarkJob: %v", err)
	}
	bjARN := aws.ToString(bj.AIBenchmarkJobArn)
	if !strings.HasSuffix(bjARN, ":ai-benchmark-job/bj-1") {
		t.Errorf("ARN %s", bjARN)
	}
	// The config is in use while the job is active (the job fails fast
	// here, with no agents, so it may already have ended).
	if _, err := c.DeleteAIWorkloadConfig(ctx, &sagemaker.DeleteAIWorkloadConfigInput{AIWorkloadConfigName: aws.String("wl-main")}); err != nil {
		if !errors.As(err, &inUse) {
			t.Fatalf("delete a config in use: got %v, want *types.ResourceInUse", err)
		}
	} else {
		t.Log("the benchmark job ended before the config was deleted; recreating wl-main")
		if _, err := c.CreateAIWorkloadConfig(ctx, &sagemaker.CreateAIWorkloadConfigInput{AIWorkloadConfigName: aws.String("wl-main"),
			AIWorkloadConfigs: &types.AIWorkloadConfigs{WorkloadSpec: &types.WorkloadSpecMemberInline{Value: e2eSpec}},
			DatasetConfig: &types.AIDatasetConfigMemberInputDataConfig{Value: []types.AIWorkloadInputDataConfig{{ChannelName: aws.String("dataset"),
				DataSource: &types.AIWorkloadDataSource{S3DataSource: &types.AIWorkloadS3DataSource{S3Uri: aws.String("s3://datasets/chat")}}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.CreateAIBenchmarkJob(ctx, &sagemaker.CreateAIBenchmarkJobInput{AIBenchmarkJobName: aws.String("bj-1"), AIWorkloadConfigIdentifier: aws.String("wl-main"),
		BenchmarkTarget: &types.AIBenchmarkTargetMemberEndpoint{Value: types.AIBenchmarkEndpoint{Identifier: aws.String("http://127.0.0.1:9")}},
		OutputConfig:    &types.AIBenchmarkOutputConfig{S3OutputLocation: aws.String(out)}, RoleArn: aws.String(e2eRole)})
	if !errors.As(err, &inUse) {
		t.Fatalf("duplicate job: got %v, want *types.ResourceInUse", err)
	}
	_, err = c.CreateAIBenchmarkJob(ctx, &sagemaker.CreateAIBenchmarkJobInput{AIBenchmarkJobName: aws.String("bj-2"), AIWorkloadConfigIdentifier: aws.String("no-such-config"),
		BenchmarkTarget: &types.AIBenchmarkTargetMemberEndpoint{Value: types.AIBenchmarkEndpoint{Identifier: aws.String("http://127.0.0.1:9")}},
		OutputConfig:    &types.AIBenchmarkOutputConfig{S3OutputLocation: aws.String(out)}, RoleArn: aws.String(e2eRole)})
	if !errors.As(err, &notFound) {
		t.Fatalf("job over a missing config: got %v, want *types.ResourceNotFound", err)
	}
	_, err = c.CreateAIBenchmarkJob(ctx, &sagemaker.CreateAIBenchmarkJobInput{AIBenchmarkJobName: aws.String("bj-3"), AIWorkloadConfigIdentifier: aws.String("wl-main"),
		BenchmarkTarget: &types.AIBenchmarkTargetMemberEndpoint{Value: types.AIBenchmarkEndpoint{Identifier: aws.String("http://127.0.0.1:9")}},
		OutputConfig:    &types.AIBenchmarkOutputConfig{S3OutputLocation: aws.String("ftp://nowhere")}, RoleArn: aws.String("not-a-role")})
	wantCode(t, "invalid job", err, "ValidationException", "RoleArn: ")
	wantCode(t, "invalid job", err, "ValidationException", "OutputConfig.S3OutputLocation: ")

	d, err := c.DescribeAIBenchmarkJob(ctx, &sagemaker.DescribeAIBenchmarkJobInput{AIBenchmarkJobName: aws.String("bj-1")})
	if err != nil {
		t.Fatalf("DescribeAIBenchmarkJob: %v", err)
	}
	target, _ := d.BenchmarkTarget.(*types.AIBenchmarkTargetMemberEndpoint)
	if aws.ToString(d.AIBenchmarkJobArn) != bjARN || d.AIBenchmarkJobStatus == "" || aws.ToString(d.AIWorkloadConfigIdentifier) != wlARN ||
		target == nil || aws.ToString(target.Value.Identifier) != "http://127.0.0.1:9" || len(target.Value.InferenceComponents) != 1 ||
		d.OutputConfig == nil || aws.ToString(d.OutputConfig.S3OutputLocation) != out || len(d.OutputConfig.CloudWatchLogs) != 1 ||
		aws.ToString(d.OutputConfig.CloudWatchLogs[0].LogStreamName) != "bj-1" || aws.ToString(d.RoleArn) != e2eRole ||
		d.CreationTime == nil || d.StartTime == nil || len(d.Tags) != 1 {
		t.Errorf("DescribeAIBenchmarkJob = %+v", d)
	}
	l2, err := c.ListAIBenchmarkJobs(ctx, &sagemaker.ListAIBenchmarkJobsInput{NameContains: aws.String("bj"), SortBy: types.ListAIBenchmarkJobsSortByStatus,
		SortOrder: types.SortOrderAscending, MaxResults: aws.Int32(10)})
	if err != nil {
		t.Fatalf("ListAIBenchmarkJobs: %v", err)
	}
	if len(l2.AIBenchmarkJobs) != 1 || aws.ToString(l2.AIBenchmarkJobs[0].AIBenchmarkJobArn) != bjARN ||
		aws.ToString(l2.AIBenchmarkJobs[0].AIWorkloadConfigName) != "wl-main" || l2.NextToken != nil {
		t.Errorf("ListAIBenchmarkJobs = %+v", l2.AIBenchmarkJobs)
	}
	stop, err := c.StopAIBenchmarkJob(ctx, &sagemaker.StopAIBenchmarkJobInput{AIBenchmarkJobName: aws.String("bj-1")})
	if err != nil || aws.ToString(stop.AIBenchmarkJobArn) != bjARN {
		t.Fatalf("StopAIBenchmarkJob: %v %v", stop, err)
	}
	status := waitTerminal(t, ctx, func() (string, error) {
		d, err := c.DescribeAIBenchmarkJob(ctx, &sagemaker.DescribeAIBenchmarkJobInput{AIBenchmarkJobName: aws.String(bjARN)})
		if err != nil {
			return "", err
		}
		return string(d.AIBenchmarkJobStatus), nil
	})
	l2, err = c.ListAIBenchmarkJobs(ctx, &sagemaker.ListAIBenchmarkJobsInput{StatusEquals: types.AIBenchmarkJobStatus(status)})
	if err != nil || len(l2.AIBenchmarkJobs) != 1 || l2.AIBenchmarkJobs[0].EndTime == nil {
		t.Errorf("ListAIBenchmarkJobs StatusEquals %s: %+v %v", status, l2, err)
	}
	l2, err = c.ListAIBenchmarkJobs(ctx, &sagemaker.ListAIBenchmarkJobsInput{StatusEquals: types.AIBenchmarkJobStatusInProgress})
	if err != nil || len(l2.AIBenchmarkJobs) != 0 {
		t.Errorf("ListAIBenchmarkJobs StatusEquals InProgress: %+v %v", l2, err)
	}
	del, err := c.DeleteAIBenchmarkJob(ctx, &sagemaker.DeleteAIBenchmarkJobInput{AIBenchmarkJobName: aws.String("bj-1")})
	if err != nil || aws.ToString(del.AIBenchmarkJobArn) != bjARN {
		t.Fatalf("DeleteAIBenchmarkJob: %v %v", del, err)
	}
	if _, err := c.DescribeAIBenchmarkJob(ctx, &sagemaker.DescribeAIBenchmarkJobInput{AIBenchmarkJobName: aws.String("bj-1")}); !errors.As(err, &notFound) {
		t.Fatalf("deleted job: got %v, want *types.ResourceNotFound", err)
	}
	if _, err := c.StopAIBenchmarkJob(ctx, &sagemaker.StopAIBenchmarkJobInput{AIBenchmarkJobName: aws.String("bj-1")}); !errors.As(err, &notFound) {
		t.Fatalf("stop a deleted job: got %v, want *types.ResourceNotFound", err)
	}

	// --- AI recommendation jobs --------------------------------------------
	// The throughput goal with OptimizeModel (default true) needs a dataset.
	_, err = c.CreateAIRecommendationJob(ctx, &sagemaker.CreateAIRecommendationJobInput{AIRecommendationJobName: aws.String("rj-0"),
		AIWorkloadConfigIdentifier: aws.String("page-1"), ModelSource: &types.AIModelSourceMemberS3{Value: types.AIModelSourceS3{S3Uri: aws.String("hf://org/model")}},
		OutputConfig:      &types.AIRecommendationOutputConfig{S3OutputLocation: aws.String(out)},
		PerformanceTarget: &types.AIRecommendationPerformanceTarget{Constraints: []types.AIRecommendationConstraint{{Metric: types.AIRecommendationMetricThroughput}}},
		RoleArn:           aws.String(e2eRole)})
	wantCode(t, "throughput without a dataset", err, "ValidationException", "OptimizeModel: ")
	rjInput := &sagemaker.CreateAIRecommendationJobInput{
		AIRecommendationJobName:    aws.String("rj-1"),
		AIWorkloadConfigIdentifier: aws.String("wl-main"),
		ModelSource:                &types.AIModelSourceMemberS3{Value: types.AIModelSourceS3{S3Uri: aws.String("hf://org/model")}},
		OutputConfig:               &types.AIRecommendationOutputConfig{S3OutputLocation: aws.String(out)},
		PerformanceTarget:          &types.AIRecommendationPerformanceTarget{Constraints: []types.AIRecommendationConstraint{{Metric: types.AIRecommendationMetricTtftMs}}},
		RoleArn:                    aws.String(e2eRole),
		ComputeSpec:                &types.AIRecommendationComputeSpec{InstanceTypes: []types.AIRecommendationInstanceType{types.AIRecommendationInstanceTypeMlG512xlarge}},
		InferenceSpecification:     &types.AIRecommendationInferenceSpecification{Framework: types.AIRecommendationInferenceFrameworkVllm},
		OptimizeModel:              aws.Bool(false),
		Tags:                       []types.Tag{{Key: aws.String("run"), Value: aws.String("e2e")}},
	}
	// Instance types are checked against the live fleet, and this node has
	// no agents.
	_, err = c.CreateAIRecommendationJob(ctx, rjInput)
	wantCode(t, "instance type without agents", err, "ValidationException", `ComputeSpec.InstanceTypes[0]: no live agent has instance type "ml.g5.12xlarge"`)
	rjInput.ComputeSpec = nil
	rj, err := c.CreateAIRecommendationJob(ctx, rjInput)
	if err != nil {
		// Creating needs no agents without instance types; if validation
		// ever asks for them, the error must still be a ValidationException.
		wantCode(t, "CreateAIRecommendationJob", err, "ValidationException", "")
		t.Logf("CreateAIRecommendationJob refused: %v", err)
		_, err = c.DescribeAIRecommendationJob(ctx, &sagemaker.DescribeAIRecommendationJobInput{AIRecommendationJobName: aws.String("rj-1")})
		if !errors.As(err, &notFound) {
			t.Fatalf("DescribeAIRecommendationJob: %v", err)
		}
	} else {
		rjARN := aws.ToString(rj.AIRecommendationJobArn)
		if !strings.HasSuffix(rjARN, ":ai-recommendation-job/rj-1") {
			t.Errorf("ARN %s", rjARN)
		}
		rd, err := c.DescribeAIRecommendationJob(ctx, &sagemaker.DescribeAIRecommendationJobInput{AIRecommendationJobName: aws.String("rj-1")})
		if err != nil {
			t.Fatalf("DescribeAIRecommendationJob: %v", err)
		}
		src, _ := rd.ModelSource.(*types.AIModelSourceMemberS3)
		if aws.ToString(rd.AIRecommendationJobArn) != rjARN || rd.AIRecommendationJobStatus == "" || src == nil || aws.ToString(src.Value.S3Uri) != "hf://org/model" ||
			rd.OptimizeModel == nil || *rd.OptimizeModel || len(rd.Tags) != 1 ||
			rd.PerformanceTarget == nil || rd.PerformanceTarget.Constraints[0].Metric != types.AIRecommendationMetricTtftMs ||
			rd.InferenceSpecification == nil || rd.InferenceSpecification.Framework != "VLLM" || rd.CreationTime == nil {
			t.Errorf("DescribeAIRecommendationJob = %+v", rd)
		}
		lr, err := c.ListAIRecommendationJobs(ctx, &sagemaker.ListAIRecommendationJobsInput{NameContains: aws.String("rj"), SortBy: types.ListAIRecommendationJobsSortByName})
		if err != nil || len(lr.AIRecommendationJobs) != 1 || aws.ToString(lr.AIRecommendationJobs[0].AIRecommendationJobArn) != rjARN {
			t.Fatalf("ListAIRecommendationJobs: %+v %v", lr, err)
		}
		rs, err := c.StopAIRecommendationJob(ctx, &sagemaker.StopAIRecommendationJobInput{AIRecommendationJobName: aws.String("rj-1")})
		if err != nil || aws.ToString(rs.AIRecommendationJobArn) != rjARN {
			t.Fatalf("StopAIRecommendationJob: %v %v", rs, err)
		}
		waitTerminal(t, ctx, func() (string, error) {
			rd, err := c.DescribeAIRecommendationJob(ctx, &sagemaker.DescribeAIRecommendationJobInput{AIRecommendationJobName: aws.String("rj-1")})
			if err != nil {
				return "", err
			}
			return string(rd.AIRecommendationJobStatus), nil
		})
		rdel, err := c.DeleteAIRecommendationJob(ctx, &sagemaker.DeleteAIRecommendationJobInput{AIRecommendationJobName: aws.String(rjARN)})
		if err != nil || aws.ToString(rdel.AIRecommendationJobArn) != rjARN {
			t.Fatalf("DeleteAIRecommendationJob: %v %v", rdel, err)
		}
	}
	for _, call := range []func() error{
		func() error {
			_, err := c.DescribeAIRecommendationJob(ctx, &sagemaker.DescribeAIRecommendationJobInput{AIRecommendationJobName: aws.String("rj-1")})
			return err
		},
		func() error {
			_, err := c.StopAIRecommendationJob(ctx, &sagemaker.StopAIRecommendationJobInput{AIRecommendationJobName: aws.String("rj-1")})
			return err
		},
		func() error {
			_, err := c.DeleteAIRecommendationJob(ctx, &sagemaker.DeleteAIRecommendationJobInput{AIRecommendationJobName: aws.String("rj-1")})
			return err
		},
	} {
		if err := call(); !errors.As(err, &notFound) {
			t.Fatalf("recommendation job gone: got %v, want *types.ResourceNotFound", err)
		}
	}
	lr, err := c.ListAIRecommendationJobs(ctx, &sagemaker.ListAIRecommendationJobsInput{})
	if err != nil || len(lr.AIRecommendationJobs) != 0 {
		t.Errorf("ListAIRecommendationJobs after delete: %+v %v", lr, err)
	}

	// --- Signatures ---------------------------------------------------------
	bad := e2eClient(url, region, gateway.DevAccessKeyID, "wrong-secret")
	_, err = bad.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{})
	wantCode(t, "wrong signature", err, "InvalidSignatureException", "signature we calculated does not match")
	other := e2eClient(url, "eu-west-1", gateway.DevAccessKeyID, gateway.DevSecretAccessKey)
	_, err = other.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{})
	wantCode(t, "another region", err, "InvalidSignatureException", "region")

	// --- Clean up the workload configs --------------------------------------
	for _, name := range []string{"wl-main", "page-1", "page-2", "page-3", "page-4", "page-5"} {
		del, err := c.DeleteAIWorkloadConfig(ctx, &sagemaker.DeleteAIWorkloadConfigInput{AIWorkloadConfigName: aws.String(name)})
		if err != nil || !strings.HasSuffix(aws.ToString(del.AIWorkloadConfigArn), "/"+name) {
			t.Fatalf("DeleteAIWorkloadConfig(%s): %v %v", name, del, err)
		}
	}
	if _, err := c.DeleteAIWorkloadConfig(ctx, &sagemaker.DeleteAIWorkloadConfigInput{AIWorkloadConfigName: aws.String("page-1")}); !errors.As(err, &notFound) {
		t.Fatalf("delete twice: got %v, want *types.ResourceNotFound", err)
	}
	l, err = c.ListAIWorkloadConfigs(ctx, &sagemaker.ListAIWorkloadConfigsInput{})
	if err != nil || len(l.AIWorkloadConfigs) != 0 || l.NextToken != nil {
		t.Errorf("ListAIWorkloadConfigs after delete: %+v %v", l, err)
	}
}

// waitTerminal polls a job's status for up to 30 s until it is terminal.
func waitTerminal(t *testing.T, ctx context.Context, status func() (string, error)) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := status()
		if err != nil {
			t.Fatalf("describe: %v", err)
		}
		if terminal(s) {
			return s
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("job still %s after 30 s", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServerWithoutGateway: a node started without GatewayAddr serves none.
func TestServerWithoutGateway(t *testing.T) {
	s := server.TestCluster(t, 1, nil)[0]
	if s.GatewayAddr() != "" {
		t.Fatalf("gateway on %s", s.GatewayAddr())
	}
}

func TestGatewayAddrValidated(t *testing.T) {
	cfg := server.TestConfig(t, "n")
	cfg.GatewayAddr = "no-port"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "gateway_addr") {
		t.Fatalf("got %v", err)
	}
	cfg.GatewayAddr = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestSageMakerSDKActiveJobErrors holds a benchmark job InProgress (one
// simulated agent, a target that never answers) to check, through the SDK,
// the errors that need an active job: a workload config in use, a job not
// yet terminal, and the active job limit; then Stop takes it to Stopped.
func TestSageMakerSDKActiveJobErrors(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); hang.Close() })

	s := server.TestCluster(t, 1, func(_ int, c *server.Config) {
		c.GatewayAddr = "127.0.0.1:0"
		c.MaxActiveJobs = 1
	})[0]
	spec, err := gpu.ParseSimulated("1xL4")
	if err != nil {
		t.Fatal(err)
	}
	a, err := daemon.Start(daemon.Config{ID: "gw-agent", GossipAddr: "127.0.0.1:0", Join: []string{s.GossipAddr()}, FastGossip: true,
		GPUs: gpu.NewSimulated(spec, gpu.SimOptions{}), Heartbeat: 200 * time.Millisecond, DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Kill() })
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fleet := pb.NewFleetServiceClient(conn)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := fleet.ListAgents(context.Background(), &pb.ListAgentsRequest{Status: "alive"})
		if err == nil && len(resp.GetAgents()) == 1 && resp.GetAgents()[0].GetConnected() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not connect: %v %v", resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	c := e2eClient("http://"+s.GatewayAddr(), s.Scope().Region, gateway.DevAccessKeyID, gateway.DevSecretAccessKey)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.CreateAIWorkloadConfig(ctx, &sagemaker.CreateAIWorkloadConfigInput{AIWorkloadConfigName: aws.String("held"),
		AIWorkloadConfigs: &types.AIWorkloadConfigs{WorkloadSpec: &types.WorkloadSpecMemberInline{Value: e2eSpec}}}); err != nil {
		t.Fatal(err)
	}
	job := func(name string) *sagemaker.CreateAIBenchmarkJobInput {
		return &sagemaker.CreateAIBenchmarkJobInput{AIBenchmarkJobName: aws.String(name), AIWorkloadConfigIdentifier: aws.String("held"),
			BenchmarkTarget: &types.AIBenchmarkTargetMemberEndpoint{Value: types.AIBenchmarkEndpoint{Identifier: aws.String(hang.URL),
				InferenceComponents: []types.AIBenchmarkInferenceComponent{{Identifier: aws.String("sim-llm")}}}},
			OutputConfig: &types.AIBenchmarkOutputConfig{S3OutputLocation: aws.String("file://" + t.TempDir())}, RoleArn: aws.String(e2eRole)}
	}
	if _, err := c.CreateAIBenchmarkJob(ctx, job("held-1")); err != nil {
		t.Fatal(err)
	}
	describe := func() *sagemaker.DescribeAIBenchmarkJobOutput {
		d, err := c.DescribeAIBenchmarkJob(ctx, &sagemaker.DescribeAIBenchmarkJobInput{AIBenchmarkJobName: aws.String("held-1")})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	var inUse *types.ResourceInUse
	var limit *types.ResourceLimitExceeded
	_, err = c.DeleteAIWorkloadConfig(ctx, &sagemaker.DeleteAIWorkloadConfigInput{AIWorkloadConfigName: aws.String("held")})
	if !errors.As(err, &inUse) {
		d := describe()
		t.Fatalf("delete a config in use: got %v, want *types.ResourceInUse (job %s: %s)", err, d.AIBenchmarkJobStatus, aws.ToString(d.FailureReason))
	}
	_, err = c.DeleteAIBenchmarkJob(ctx, &sagemaker.DeleteAIBenchmarkJobInput{AIBenchmarkJobName: aws.String("held-1")})
	if !errors.As(err, &inUse) {
		t.Fatalf("delete an active job: got %v, want *types.ResourceInUse", err)
	}
	_, err = c.CreateAIBenchmarkJob(ctx, job("held-2"))
	if !errors.As(err, &limit) {
		t.Fatalf("a second active job: got %v, want *types.ResourceLimitExceeded", err)
	}
	if d := describe(); d.AIBenchmarkJobStatus != types.AIBenchmarkJobStatusInProgress {
		t.Fatalf("job %s (%s), want InProgress while the target hangs", d.AIBenchmarkJobStatus, aws.ToString(d.FailureReason))
	}
	if _, err := c.StopAIBenchmarkJob(ctx, &sagemaker.StopAIBenchmarkJobInput{AIBenchmarkJobName: aws.String("held-1")}); err != nil {
		t.Fatal(err)
	}
	if status := waitTerminal(t, ctx, func() (string, error) { return string(describe().AIBenchmarkJobStatus), nil }); status != "Stopped" {
		t.Fatalf("stopped job ended %s", status)
	}
	if _, err := c.DeleteAIBenchmarkJob(ctx, &sagemaker.DeleteAIBenchmarkJobInput{AIBenchmarkJobName: aws.String("held-1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteAIWorkloadConfig(ctx, &sagemaker.DeleteAIWorkloadConfigInput{AIWorkloadConfigName: aws.String("held")}); err != nil {
		t.Fatal(err)
	}
}
