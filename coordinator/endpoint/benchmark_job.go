package endpoint

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/names"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/resultstore"
	"github.com/perfleet/perfleet/pkg/validate"
)

// CreateAIBenchmarkJob validates and records a new InProgress job.
func (e *Endpoint) CreateAIBenchmarkJob(ctx context.Context, req *pb.CreateAIBenchmarkJobRequest) (*pb.CreateAIBenchmarkJobResponse, error) {
	account := e.b.Account(ctx)
	wl, err := e.validateCreateBenchmarkJob(req, account)
	if err != nil {
		return nil, err
	}
	now := e.now()
	name := req.GetAiBenchmarkJobName()
	out := proto.Clone(req.GetOutputConfig()).(*pb.AIBenchmarkOutputConfig)
	scope := e.b.Scope()
	out.CloudWatchLogs = []*pb.CloudWatchLogs{{
		LogGroupArn:   fmt.Sprintf("arn:%s:logs:%s:%s:log-group:/perfleet/ai-benchmark-jobs", scope.Partition, scope.Region, account),
		LogStreamName: name,
	}}
	rec := &pb.BenchmarkJobRecord{AccountId: account, WorkloadConfigName: wl, Job: &pb.DescribeAIBenchmarkJobResponse{
		AiBenchmarkJobArn:          e.b.Scope().Build(account, state.KindBenchmark, name),
		AiBenchmarkJobName:         name,
		AiBenchmarkJobStatus:       state.StatusInProgress,
		AiWorkloadConfigIdentifier: req.GetAiWorkloadConfigIdentifier(),
		BenchmarkTarget:            req.GetBenchmarkTarget(),
		OutputConfig:               out,
		RoleArn:                    req.GetRoleArn(),
		NetworkConfig:              req.GetNetworkConfig(),
		Tags:                       req.GetTags(),
		CreationTime:               now,
		StartTime:                  now,
		LastModifiedTime:           now,
	}}
	arn, err := e.create(ctx, &pb.CreateResourceCommand{BenchmarkJob: rec,
		ClientToken: e.clientToken(account, "CreateAIBenchmarkJob", req.GetClientToken(), req)})
	if err != nil {
		return nil, err
	}
	return &pb.CreateAIBenchmarkJobResponse{AiBenchmarkJobArn: arn}, nil
}

func (e *Endpoint) validateCreateBenchmarkJob(req *pb.CreateAIBenchmarkJobRequest, account string) (string, error) {
	var c validate.Checker
	wl := e.checkJobCommon(&c, "ai_benchmark_job_name", req.GetAiBenchmarkJobName(), req.GetAiWorkloadConfigIdentifier(),
		req.GetRoleArn(), account, req.GetTags(), req.GetClientToken())
	ep := req.GetBenchmarkTarget().GetEndpoint()
	if ep == nil {
		c.Add("benchmark_target.endpoint", "is required")
	} else {
		e.checkTarget(&c, "benchmark_target.endpoint.identifier", ep.GetIdentifier(), account)
		if len(ep.GetTargetContainerHostname()) > 63 {
			c.Add("benchmark_target.endpoint.target_container_hostname", "must be at most 63 characters")
		}
		if n := len(ep.GetInferenceComponents()); n > 10 {
			c.Addf("benchmark_target.endpoint.inference_components", "must have at most 10 components, got %d", n)
		}
		for i, ic := range ep.GetInferenceComponents() {
			if ic.GetIdentifier() == "" || len(ic.GetIdentifier()) > 256 {
				c.Add(fmt.Sprintf("benchmark_target.endpoint.inference_components[%d].identifier", i), "is required, at most 256 characters")
			}
		}
	}
	c.Check("output_config.s3_output_location", names.Location(req.GetOutputConfig().GetS3OutputLocation()))
	if len(req.GetOutputConfig().GetCloudWatchLogs()) > 0 {
		c.Add("output_config.cloud_watch_logs", "is output only; leave it empty")
	}
	if vpc := req.GetNetworkConfig().GetVpcConfig(); vpc != nil {
		checkVPC(&c, vpc)
	}
	return wl, c.Err()
}

