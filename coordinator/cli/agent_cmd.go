package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func newAgentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Short: "List and describe the fleet's agents"}
	req := &pb.ListAgentsRequest{}
	list := &cobra.Command{
		Use: "list", Short: "List agents with their hardware and status", Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp *pb.ListAgentsResponse
			err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				resp, err = pb.NewFleetServiceClient(c).ListAgents(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(resp)
			}
			t := newTable(g.out, "AGENT", "STATUS", "CONNECTED", "INSTANCE TYPE", "GPUS", "LABELS", "SINCE")
			for _, a := range resp.GetAgents() {
				t.row(a.GetAgentId(), a.GetStatus(), fmt.Sprint(a.GetConnected()), a.GetInstanceType(), gpuString(a.GetGpus()),
					labelString(a.GetLabels()), ts(a.GetStatusTime()))
			}
			t.flush()
			return nil
		},
	}
	f := list.Flags()
	f.StringVar(&req.Status, "status", "", "only agents in this status: alive, suspect, failed or left")
	f.StringVar(&req.InstanceType, "instance-type", "", "only agents of this instance type")
	f.StringVar(&req.GpuModel, "gpu-model", "", "only agents whose GPU model contains this text")
	f.StringArrayVar(&req.Labels, "label", nil, "only agents with this label, key=value (repeatable)")
	describe := &cobra.Command{
		Use: "describe AGENT", Short: "Show one agent", Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var resp *pb.DescribeAgentResponse
			err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				resp, err = pb.NewFleetServiceClient(c).DescribeAgent(ctx, &pb.DescribeAgentRequest{AgentId: a[0]})
				return err
			})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(resp)
			}
			ag := resp.GetAgent()
			kv(g.out, "Agent", ag.GetAgentId(), "Status", ag.GetStatus(), "Since", ts(ag.GetStatusTime()),
				"Connected", fmt.Sprint(ag.GetConnected()), "Instance type", ag.GetInstanceType(), "Region", ag.GetRegion(),
				"GPUs", gpuString(ag.GetGpus()), "GPU source", ag.GetGpus().GetSource(), "Labels", labelString(ag.GetLabels()),
				"Gossip address", ag.GetGossipAddr(), "gRPC address", ag.GetGrpcAddr(), "Version", ag.GetVersion(),
				"First seen", ts(ag.GetFirstSeen()))
			return nil
		},
	}
	cmd.AddCommand(list, describe)
	return cmd
}

func gpuString(g *pb.GPUSummary) string {
	if g.GetCount() == 0 {
		return "none"
	}
	return fmt.Sprintf("%dx%s (%d MiB)", g.GetCount(), g.GetModel(), g.GetMemoryMib())
}

func labelString(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
