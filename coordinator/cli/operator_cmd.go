package cli

import (
	"context"
	"fmt"
	"sort"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func newOperatorCmd(g *globals) *cobra.Command {
	op := &cobra.Command{Use: "operator", Short: "Operate the coordinator cluster (raft peers, state)"}
	rf := &cobra.Command{Use: "raft", Short: "List, hand over and remove Raft peers"}
	rf.AddCommand(
		&cobra.Command{
			Use: "list-peers", Short: "List the Raft servers and the leader", Args: args(cobra.NoArgs),
			RunE: func(cmd *cobra.Command, _ []string) error {
				var resp *pb.RaftListPeersResponse
				err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
					resp, err = pb.NewOperatorServiceClient(c).RaftListPeers(ctx, &pb.RaftListPeersRequest{})
					return err
				})
				if err != nil {
					return err
				}
				if g.output == "json" {
					return g.printJSON(resp)
				}
				t := newTable(g.out, "NODE", "RAFT ADDRESS", "API ADDRESS", "STATE", "VOTER")
				for _, p := range resp.GetPeers() {
					st := "follower"
					if p.GetLeader() {
						st = "leader"
					}
					t.row(p.GetServer().GetNodeId(), p.GetServer().GetRaftAddr(), p.GetServer().GetGrpcAddr(), st, fmt.Sprint(p.GetSuffrage() == "Voter"))
				}
				t.flush()
				fmt.Fprintf(g.out, "term %d, commit index %d\n", resp.GetTerm(), resp.GetCommitIndex())
				return nil
			},
		},
		&cobra.Command{
			Use: "transfer-leader [NODE]", Short: "Hand leadership to another server (any, or NODE)", Args: args(cobra.MaximumNArgs(1)),
			RunE: func(cmd *cobra.Command, a []string) error {
				req := &pb.RaftTransferLeaderRequest{}
				if len(a) == 1 {
					req.NodeId = a[0]
				}
				var resp *pb.RaftTransferLeaderResponse
				err := g.call(cmd.Context(), false, func(ctx context.Context, c *grpc.ClientConn) (err error) {
					resp, err = pb.NewOperatorServiceClient(c).RaftTransferLeader(ctx, req)
					return err
				})
				if err != nil {
					return err
				}
				return g.printARN(resp, "new leader: "+resp.GetNewLeader().GetNodeId()+" "+resp.GetNewLeader().GetGrpcAddr())
			},
		},
		&cobra.Command{
			Use: "remove-peer NODE", Short: "Remove a (dead) server from the Raft configuration", Args: args(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, a []string) error {
				err := g.call(cmd.Context(), false, func(ctx context.Context, c *grpc.ClientConn) error {
					_, err := pb.NewOperatorServiceClient(c).RaftRemovePeer(ctx, &pb.RaftRemovePeerRequest{NodeId: a[0]})
					return err
				})
				if err == nil {
					fmt.Fprintf(g.out, "removed %s\n", a[0])
				}
				return err
			},
		},
	)
	op.AddCommand(rf, &cobra.Command{
		Use: "state-hash", Short: "Show the hash of the answering node's replicated state", Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp *pb.StateHashResponse
			err := g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				resp, err = pb.NewOperatorServiceClient(c).StateHash(ctx, &pb.StateHashRequest{})
				return err
			})
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.printJSON(resp)
			}
			fmt.Fprintf(g.out, "%s at index %d\n", resp.GetHash(), resp.GetAppliedIndex())
			keys := make([]string, 0, len(resp.GetRecords()))
			for k := range resp.GetRecords() {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(g.out, "  %s: %d\n", k, resp.GetRecords()[k])
			}
			return nil
		},
	})
	return op
}
