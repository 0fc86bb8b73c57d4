package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func newBenchmarkJobCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "benchmark-job", Aliases: []string{"bj"}, Short: "Create, describe, list, stop and delete AI benchmark jobs"}
	var purge bool
	ops := jobOps{
		noun: "benchmark job",
		describe: func(ctx context.Context, c pb.InferenceOptimizationClient, name string) (proto.Message, error) {
			return c.DescribeAIBenchmarkJob(ctx, &pb.DescribeAIBenchmarkJobRequest{AiBenchmarkJobName: name})
		},
		show: func(g *globals, m proto.Message) {
			j := m.(*pb.DescribeAIBenchmarkJobResponse)
			ep := j.GetBenchmarkTarget().GetEndpoint()
			var comps []string
			for _, ic := range ep.GetInferenceComponents() {
				comps = append(comps, ic.GetIdentifier())
			}
			vpc := j.GetNetworkConfig().GetVpcConfig()
			network := ""
			if vpc != nil {
				network = fmt.Sprintf("subnets %s; security groups %s", strings.Join(vpc.GetSubnets(), ","), strings.Join(vpc.GetSecurityGroupIds(), ","))
			}
			kv(g.out, "Name", j.GetAiBenchmarkJobName(), "ARN", j.GetAiBenchmarkJobArn(), "Status", j.GetAiBenchmarkJobStatus(),
				"Failure reason", j.GetFailureReason(), "Workload config", j.GetAiWorkloadConfigIdentifier(),
				"Endpoint", ep.GetIdentifier(), "Container", ep.GetTargetContainerHostname(), "Inference components", strings.Join(comps, ", "),
				"Output location", j.GetOutputConfig().GetS3OutputLocation(), "Role", j.GetRoleArn(), "Network", network,
				"Created", ts(j.GetCreationTime()), "Started", ts(j.GetStartTime()), "Ended", ts(j.GetEndTime()),
				"Last modified", ts(j.GetLastModifiedTime()), "Tags", tagString(j.GetTags()))
		},
		list: func(ctx context.Context, c pb.InferenceOptimizationClient, lf *listFlags, size int32, token string) (proto.Message, []jobRow, string, error) {
			req := &pb.ListAIBenchmarkJobsRequest{NameContains: lf.nameContains, StatusEquals: lf.status, SortBy: lf.sortBy,
				SortOrder: lf.sortOrder, MaxResults: size, NextToken: token}
			if err := lf.times(&req.CreationTimeAfter, &req.CreationTimeBefore); err != nil {
				return nil, nil, "", err
			}
			resp, err := c.ListAIBenchmarkJobs(ctx, req)
			if err != nil {
				return nil, nil, "", err
			}
			var rows []jobRow
			for _, j := range resp.GetAiBenchmarkJobs() {
				rows = append(rows, jobRow{j.GetAiBenchmarkJobName(), j.GetAiBenchmarkJobStatus(), ts(j.GetCreationTime()), ts(j.GetEndTime()), j.GetAiWorkloadConfigName()})
			}
			return resp, rows, resp.GetNextToken(), nil
		},
		stop: func(ctx context.Context, c pb.InferenceOptimizationClient, name string) (string, error) {
			r, err := c.StopAIBenchmarkJob(ctx, &pb.StopAIBenchmarkJobRequest{AiBenchmarkJobName: name})
			return r.GetAiBenchmarkJobArn(), err
		},
		remove: func(ctx context.Context, c pb.InferenceOptimizationClient, name string) (string, error) {
			r, err := c.DeleteAIBenchmarkJob(ctx, &pb.DeleteAIBenchmarkJobRequest{AiBenchmarkJobName: name, PurgeResults: purge})
			if err == nil && purge {
				fmt.Fprintf(g.out, "removed %d result file(s)\n", r.GetPurgedObjects())
			}
			return r.GetAiBenchmarkJobArn(), err
		},
	}
	cmd.AddCommand(benchmarkCreate(g), benchmarkResults(g), benchmarkWatch(g), benchmarkLogs(g))
	for _, c := range ops.commands(g, "WORKLOAD") {
		if c.Name() == "delete" {
			c.Flags().BoolVar(&purge, "purge-results", false, "also delete the job's result files under its output location")
		}
		cmd.AddCommand(c)
	}
	return cmd
}