func checkVPC(c *validate.Checker, vpc *pb.VpcConfig) {
	if n := len(vpc.GetSecurityGroupIds()); n < 1 || n > 5 {
		c.Addf("network_config.vpc_config.security_group_ids", "must have 1-5 IDs, got %d", n)
	}
	if n := len(vpc.GetSubnets()); n < 1 || n > 16 {
		c.Addf("network_config.vpc_config.subnets", "must have 1-16 subnets, got %d", n)
	}
	for i, id := range vpc.GetSecurityGroupIds() {
		c.Check(fmt.Sprintf("network_config.vpc_config.security_group_ids[%d]", i), names.VPCID(id))
	}
	for i, id := range vpc.GetSubnets() {
		c.Check(fmt.Sprintf("network_config.vpc_config.subnets[%d]", i), names.VPCID(id))
	}
}

// DescribeAIBenchmarkJob returns one job.
func (e *Endpoint) DescribeAIBenchmarkJob(ctx context.Context, req *pb.DescribeAIBenchmarkJobRequest) (*pb.DescribeAIBenchmarkJobResponse, error) {
	j, err := e.getJob(ctx, "ai_benchmark_job_name", req.GetAiBenchmarkJobName(), state.KindBenchmark)
	if err != nil {
		return nil, err
	}
	return j.Benchmark.GetJob(), nil
}

// ListAIBenchmarkJobs filters, sorts and pages the account's jobs.
func (e *Endpoint) ListAIBenchmarkJobs(ctx context.Context, req *pb.ListAIBenchmarkJobsRequest) (*pb.ListAIBenchmarkJobsResponse, error) {
	jobs, next, err := e.listJobs(ctx, state.KindBenchmark, &listQuery{nameContains: req.GetNameContains(), statusEquals: req.GetStatusEquals(),
		after: req.GetCreationTimeAfter(), before: req.GetCreationTimeBefore(), sortBy: req.GetSortBy(), sortOrder: req.GetSortOrder(),
		maxResults: req.GetMaxResults(), nextToken: req.GetNextToken()})
	if err != nil {
		return nil, err
	}
	resp := &pb.ListAIBenchmarkJobsResponse{NextToken: next}
	for _, j := range jobs {
		d := j.Benchmark.GetJob()
		resp.AiBenchmarkJobs = append(resp.AiBenchmarkJobs, &pb.AIBenchmarkJobSummary{AiBenchmarkJobName: d.GetAiBenchmarkJobName(),
			AiBenchmarkJobArn: d.GetAiBenchmarkJobArn(), AiBenchmarkJobStatus: d.GetAiBenchmarkJobStatus(), CreationTime: d.GetCreationTime(),
			EndTime: d.GetEndTime(), AiWorkloadConfigName: j.Benchmark.GetWorkloadConfigName()})
	}
	return resp, nil
}

// StopAIBenchmarkJob stops a job; idempotent.
func (e *Endpoint) StopAIBenchmarkJob(ctx context.Context, req *pb.StopAIBenchmarkJobRequest) (*pb.StopAIBenchmarkJobResponse, error) {
	arn, err := e.stopJob(ctx, "ai_benchmark_job_name", req.GetAiBenchmarkJobName(), state.KindBenchmark)
	if err != nil {
		return nil, err
	}
	return &pb.StopAIBenchmarkJobResponse{AiBenchmarkJobArn: arn}, nil
}

