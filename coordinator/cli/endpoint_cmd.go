package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func newEndpointCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "endpoint", Short: "Register named inference endpoints that benchmark jobs can target by name",
		Long: `A registered endpoint gives a name to one or more URLs of an inference
service, with its API type and model. A benchmark job's --endpoint may then
be the name (or the endpoint's ARN) instead of a URL:

  perfleet endpoint register chat-prod --url http://10.0.0.7:8000 --url http://10.0.0.8:8000 \
    --api-type openai-chat --model llama-3.1-8b
  perfleet benchmark-job create nightly --workload-config chat --endpoint chat-prod ...

Each agent's share of a level goes to one of the URLs, taken in turn, so place
the job on at least as many agents as the endpoint has URLs.`}
	cmd.AddCommand(epRegister(g), epDescribe(g), epList(g), epDeregister(g))
	return cmd
}

func epRegister(g *globals) *cobra.Command {
	var urls, tags []string
	var apiType, model string
	cmd := &cobra.Command{
		Use:   "register NAME --url URL [--url URL ...]",
		Short: "Register an endpoint, or replace the settings of a registered one",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if len(urls) == 0 {
				return usageError{fmt.Errorf("--url is required (repeat it for several URLs)")}
			}
			t, err := parseTags(tags)
			if err != nil {
				return err
			}
			req := &pb.RegisterEndpointRequest{EndpointName: a[0], Urls: urls, ApiType: apiType, ModelName: model, Tags: t}
			var resp *pb.RegisterEndpointResponse
			err = g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				resp, err = pb.NewInferenceOptimizationClient(c).RegisterEndpoint(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			return g.printARN(resp, resp.GetEndpointArn())
		},
	}
	cmd.Flags().StringArrayVar(&urls, "url", nil, "base URL, http(s)://host[:port] (repeatable, at most 16)")
	cmd.Flags().StringVar(&apiType, "api-type", "", "openai-chat, openai-completions, kserve-v2 or http (default: the workload spec's)")
	cmd.Flags().StringVar(&model, "model", "", "model name requests carry when the job names no --inference-component")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "tag as key=value (repeatable)")
	return cmd
}

func epDescribe(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "describe NAME", Short: "Show a registered endpoint", Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var resp *pb.DescribeEndpointResponse
			err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				resp, err = pb.NewInferenceOptimizationClient(c).DescribeEndpoint(ctx, &pb.DescribeEndpointRequest{EndpointName: a[0]})
				return err
			})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(resp)
			}
			kv(g.out, "Name", resp.GetEndpointName(), "ARN", resp.GetEndpointArn(), "URLs", strings.Join(resp.GetUrls(), ", "),
				"API type", orDash(resp.GetApiType()), "Model", orDash(resp.GetModelName()), "Registered", ts(resp.GetCreationTime()),
				"Last modified", ts(resp.GetLastModifiedTime()), "Tags", tagString(resp.GetTags()))
			return nil
		},
	}
}

func epList(g *globals) *cobra.Command {
	var contains string
	cmd := &cobra.Command{
		Use: "list", Short: "List registered endpoints", Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			all := &pb.ListEndpointsResponse{}
			for token := ""; ; {
				var resp *pb.ListEndpointsResponse
				err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
					resp, err = pb.NewInferenceOptimizationClient(c).ListEndpoints(ctx, &pb.ListEndpointsRequest{NameContains: contains, MaxResults: 100, NextToken: token})
					return err
				})
				if err != nil {
					return err
				}
				all.Endpoints = append(all.Endpoints, resp.GetEndpoints()...)
				if token = resp.GetNextToken(); token == "" {
					break
				}
			}
			if g.output == "json" {
				return g.printJSON(all)
			}
			t := newTable(g.out, "NAME", "API TYPE", "MODEL", "URLS")
			for _, e := range all.GetEndpoints() {
				t.row(e.GetEndpointName(), orDash(e.GetApiType()), orDash(e.GetModelName()), strings.Join(e.GetUrls(), ", "))
			}
			t.flush()
			return nil
		},
	}
	cmd.Flags().StringVar(&contains, "name-contains", "", "only endpoints whose name contains this")
	return cmd
}

func epDeregister(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "deregister NAME", Short: "Remove a registered endpoint that no running job targets", Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var resp *pb.DeregisterEndpointResponse
			err := g.call(cmd.Context(), false, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				resp, err = pb.NewInferenceOptimizationClient(c).DeregisterEndpoint(ctx, &pb.DeregisterEndpointRequest{EndpointName: a[0]})
				return err
			})
			if err != nil {
				return err
			}
			return g.printARN(resp, "deregistered "+resp.GetEndpointArn())
		},
	}
}
