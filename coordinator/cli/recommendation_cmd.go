package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func newRecommendationJobCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "recommendation-job", Aliases: []string{"rj"}, Short: "Create, describe, list, stop and delete AI recommendation jobs"}
	ops := jobOps{
		noun: "recommendation job",
		describe: func(ctx context.Context, c pb.InferenceOptimizationClient, name string) (proto.Message, error) {
			return c.DescribeAIRecommendationJob(ctx, &pb.DescribeAIRecommendationJobRequest{AiRecommendationJobName: name})
		},
		show: showRecommendationJob,
		list: func(ctx context.Context, c pb.InferenceOptimizationClient, lf *listFlags, size int32, token string) (proto.Message, []jobRow, string, error) {
			req := &pb.ListAIRecommendationJobsRequest{NameContains: lf.nameContains, StatusEquals: lf.status, SortBy: lf.sortBy,
				SortOrder: lf.sortOrder, MaxResults: size, NextToken: token}
			if err := lf.times(&req.CreationTimeAfter, &req.CreationTimeBefore); err != nil {
				return nil, nil, "", err
			}
			resp, err := c.ListAIRecommendationJobs(ctx, req)
			if err != nil {
				return nil, nil, "", err
			}
			var rows []jobRow
			for _, j := range resp.GetAiRecommendationJobs() {
				rows = append(rows, jobRow{j.GetAiRecommendationJobName(), j.GetAiRecommendationJobStatus(), ts(j.GetCreationTime()), ts(j.GetEndTime()), ""})
			}
			return resp, rows, resp.GetNextToken(), nil
		},
		stop: func(ctx context.Context, c pb.InferenceOptimizationClient, name string) (string, error) {
			r, err := c.StopAIRecommendationJob(ctx, &pb.StopAIRecommendationJobRequest{AiRecommendationJobName: name})
			return r.GetAiRecommendationJobArn(), err
		},
		remove: func(ctx context.Context, c pb.InferenceOptimizationClient, name string) (string, error) {
			r, err := c.DeleteAIRecommendationJob(ctx, &pb.DeleteAIRecommendationJobRequest{AiRecommendationJobName: name})
			return r.GetAiRecommendationJobArn(), err
		},
	}
	cmd.AddCommand(recommendationCreate(g))
	cmd.AddCommand(ops.commands(g, "")...)
	return cmd
}

func showRecommendationJob(g *globals, m proto.Message) {
	j := m.(*pb.DescribeAIRecommendationJobResponse)
	var goal []string
	for _, c := range j.GetPerformanceTarget().GetConstraints() {
		goal = append(goal, c.GetMetric())
	}
	kv(g.out, "Name", j.GetAiRecommendationJobName(), "ARN", j.GetAiRecommendationJobArn(), "Status", j.GetAiRecommendationJobStatus(),
		"Failure reason", j.GetFailureReason(), "Workload config", j.GetAiWorkloadConfigIdentifier(), "Model", j.GetModelSource().GetS3().GetS3Uri(),
		"Goal", strings.Join(goal, ", "), "Instance types", strings.Join(j.GetComputeSpec().GetInstanceTypes(), ", "),
		"Framework", j.GetInferenceSpecification().GetFramework(), "Optimize model", fmt.Sprint(j.GetOptimizeModel()),
		"Output location", j.GetOutputConfig().GetS3OutputLocation(), "Role", j.GetRoleArn(),
		"Created", ts(j.GetCreationTime()), "Started", ts(j.GetStartTime()), "Ended", ts(j.GetEndTime()), "Tags", tagString(j.GetTags()))
	if len(j.GetRecommendations()) == 0 {
		fmt.Fprintln(g.out, "Recommendations: none yet")
		return
	}
	t := newTable(g.out, "RANK", "INSTANCE TYPE", "COUNT", "BENCHMARK JOB", "PERFORMANCE")
	for i, r := range j.GetRecommendations() {
		var perf []string
		for _, p := range r.GetExpectedPerformance() {
			perf = append(perf, fmt.Sprintf("%s %s=%s%s", p.GetMetric(), p.GetStat(), p.GetValue(), p.GetUnit()))
		}
		dc := r.GetDeploymentConfiguration()
		t.row(fmt.Sprint(i+1), dc.GetInstanceType(), fmt.Sprint(dc.GetInstanceCount()), r.GetAiBenchmarkJobArn(), strings.Join(perf, "; "))
	}
	t.flush()
}

