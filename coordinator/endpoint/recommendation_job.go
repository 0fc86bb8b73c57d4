package endpoint

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/perfleet/perfleet/coordinator/state"
	"github.com/perfleet/perfleet/pkg/names"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/validate"
)

// Recommendation job rules from SageMaker's API.
var (
	performanceMetrics = []string{"ttft-ms", "throughput", "cost"}
	frameworks         = []string{"VLLM", "LMI", "SGLANG", "SIMULATOR"}
	instanceTypeRE     = regexp.MustCompile(`^[a-z0-9][a-zA-Z0-9.\-]{0,62}$`)
	adapterIDRE        = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9])*$`)
	modelPackageARNRE  = regexp.MustCompile(`^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:model-package/\S+$`)
)

const maxInstanceTypes = 3

// CreateAIRecommendationJob validates and records a new InProgress job.
func (e *Endpoint) CreateAIRecommendationJob(ctx context.Context, req *pb.CreateAIRecommendationJobRequest) (*pb.CreateAIRecommendationJobResponse, error) {
	account := e.b.Account(ctx)
	wl, err := e.validateCreateRecommendationJob(req, account)
	if err != nil {
		return nil, err
	}
	now := e.now()
	name := req.GetAiRecommendationJobName()
	rec := &pb.RecommendationJobRecord{AccountId: account, WorkloadConfigName: wl, Job: &pb.DescribeAIRecommendationJobResponse{
		AiRecommendationJobArn:     e.b.Scope().Build(account, state.KindRecommendation, name),
		AiRecommendationJobName:    name,
		AiRecommendationJobStatus:  state.StatusInProgress,
		AiWorkloadConfigIdentifier: req.GetAiWorkloadConfigIdentifier(),
		ModelSource:                req.GetModelSource(),
		OutputConfig:               req.GetOutputConfig(),
		PerformanceTarget:          req.GetPerformanceTarget(),
		RoleArn:                    req.GetRoleArn(),
		ComputeSpec:                req.GetComputeSpec(),
		InferenceSpecification:     req.GetInferenceSpecification(),
		OptimizeModel:              req.OptimizeModel == nil || req.GetOptimizeModel(),
		AdapterSource:              req.GetAdapterSource(),
		Tags:                       req.GetTags(),
		CreationTime:               now,
		StartTime:                  now,
		LastModifiedTime:           now,
	}}
	arn, err := e.create(ctx, &pb.CreateResourceCommand{RecommendationJob: rec,
		ClientToken: e.clientToken(account, "CreateAIRecommendationJob", req.GetClientToken(), req)})
	if err != nil {
		return nil, err
	}
	return &pb.CreateAIRecommendationJobResponse{AiRecommendationJobArn: arn}, nil
}

func (e *Endpoint) validateCreateRecommendationJob(req *pb.CreateAIRecommendationJobRequest, account string) (string, error) {
	var c validate.Checker
	wl := e.checkJobCommon(&c, "ai_recommendation_job_name", req.GetAiRecommendationJobName(), req.GetAiWorkloadConfigIdentifier(),
		req.GetRoleArn(), account, req.GetTags(), req.GetClientToken())
	checkModelURI(&c, "model_source.s3.s3_uri", req.GetModelSource().GetS3().GetS3Uri())
	c.Check("output_config.s3_output_location", names.Location(req.GetOutputConfig().GetS3OutputLocation()))

	metric := ""
	switch cons := req.GetPerformanceTarget().GetConstraints(); {
	case len(cons) != 1:
		c.Addf("performance_target.constraints", "must have exactly one constraint (ttft-ms, throughput or cost), got %d", len(cons))
	case !contains(performanceMetrics, cons[0].GetMetric()):
		c.Addf("performance_target.constraints[0].metric", "must be one of %s; got %q", strings.Join(performanceMetrics, ", "), cons[0].GetMetric())
	default:
		metric = cons[0].GetMetric()
	}

	types := req.GetComputeSpec().GetInstanceTypes()
	if len(types) > maxInstanceTypes {
		c.Addf("compute_spec.instance_types", "must have at most %d instance types, got %d", maxInstanceTypes, len(types))
	}
	if metric == "cost" && len(types) > 0 {
		c.Add("compute_spec.instance_types", "must be empty for the cost goal: perfleet chooses the instance types from the fleet")
	}
	seen := map[string]bool{}
	for i, t := range types {
		f := fmt.Sprintf("compute_spec.instance_types[%d]", i)
		if !instanceTypeRE.MatchString(t) {
			c.Addf(f, "must be an instance type such as ml.g5.12xlarge or an on-prem class such as lab-8xH100; got %q", t)
		}
		if seen[t] {
			c.Addf(f, "duplicates %q", t)
		}
		seen[t] = true
	}
	if len(types) > 0 && len(types) <= maxInstanceTypes {
		live := e.liveInstanceTypes()
		for i, t := range types {
			if instanceTypeRE.MatchString(t) && !contains(live, t) {
				avail := "none: no agent is alive"
				if len(live) > 0 {
					avail = strings.Join(live, ", ")
				}
				c.Addf(fmt.Sprintf("compute_spec.instance_types[%d]", i), "no live agent has instance type %q; available: %s", t, avail)
			}
		}
	}
	if p := req.GetComputeSpec().GetCapacityReservationConfig().GetCapacityReservationPreference(); p != "" && p != "capacity-reservations-only" {
		c.Addf("compute_spec.capacity_reservation_config.capacity_reservation_preference", "must be capacity-reservations-only; got %q", p)
	}
	if fw := req.GetInferenceSpecification().GetFramework(); fw != "" && !contains(frameworks, fw) {
		c.Addf("inference_specification.framework", "must be one of %s; got %q", strings.Join(frameworks, ", "), fw)
	}
	if req.GetAdapterSource() != nil {
		checkAdapters(&c, req.GetAdapterSource())
	}
	if metric == "throughput" && (req.OptimizeModel == nil || req.GetOptimizeModel()) && wl != "" {
		if cfg, err := e.b.State().WorkloadConfig(account, wl); err == nil && len(cfg.GetConfig().GetDatasetConfig().GetInputDataConfig()) == 0 {
			c.Add("optimize_model", "the throughput goal with optimize_model=true needs a dataset (speculative decoding trains a draft model on it): add dataset_config to the workload config, or set optimize_model=false")
		}
	}
	return wl, c.Err()
}

// liveInstanceTypes lists the instance types of alive agents, sorted.
func (e *Endpoint) liveInstanceTypes() []string {
	agents, err := e.b.State().Agents(nil)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, a := range agents {
		if t := a.GetInstanceType(); t != "" && a.GetStatus() == "alive" && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

func checkModelURI(c *validate.Checker, field, uri string) {
	if strings.HasPrefix(uri, "hf://") {
		if len(uri) <= len("hf://") || len(uri) > 1024 {
			c.Add(field, "hf:// model IDs look like hf://org/model")
		}
		return
	}
	c.Check(field, names.Location(uri))
}

func checkAdapters(c *validate.Checker, src *pb.AdapterSource) {
	s3, pkgs := src.GetS3Uris(), src.GetModelPackageArns()
	if (len(s3) == 0) == (len(pkgs) == 0) {
		c.Add("adapter_source", "must set exactly one of s3_uris and model_package_arns")
		return
	}
	n := len(s3) + len(pkgs)
	if n > 10 {
		c.Addf("adapter_source", "must have 1-10 adapters, got %d", n)
	}
	seen := map[string]bool{}
	checkID := func(f, id string) {
		switch {
		case id == "" || len(id) > 63 || !adapterIDRE.MatchString(id):
			c.Addf(f, "must be 1-63 characters matching ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$; got %q", id)
		case seen[id]:
			c.Addf(f, "duplicates adapter %q", id)
		}
		seen[id] = true
	}
	for i, a := range s3 {
		f := fmt.Sprintf("adapter_source.s3_uris[%d]", i)
		checkID(f+".adapter_id", a.GetAdapterId())
		c.Check(f+".s3_uri", names.Location(a.GetS3Uri()))
	}
	for i, a := range pkgs {
		f := fmt.Sprintf("adapter_source.model_package_arns[%d]", i)
		checkID(f+".adapter_id", a.GetAdapterId())
		if !modelPackageARNRE.MatchString(a.GetModelPackageArn()) {
			c.Add(f+".model_package_arn", "must be arn:aws:sagemaker:<region>:<account>:model-package/<name>")
		}
	}
}

// DescribeAIRecommendationJob returns one job.
func (e *Endpoint) DescribeAIRecommendationJob(ctx context.Context, req *pb.DescribeAIRecommendationJobRequest) (*pb.DescribeAIRecommendationJobResponse, error) {
	j, err := e.getJob(ctx, "ai_recommendation_job_name", req.GetAiRecommendationJobName(), state.KindRecommendation)
	if err != nil {
		return nil, err
	}
	return j.Recommend.GetJob(), nil
}

// ListAIRecommendationJobs filters, sorts and pages the account's jobs.
func (e *Endpoint) ListAIRecommendationJobs(ctx context.Context, req *pb.ListAIRecommendationJobsRequest) (*pb.ListAIRecommendationJobsResponse, error) {
	jobs, next, err := e.listJobs(ctx, state.KindRecommendation, &listQuery{nameContains: req.GetNameContains(), statusEquals: req.GetStatusEquals(),
		after: req.GetCreationTimeAfter(), before: req.GetCreationTimeBefore(), sortBy: req.GetSortBy(), sortOrder: req.GetSortOrder(),
		maxResults: req.GetMaxResults(), nextToken: req.GetNextToken()})
	if err != nil {
		return nil, err
	}
	resp := &pb.ListAIRecommendationJobsResponse{NextToken: next}
	for _, j := range jobs {
		d := j.Recommend.GetJob()
		resp.AiRecommendationJobs = append(resp.AiRecommendationJobs, &pb.AIRecommendationJobSummary{AiRecommendationJobName: d.GetAiRecommendationJobName(),
			AiRecommendationJobArn: d.GetAiRecommendationJobArn(), AiRecommendationJobStatus: d.GetAiRecommendationJobStatus(),
			CreationTime: d.GetCreationTime(), EndTime: d.GetEndTime()})
	}
	return resp, nil
}

// StopAIRecommendationJob stops a job; idempotent.
func (e *Endpoint) StopAIRecommendationJob(ctx context.Context, req *pb.StopAIRecommendationJobRequest) (*pb.StopAIRecommendationJobResponse, error) {
	arn, err := e.stopJob(ctx, "ai_recommendation_job_name", req.GetAiRecommendationJobName(), state.KindRecommendation)
	if err != nil {
		return nil, err
	}
	return &pb.StopAIRecommendationJobResponse{AiRecommendationJobArn: arn}, nil
}

// DeleteAIRecommendationJob deletes a terminal job.
func (e *Endpoint) DeleteAIRecommendationJob(ctx context.Context, req *pb.DeleteAIRecommendationJobRequest) (*pb.DeleteAIRecommendationJobResponse, error) {
	arn, err := e.deleteJob(ctx, "ai_recommendation_job_name", req.GetAiRecommendationJobName(), state.KindRecommendation)
	if err != nil {
		return nil, err
	}
	return &pb.DeleteAIRecommendationJobResponse{AiRecommendationJobArn: arn}, nil
}