func benchmarkCreate(g *globals) *cobra.Command {
	var jc jobCommon
	var endpoint, container string
	var components, subnets, groups []string
	var watch bool
	cmd := &cobra.Command{
		Use:   "create NAME --workload-config WL --endpoint URL",
		Short: "Create and start a benchmark job",
		Long: `Create a benchmark job that runs a workload config's load plan against an
endpoint: an http(s)://host:port URL of an OpenAI-compatible server (named,
registered endpoints are not supported yet).

The leader splits each level of the workload across the live agents that
match the spec's placement section (and the job's subnets and security
groups), merges their metrics and writes AIPerf's files (one
concurrency_N/ folder per sweep level) under <output-location>/<job-name>/.
The job ends Completed, Failed with a reason, or Stopped. A job whose
placement no agent can satisfy fails at once, naming the selector.

Example:
  perfleet benchmark-job create chat-sweep --workload-config chat \
    --endpoint http://10.0.0.5:8000 --inference-component llama-3-8b`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := requireFlag("workload-config", jc.workload); err != nil {
				return err
			}
			if err := requireFlag("endpoint", endpoint); err != nil {
				return err
			}
			tags, err := parseTags(jc.tags)
			if err != nil {
				return err
			}
			req := &pb.CreateAIBenchmarkJobRequest{AiBenchmarkJobName: a[0], AiWorkloadConfigIdentifier: jc.workload,
				BenchmarkTarget: &pb.BenchmarkTarget{Endpoint: &pb.BenchmarkEndpoint{Identifier: endpoint, TargetContainerHostname: container}},
				OutputConfig:    &pb.AIBenchmarkOutputConfig{S3OutputLocation: jc.output}, RoleArn: jc.role, Tags: tags,
				ClientToken: tokenOrNew(jc.token)}
			for _, ic := range components {
				req.BenchmarkTarget.Endpoint.InferenceComponents = append(req.BenchmarkTarget.Endpoint.InferenceComponents, &pb.InferenceComponentRef{Identifier: ic})
			}
			if len(subnets)+len(groups) > 0 {
				req.NetworkConfig = &pb.NetworkConfig{VpcConfig: &pb.VpcConfig{Subnets: subnets, SecurityGroupIds: groups}}
			}
			if err := createJob(g, cmd, func(ctx context.Context, c pb.InferenceOptimizationClient) (*pb.CreateAIBenchmarkJobResponse, error) {
				return c.CreateAIBenchmarkJob(ctx, req)
			}, (*pb.CreateAIBenchmarkJobResponse).GetAiBenchmarkJobArn); err != nil || !watch {
				return err
			}
			return g.watchJob(cmd, a[0])
		},
	}
	jc.register(cmd)
	f := cmd.Flags()
	f.StringVar(&endpoint, "endpoint", "", "target: http(s)://host:port of an inference server, or the name or ARN of a registered endpoint (perfleet endpoint register) (required)")
	f.StringVar(&container, "target-container-hostname", "", "container of a multi-container endpoint")
	f.StringArrayVar(&components, "inference-component", nil, "model or adapter name to send requests to (repeatable)")
	f.StringArrayVar(&subnets, "subnet", nil, "only use agents in this subnet (repeatable)")
	f.StringArrayVar(&groups, "security-group", nil, "only use agents in this security group (repeatable)")
	f.BoolVar(&watch, "watch", false, "follow the job's progress until it ends (like 'benchmark-job watch')")
	return cmd
}

// resultMetrics are the headline metrics of 'benchmark-job results', in
// AIPerf's console order.
var resultMetrics = []string{"time_to_first_token", "inter_token_latency", "request_latency", "output_token_throughput_per_user"}