func recommendationCreate(g *globals) *cobra.Command {
	var jc jobCommon
	var model, goal, framework, packageGroup string
	var instanceTypes, adapters, adapterPackages []string
	var noOptimize bool
	cmd := &cobra.Command{
		Use:   "create NAME --workload-config WL --model URI --goal ttft-ms|throughput|cost",
		Short: "Create and start a recommendation job",
		Long: `Create a recommendation job: candidate deployments of the model on up to three
instance types are benchmarked with the workload and ranked by the goal
(ttft-ms, throughput or cost). The cost goal chooses instance types itself.

Example:
  perfleet recommendation-job create pick-gpu --workload-config chat \
    --model s3://models/llama-3-8b --goal throughput \
    --instance-type ml.g5.12xlarge --instance-type lab-8xH100 --framework VLLM`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			for name, v := range map[string]string{"workload-config": jc.workload, "model": model, "goal": goal} {
				if err := requireFlag(name, v); err != nil {
					return err
				}
			}
			tags, err := parseTags(jc.tags)
			if err != nil {
				return err
			}
			optimize := !noOptimize
			req := &pb.CreateAIRecommendationJobRequest{AiRecommendationJobName: a[0], AiWorkloadConfigIdentifier: jc.workload,
				ModelSource:       &pb.ModelSource{S3: &pb.S3ModelSource{S3Uri: model}},
				PerformanceTarget: &pb.PerformanceTarget{Constraints: []*pb.PerformanceConstraint{{Metric: goal}}},
				OutputConfig:      &pb.AIRecommendationOutputConfig{S3OutputLocation: jc.output, ModelPackageGroupIdentifier: packageGroup},
				RoleArn:           jc.role, Tags: tags, OptimizeModel: &optimize, ClientToken: tokenOrNew(jc.token)}
			if len(instanceTypes) > 0 {
				req.ComputeSpec = &pb.ComputeSpec{InstanceTypes: instanceTypes}
			}
			if framework != "" {
				req.InferenceSpecification = &pb.InferenceSpecification{Framework: framework}
			}
			if err := addAdapters(req, adapters, adapterPackages); err != nil {
				return err
			}
			return createJob(g, cmd, func(ctx context.Context, c pb.InferenceOptimizationClient) (*pb.CreateAIRecommendationJobResponse, error) {
				return c.CreateAIRecommendationJob(ctx, req)
			}, (*pb.CreateAIRecommendationJobResponse).GetAiRecommendationJobArn)
		},
	}
	jc.register(cmd)
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "model weights: s3://..., file:///... or hf://org/model (required)")
	f.StringVar(&goal, "goal", "", "ranking goal: ttft-ms, throughput or cost (required)")
	f.StringArrayVar(&instanceTypes, "instance-type", nil, "candidate instance type or on-prem class (repeatable, at most 3)")
	f.StringVar(&framework, "framework", "", "model server: VLLM, LMI, SGLANG or SIMULATOR")
	f.BoolVar(&noOptimize, "no-optimize", false, "do not apply goal-aligned optimizations")
	f.StringArrayVar(&adapters, "adapter", nil, "LoRA adapter as id=s3://... (repeatable)")
	f.StringArrayVar(&adapterPackages, "adapter-package", nil, "LoRA adapter as id=model-package-arn (repeatable)")
	f.StringVar(&packageGroup, "model-package-group", "", "model package group for the result")
	return cmd
}

func addAdapters(req *pb.CreateAIRecommendationJobRequest, uris, packages []string) error {
	if len(uris)+len(packages) == 0 {
		return nil
	}
	req.AdapterSource = &pb.AdapterSource{}
	for _, s := range uris {
		id, uri, ok := strings.Cut(s, "=")
		if !ok {
			return usageError{fmt.Errorf("--adapter %q must be id=uri", s)}
		}
		req.AdapterSource.S3Uris = append(req.AdapterSource.S3Uris, &pb.AdapterS3Uri{AdapterId: id, S3Uri: uri})
	}
	for _, s := range packages {
		id, arn, ok := strings.Cut(s, "=")
		if !ok {
			return usageError{fmt.Errorf("--adapter-package %q must be id=arn", s)}
		}
		req.AdapterSource.ModelPackageArns = append(req.AdapterSource.ModelPackageArns, &pb.AdapterModelPackage{AdapterId: id, ModelPackageArn: arn})
	}
	return nil
}