// DeleteAIBenchmarkJob deletes a terminal job.
func (e *Endpoint) DeleteAIBenchmarkJob(ctx context.Context, req *pb.DeleteAIBenchmarkJobRequest) (*pb.DeleteAIBenchmarkJobResponse, error) {
	var location, name string
	if req.GetPurgeResults() {
		j, err := e.getJob(ctx, "ai_benchmark_job_name", req.GetAiBenchmarkJobName(), state.KindBenchmark)
		if err != nil {
			return nil, err
		}
		location, name = j.Benchmark.GetJob().GetOutputConfig().GetS3OutputLocation(), j.Name
	}
	arn, err := e.deleteJob(ctx, "ai_benchmark_job_name", req.GetAiBenchmarkJobName(), state.KindBenchmark)
	if err != nil {
		return nil, err
	}
	resp := &pb.DeleteAIBenchmarkJobResponse{AiBenchmarkJobArn: arn}
	if req.GetPurgeResults() && location != "" {
		// The record is gone; the results follow. Results are written by
		// the leader, which runs this handler (writes are forwarded to it).
		store, err := resultstore.Open(ctx, location, resultstore.Options{Region: e.b.Scope().Region})
		if err == nil {
			var n int
			n, err = store.DeletePrefix(ctx, name+"/")
			resp.PurgedObjects = int64(n)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: the job was deleted but its results under %s were not: %v", ErrUnavailable, location, err)
		}
	}
	return resp, nil
}

// GetAIBenchmarkJobResults returns the job's finished levels.
func (e *Endpoint) GetAIBenchmarkJobResults(ctx context.Context, req *pb.GetAIBenchmarkJobResultsRequest) (*pb.GetAIBenchmarkJobResultsResponse, error) {
	j, err := e.getJob(ctx, "ai_benchmark_job_name", req.GetAiBenchmarkJobName(), state.KindBenchmark)
	if err != nil {
		return nil, err
	}
	return &pb.GetAIBenchmarkJobResultsResponse{AiBenchmarkJobArn: j.ARN(), AiBenchmarkJobStatus: j.Status, Levels: j.Benchmark.GetLevels()}, nil
}

// WatchAIBenchmarkJob sends the job's state and live level once a second,
// then a final update once the job is terminal.
func (e *Endpoint) WatchAIBenchmarkJob(req *pb.WatchAIBenchmarkJobRequest, stream pb.InferenceOptimization_WatchAIBenchmarkJobServer) error {
	ctx := stream.Context()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		j, err := e.getJob(ctx, "ai_benchmark_job_name", req.GetAiBenchmarkJobName(), state.KindBenchmark)
		if err != nil {
			return ToStatus(err)
		}
		d := j.Benchmark.GetJob()
		resp := &pb.WatchAIBenchmarkJobResponse{AiBenchmarkJobStatus: j.Status, FailureReason: d.GetFailureReason(),
			LevelsFinished: uint32(len(j.Benchmark.GetLevels())), Final: state.Terminal(j.Status)}
		if total, level, ok := e.b.Progress(j.Account, j.Name); ok && !resp.Final {
			resp.LevelsTotal, resp.Level = uint32(total), level
		}
		if resp.LevelsTotal < resp.LevelsFinished {
			resp.LevelsTotal = resp.LevelsFinished
		}
		if err := stream.Send(resp); err != nil || resp.Final {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// GetAIBenchmarkJobLog returns the job's events after an index.
func (e *Endpoint) GetAIBenchmarkJobLog(ctx context.Context, req *pb.GetAIBenchmarkJobLogRequest) (*pb.GetAIBenchmarkJobLogResponse, error) {
	j, err := e.getJob(ctx, "ai_benchmark_job_name", req.GetAiBenchmarkJobName(), state.KindBenchmark)
	if err != nil {
		return nil, err
	}
	resp := &pb.GetAIBenchmarkJobLogResponse{AiBenchmarkJobStatus: j.Status}
	for _, ev := range j.Benchmark.GetEvents() {
		if ev.GetIndex() > req.GetAfterIndex() {
			resp.Events = append(resp.Events, ev)
		}
	}
	return resp, nil
}