func benchmarkResults(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "results NAME",
		Short: "Show the metrics of a benchmark job's finished levels",
		Long: `Show each finished level of a benchmark job: requests, errors, throughput
and the p50/p99 of TTFT, ITL and request latency, read from the cluster (no
download of the result files). A running job shows the levels finished so
far. -o json gives every metric with avg, min, max, p50, p90, p95, p99 and std.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var resp *pb.GetAIBenchmarkJobResultsResponse
			err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				resp, err = pb.NewInferenceOptimizationClient(c).GetAIBenchmarkJobResults(ctx, &pb.GetAIBenchmarkJobResultsRequest{AiBenchmarkJobName: a[0]})
				return err
			})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(resp)
			}
			fmt.Fprintf(g.out, "%s: %s, %d level(s) finished\n", a[0], resp.GetAiBenchmarkJobStatus(), len(resp.GetLevels()))
			header := []string{"LEVEL", "REQUESTS", "ERRORS", "REQ/S", "OUT TOK/S"}
			for _, m := range resultMetrics {
				header = append(header, strings.ToUpper(abbrev(m))+" P50", strings.ToUpper(abbrev(m))+" P99")
			}
			t := newTable(g.out, header...)
			for _, l := range resp.GetLevels() {
				by := map[string]*pb.MetricSummary{}
				for _, m := range l.GetMetrics() {
					by[m.GetTag()] = m
				}
				name := l.GetName()
				if name == "" {
					name = fmt.Sprint(l.GetIndex())
				}
				row := []string{name, fmt.Sprint(l.GetRequestCount()), fmt.Sprint(l.GetErrorRequestCount()),
					fmt.Sprintf("%.2f", by["request_throughput"].GetValue()), fmt.Sprintf("%.1f", by["output_token_throughput"].GetValue())}
				for _, m := range resultMetrics {
					row = append(row, fmt.Sprintf("%.2f", by[m].GetP50()), fmt.Sprintf("%.2f", by[m].GetP99()))
				}
				t.row(row...)
			}
			t.flush()
			for _, l := range resp.GetLevels() {
				fmt.Fprintf(g.out, "files: %s\n", l.GetLocation())
			}
			return nil
		},
	}
}

// abbrev shortens a metric tag for a column header.
func abbrev(tag string) string {
	switch tag {
	case "time_to_first_token":
		return "ttft ms"
	case "inter_token_latency":
		return "itl ms"
	case "request_latency":
		return "latency ms"
	case "output_token_throughput_per_user":
		return "tok/s/user"
	}
	return tag
}

func benchmarkWatch(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "watch NAME",
		Short: "Follow a benchmark job's progress until it ends",
		Long: `Follow a benchmark job: one line per second with the running level, its
requests and errors, the achieved request rate and token throughput, and
TTFT, ITL and latency percentiles merged over all agents; it ends when the
job does, with a non-zero exit status if the job failed.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error { return g.watchJob(cmd, a[0]) },
	}
}

// watchJob prints a job's updates until its final state.
func (g *globals) watchJob(cmd *cobra.Command, name string) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	addrs := strings.Split(g.addr, ",")
	creds, err := g.creds()
	if err != nil {
		return err
	}
	dial, err := g.dialOptions(creds)
	if err != nil {
		return err
	}
	if g.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+g.token)
	}
	var last *pb.WatchAIBenchmarkJobResponse
	for attempt := 0; attempt < 20; attempt++ {
		conn, err := grpc.NewClient(strings.TrimSpace(addrs[attempt%len(addrs)]), dial...)
		if err != nil {
			return usageError{err}
		}
		stream, err := pb.NewInferenceOptimizationClient(conn).WatchAIBenchmarkJob(ctx, &pb.WatchAIBenchmarkJobRequest{AiBenchmarkJobName: name})
		for err == nil {
			var u *pb.WatchAIBenchmarkJobResponse
			if u, err = stream.Recv(); err == nil {
				last = u
				g.printUpdate(name, u)
				if u.GetFinal() {
					conn.Close()
					if u.GetAiBenchmarkJobStatus() == "Failed" {
						return fmt.Errorf("benchmark job %s failed: %s", name, u.GetFailureReason())
					}
					return nil
				}
			}
		}
		conn.Close()
		if status.Code(err) != codes.Unavailable {
			return err
		}
		time.Sleep(backoff(attempt)) // the node went away: follow another one
	}
	if last != nil {
		return fmt.Errorf("lost the job's progress stream; last status %s", last.GetAiBenchmarkJobStatus())
	}
	return fmt.Errorf("could not follow benchmark job %s", name)
}

