package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func newWorkloadConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "workload-config", Aliases: []string{"wc"}, Short: "Create, describe, list and delete AI workload configs"}
	cmd.AddCommand(wcCreate(g), wcDescribe(g), wcList(g), wcDelete(g))
	return cmd
}

func wcCreate(g *globals) *cobra.Command {
	var spec, token string
	var datasets, tags []string
	cmd := &cobra.Command{
		Use:   "create NAME --spec FILE",
		Short: "Create a workload config from a JSON or YAML workload spec",
		Long: `Create a workload config. The spec file is the SageMaker/AIPerf workload spec:

  benchmark:
    type: aiperf
  parameters:
    concurrency: [1, 8, 32]
    prompt_input_tokens_mean: 512
    output_tokens_mean: 256
    request_count: 200

The spec is checked strictly: unknown keys and wrong values are reported with
their path in the document.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if spec == "" {
				return usageError{fmt.Errorf("--spec FILE is required (use - for stdin)")}
			}
			inline, err := readSpec(spec)
			if err != nil {
				return err
			}
			t, err := parseTags(tags)
			if err != nil {
				return err
			}
			req := &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: a[0], Tags: t,
				AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: inline}}, ClientToken: tokenOrNew(token)}
			if len(datasets) > 0 {
				req.DatasetConfig = &pb.DatasetConfig{}
				for _, d := range datasets {
					name, uri, ok := strings.Cut(d, "=")
					if !ok {
						return usageError{fmt.Errorf("--dataset %q must be channel=uri", d)}
					}
					req.DatasetConfig.InputDataConfig = append(req.DatasetConfig.InputDataConfig, &pb.InputDataConfig{ChannelName: name,
						DataSource: &pb.DataSource{S3DataSource: &pb.S3DataSource{S3Uri: uri}}})
				}
			}
			var resp *pb.CreateAIWorkloadConfigResponse
			err = g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				resp, err = pb.NewInferenceOptimizationClient(c).CreateAIWorkloadConfig(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			return g.printARN(resp, resp.GetAiWorkloadConfigArn())
		},
	}
	cmd.Flags().StringVar(&spec, "spec", "", "workload spec file (JSON or YAML), - for stdin")
	cmd.Flags().StringArrayVar(&datasets, "dataset", nil, "dataset channel as channel=s3://bucket/prefix or channel=file:///path (repeatable)")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "tag as key=value (repeatable)")
	cmd.Flags().StringVar(&token, "client-token", "", "idempotency token (default: a fresh one, reused on retries)")
	return cmd
}

func wcDescribe(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "describe NAME", Short: "Show a workload config and its spec", Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var resp *pb.DescribeAIWorkloadConfigResponse
			err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				resp, err = pb.NewInferenceOptimizationClient(c).DescribeAIWorkloadConfig(ctx, &pb.DescribeAIWorkloadConfigRequest{AiWorkloadConfigName: a[0]})
				return err
			})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(resp)
			}
			var chans []string
			for _, ch := range resp.GetDatasetConfig().GetInputDataConfig() {
				chans = append(chans, ch.GetChannelName()+"="+ch.GetDataSource().GetS3DataSource().GetS3Uri())
			}
			kv(g.out, "Name", resp.GetAiWorkloadConfigName(), "ARN", resp.GetAiWorkloadConfigArn(), "Created", ts(resp.GetCreationTime()),
				"Datasets", strings.Join(chans, ", "), "Tags", tagString(resp.GetTags()))
			fmt.Fprintf(g.out, "Spec:\n%s\n", indent(resp.GetAiWorkloadConfigs().GetWorkloadSpec().GetInline()))
			return nil
		},
	}
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = "  " + lines[i]
	}
	return strings.Join(lines, "\n")
}

func wcList(g *globals) *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use: "list", Short: "List workload configs", Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &pb.ListAIWorkloadConfigsRequest{NameContains: lf.nameContains, SortBy: lf.sortBy, SortOrder: lf.sortOrder}
			if err := lf.times(&req.CreationTimeAfter, &req.CreationTimeBefore); err != nil {
				return err
			}
			all := &pb.ListAIWorkloadConfigsResponse{}
			err := lf.pages(func(size int32, token string) (string, error) {
				req.MaxResults, req.NextToken = size, token
				var resp *pb.ListAIWorkloadConfigsResponse
				err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
					resp, err = pb.NewInferenceOptimizationClient(c).ListAIWorkloadConfigs(ctx, req)
					return err
				})
				all.AiWorkloadConfigs = append(all.AiWorkloadConfigs, resp.GetAiWorkloadConfigs()...)
				all.NextToken = resp.GetNextToken()
				return resp.GetNextToken(), err
			})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(all)
			}
			t := newTable(g.out, "NAME", "CREATED", "ARN")
			for _, r := range all.GetAiWorkloadConfigs() {
				t.row(r.GetAiWorkloadConfigName(), ts(r.GetCreationTime()), r.GetAiWorkloadConfigArn())
			}
			t.flush()
			lf.more(g, all.GetNextToken())
			return nil
		},
	}
	lf.register(cmd, false)
	return cmd
}

func wcDelete(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "delete NAME", Short: "Delete a workload config that no active job uses", Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var resp *pb.DeleteAIWorkloadConfigResponse
			err := g.call(cmd.Context(), false, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				resp, err = pb.NewInferenceOptimizationClient(c).DeleteAIWorkloadConfig(ctx, &pb.DeleteAIWorkloadConfigRequest{AiWorkloadConfigName: a[0]})
				return err
			})
			if err != nil {
				return err
			}
			return g.printARN(resp, "deleted "+resp.GetAiWorkloadConfigArn())
		},
	}
}
