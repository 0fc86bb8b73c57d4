package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
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
	cmd.AddCommand(recommendationCreate(g), &cobra.Command{
		Use:   "watch NAME",
		Short: "Follow a recommendation job's candidates until it ends",
		Long: `Follow a recommendation job: a line whenever a candidate deployment changes
state (Pending, Deploying, Benchmarking, Completed, Failed, Skipped,
Stopped), then the ranking. The exit status is non-zero if the job failed.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error { return g.watchRecommendation(cmd, a[0]) },
	})
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
	if len(j.GetCandidates()) > 0 {
		fmt.Fprintln(g.out, "\nCandidates:")
		t := newTable(g.out, "NAME", "INSTANCE TYPE", "LAYOUT", "AGENT", "STATUS", "RANK", "DETAIL")
		for _, c := range j.GetCandidates() {
			rank := "-"
			if c.GetRank() > 0 {
				rank = fmt.Sprint(c.GetRank())
			}
			t.row(c.GetName(), c.GetDeploymentConfiguration().GetInstanceType(), layout(c), c.GetAgentId(), c.GetStatus(), rank, c.GetStatusReason())
		}
		t.flush()
	}
	if len(j.GetRecommendations()) == 0 {
		fmt.Fprintln(g.out, "\nRecommendations: none yet")
		return
	}
	fmt.Fprintln(g.out, "\nRecommendations (best first):")
	t := newTable(g.out, "RANK", "INSTANCE TYPE", "TP x COPIES", "TTFT p50", "ITL p50", "LATENCY p99", "TOKENS/S", "$/HOUR", "$/1M TOKENS", "BENCHMARK JOB")
	for i, r := range j.GetRecommendations() {
		perf := map[string]string{}
		for _, p := range r.GetExpectedPerformance() {
			perf[p.GetMetric()+"/"+p.GetStat()] = p.GetValue()
		}
		dc := r.GetDeploymentConfiguration()
		child := r.GetAiBenchmarkJobArn()
		child = child[strings.LastIndex(child, "/")+1:]
		t.row(fmt.Sprint(i+1), dc.GetInstanceType(), fmt.Sprintf("%s x %d", dc.GetEnvironmentVariables()["OPTION_TENSOR_PARALLEL_DEGREE"], dc.GetCopyCountPerInstance()),
			withUnit(perf["TimeToFirstToken/p50"], " ms"), withUnit(perf["InterTokenLatency/p50"], " ms"), withUnit(perf["RequestLatency/p99"], " ms"),
			perf["OutputTokenThroughput/avg"], perf["CostPerHour/avg"], perf["CostPerMillionTokens/avg"], child)
	}
	t.flush()
	fmt.Fprintln(g.out, "\n"+j.GetRecommendations()[0].GetRecommendationDescription())
}

// layout is a candidate's "tp N x C copies".
func layout(c *pb.RecommendationCandidate) string {
	if c.GetTensorParallelDegree() == 0 {
		return "-"
	}
	return fmt.Sprintf("tp%d x %d", c.GetTensorParallelDegree(), c.GetDeploymentConfiguration().GetCopyCountPerInstance())
}

func withUnit(v, unit string) string {
	if v == "" {
		return "-"
	}
	return v + unit
}

// watchRecommendation prints each candidate's state changes until the job
// ends, then the job as describe shows it.
func (g *globals) watchRecommendation(cmd *cobra.Command, name string) error {
	seen := map[string]string{}
	status := ""
	for {
		var d *pb.DescribeAIRecommendationJobResponse
		err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
			d, err = pb.NewInferenceOptimizationClient(c).DescribeAIRecommendationJob(ctx, &pb.DescribeAIRecommendationJobRequest{AiRecommendationJobName: name})
			return err
		})
		if err != nil {
			return err
		}
		if g.output != "json" {
			if d.GetAiRecommendationJobStatus() != status {
				status = d.GetAiRecommendationJobStatus()
				fmt.Fprintf(g.out, "%s %s: %s\n", time.Now().Format("15:04:05"), name, status)
			}
			for _, c := range d.GetCandidates() {
				line := c.GetStatus() + "|" + c.GetStatusReason()
				if seen[c.GetName()] == line {
					continue
				}
				seen[c.GetName()] = line
				fmt.Fprintf(g.out, "%s   %s %s %s on %s: %s", time.Now().Format("15:04:05"), c.GetName(), c.GetDeploymentConfiguration().GetInstanceType(),
					layout(c), nonEmpty(c.GetAgentId(), "-"), c.GetStatus())
				if c.GetStatusReason() != "" {
					fmt.Fprintf(g.out, " (%s)", c.GetStatusReason())
				}
				fmt.Fprintln(g.out)
			}
		}
		switch d.GetAiRecommendationJobStatus() {
		case "Completed", "Failed", "Stopped":
			if g.output == "json" {
				return g.printJSON(d)
			}
			fmt.Fprintln(g.out)
			showRecommendationJob(g, d)
			if d.GetAiRecommendationJobStatus() == "Failed" {
				return fmt.Errorf("recommendation job %s failed: %s", name, d.GetFailureReason())
			}
			return nil
		}
		select {
		case <-cmd.Context().Done():
			return cmd.Context().Err()
		case <-time.After(time.Second):
		}
	}
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func recommendationCreate(g *globals) *cobra.Command {
	var jc jobCommon
	var model, goal, framework, packageGroup string
	var instanceTypes, adapters, adapterPackages []string
	var noOptimize, watch bool
	cmd := &cobra.Command{
		Use:   "create NAME --workload-config WL --model URI --goal ttft-ms|throughput|cost",
		Short: "Create and start a recommendation job",
		Long: `Create a recommendation job: candidate deployments of the model on up to three
instance types are benchmarked with the workload and ranked by the goal
(ttft-ms, throughput or cost). The cost goal chooses instance types itself.

For each candidate the leader picks a layout (tensor-parallel degree and
copies per instance, from the model's size in its name and the GPUs'
memory), starts the model server on an agent of that type, measures it with
a child benchmark job named NAME-cN (listed with the other benchmark jobs),
and tears it down. Candidates on different agents run in parallel. Each is
ranked at its best load that meets the workload's SLOs (goodput, *_sla_ms,
error rate): lowest TTFT p50, highest output tokens/s per instance, or
lowest $ per 1M output tokens (prices from the built-in catalog or the
server's pricing_file). recommendations.json and report.html are written to
OUTPUT/NAME/.

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
			if err := createJob(g, cmd, func(ctx context.Context, c pb.InferenceOptimizationClient) (*pb.CreateAIRecommendationJobResponse, error) {
				return c.CreateAIRecommendationJob(ctx, req)
			}, (*pb.CreateAIRecommendationJobResponse).GetAiRecommendationJobArn); err != nil || !watch {
				return err
			}
			return g.watchRecommendation(cmd, a[0])
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
	f.BoolVar(&watch, "watch", false, "follow each candidate's progress until the job ends, then show the ranking")
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