func (g *globals) printUpdate(name string, u *pb.WatchAIBenchmarkJobResponse) {
	if g.output == "json" {
		_ = g.printJSON(u)
		return
	}
	if u.GetFinal() {
		fmt.Fprintf(g.out, "%s: %s after %d level(s)", name, u.GetAiBenchmarkJobStatus(), u.GetLevelsFinished())
		if u.GetFailureReason() != "" {
			fmt.Fprintf(g.out, ": %s", u.GetFailureReason())
		}
		fmt.Fprintln(g.out)
		return
	}
	l := u.GetLevel()
	if l == nil {
		fmt.Fprintf(g.out, "%s: %s, %d/%d level(s) finished\n", name, u.GetAiBenchmarkJobStatus(), u.GetLevelsFinished(), u.GetLevelsTotal())
		return
	}
	level := l.GetName()
	if level == "" {
		level = "level"
	}
	if l.GetElapsedSeconds() == 0 && l.GetRequestCount() == 0 {
		fmt.Fprintf(g.out, "[%s %d/%d] starting on %d agent(s)\n", level, l.GetIndex()+1, u.GetLevelsTotal(), l.GetAgents())
		return
	}
	done := fmt.Sprint(l.GetRequestCount())
	if l.GetPlannedRequestCount() > 0 {
		done = fmt.Sprintf("%d/%d", l.GetRequestCount(), l.GetPlannedRequestCount())
	}
	gpu := ""
	if m := l.GetGpuUtilization(); len(m) > 0 {
		ids := make([]string, 0, len(m))
		for id := range m {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			gpu += fmt.Sprintf(" %s %.0f%%", id, m[id])
		}
		gpu = " | GPU" + gpu
	}
	fmt.Fprintf(g.out, "[%s %d/%d, %d agents] %5.1fs  ok %s  err %d | %.1f req/s  %.0f tok/s | TTFT p50 %.1f p99 %.1f ms | ITL p50 %.2f ms | latency p50 %.0f p99 %.0f ms%s\n",
		level, l.GetIndex()+1, u.GetLevelsTotal(), l.GetAgents(), l.GetElapsedSeconds(), done, l.GetErrorRequestCount(),
		l.GetRequestThroughput(), l.GetOutputTokenThroughput(), l.GetTimeToFirstTokenP50(), l.GetTimeToFirstTokenP99(),
		l.GetInterTokenLatencyP50(), l.GetRequestLatencyP50(), l.GetRequestLatencyP99(), gpu)
}

func benchmarkLogs(g *globals) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Show a benchmark job's event log (placement, levels, failover, errors)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var after uint64
			for {
				var resp *pb.GetAIBenchmarkJobLogResponse
				err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
					resp, err = pb.NewInferenceOptimizationClient(c).GetAIBenchmarkJobLog(ctx, &pb.GetAIBenchmarkJobLogRequest{AiBenchmarkJobName: a[0], AfterIndex: after})
					return err
				})
				if err != nil {
					return err
				}
				for _, ev := range resp.GetEvents() {
					if g.output == "json" {
						_ = g.printJSON(ev)
					} else {
						fmt.Fprintf(g.out, "%s %-5s %s\n", ev.GetTime().AsTime().UTC().Format("2006-01-02T15:04:05.000Z"), ev.GetLevel(), ev.GetMessage())
					}
					after = ev.GetIndex()
				}
				terminal := resp.GetAiBenchmarkJobStatus() == "Completed" || resp.GetAiBenchmarkJobStatus() == "Failed" || resp.GetAiBenchmarkJobStatus() == "Stopped"
				if !follow || (terminal && len(resp.GetEvents()) == 0) {
					return nil
				}
				time.Sleep(time.Second)
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events until the job ends")
	return cmd
}
