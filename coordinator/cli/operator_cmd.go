package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/perfleet/perfleet/pkg/atrest"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
	"github.com/perfleet/perfleet/pkg/resultstore"
)

func newOperatorCmd(g *globals) *cobra.Command {
	op := &cobra.Command{Use: "operator", Short: "Operate the coordinator cluster (raft peers, state, gossip and encryption keys)"}
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
					if gs := p.GetGossipStatus(); gs != "" && gs != "alive" {
						st += " (" + gs + ")" // e.g. a killed node: "follower (failed)"
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
	op.AddCommand(rf, newEncryptionKeyCmd(g), newGossipKeyringCmd(g), newSnapshotCmd(g), &cobra.Command{
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
			printRecords(g, resp.GetRecords())
			return nil
		},
	})
	return op
}

func newEncryptionKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "encryption-key", Short: "Create and rotate the keyring that encrypts a server's data at rest"}
	var file string
	create := &cobra.Command{
		Use: "create", Short: "Create a keyring file with one AES-256 data key (mode 0600)", Args: args(cobra.NoArgs),
		Example: "  perfleet operator encryption-key create --file /etc/perfleet/keyring.json\n  perfleet server --encryption-keyring-file /etc/perfleet/keyring.json ...",
		RunE: func(cmd *cobra.Command, _ []string) error {
			kr, err := atrest.GenerateKeyringFile(file)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "created %s with active key %s\n", file, kr.ActiveKeyID())
			return nil
		},
	}
	rotate := &cobra.Command{
		Use: "rotate", Short: "Add a new active data key, keeping the old ones for reading; then SIGHUP the server", Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			kr, err := atrest.RotateFile(file)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "%s: active key %s (%d keys); send SIGHUP to the server to use it\n", file, kr.ActiveKeyID(), len(kr.KeyIDs()))
			return nil
		},
	}
	var location string
	decrypt := &cobra.Command{
		Use: "decrypt OBJECT_KEY", Short: "Print a result file written with --encrypt-results, decrypted", Args: args(cobra.ExactArgs(1)),
		Example: "  perfleet operator encryption-key decrypt --file keyring.json --location file:///srv/results my-job/report.html > report.html",
		RunE: func(cmd *cobra.Command, a []string) error {
			kr, err := atrest.LoadKeyringFile(file)
			if err != nil {
				return err
			}
			st, err := resultstore.Open(cmd.Context(), location, resultstore.Options{Region: g.region})
			if err != nil {
				return usageError{fmt.Errorf("--location: %v", err)}
			}
			rc, err := resultstore.Sealed(st, kr).Get(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(g.out, rc)
			return err
		},
	}
	decrypt.Flags().StringVar(&location, "location", "", "the job's output location, s3://bucket/prefix or file:///dir (required)")
	_ = decrypt.MarkFlagRequired("location")
	for _, c := range []*cobra.Command{create, rotate, decrypt} {
		c.Flags().StringVar(&file, "file", "", "the keyring file (required)")
		_ = c.MarkFlagRequired("file")
	}
	cmd.AddCommand(create, rotate, decrypt)
	return cmd
}

func newGossipKeyringCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gossip-keyring",
		Short: "List, install, use and remove gossip encryption keys across the cluster",
		Long: `Rotate the key that encrypts gossip between servers and agents. A change is
replicated through Raft; every server applies it and the leader sends it to
every connected agent (and to agents when they connect). Nodes keep the
keyring in their data dir, so a restart keeps the keys in use.

Rotation: install the new key everywhere, use it, then remove the old one.
Nodes apply each step a moment apart: give 'use' a few seconds to reach
every node before 'remove', or a node still sending with the old key is
briefly seen as failed.
After that a node holding only the old key, or none, cannot join.`,
		Example: `  NEW=$(openssl rand -base64 32)
  perfleet operator gossip-keyring install "$NEW"
  perfleet operator gossip-keyring use "$NEW"
  perfleet operator gossip-keyring remove "$OLD"
  perfleet operator gossip-keyring list`,
	}
	show := func(keys []*pb.GossipKeyInfo) {
		if g.output == "json" {
			_ = g.printJSON(&pb.ListGossipKeysResponse{Keys: keys})
			return
		}
		t := newTable(g.out, "FINGERPRINT", "IN USE")
		for _, k := range keys {
			t.row(k.GetFingerprint(), fmt.Sprint(k.GetPrimary()))
		}
		t.flush()
	}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List keys by fingerprint", Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.call(cmd.Context(), true, func(ctx context.Context, c *grpc.ClientConn) error {
				r, err := pb.NewOperatorServiceClient(c).ListGossipKeys(ctx, &pb.ListGossipKeysRequest{})
				if err == nil {
					show(r.GetKeys())
				}
				return err
			})
		},
	})
	for _, verb := range []string{"install", "use", "remove"} {
		cmd.AddCommand(&cobra.Command{
			Use: verb + " KEY", Short: map[string]string{"install": "Install a key every node accepts", "use": "Make an installed key the one nodes encrypt with",
				"remove": "Remove a key that is not in use"}[verb], Args: args(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, a []string) error {
				return g.call(cmd.Context(), false, func(ctx context.Context, c *grpc.ClientConn) error {
					op := pb.NewOperatorServiceClient(c)
					var keys []*pb.GossipKeyInfo
					var err error
					switch verb {
					case "install":
						var r *pb.InstallGossipKeyResponse
						r, err = op.InstallGossipKey(ctx, &pb.InstallGossipKeyRequest{Key: a[0]})
						keys = r.GetKeys()
					case "use":
						var r *pb.UseGossipKeyResponse
						r, err = op.UseGossipKey(ctx, &pb.UseGossipKeyRequest{Key: a[0]})
						keys = r.GetKeys()
					default:
						var r *pb.RemoveGossipKeyResponse
						r, err = op.RemoveGossipKey(ctx, &pb.RemoveGossipKeyRequest{Key: a[0]})
						keys = r.GetKeys()
					}
					if err == nil {
						show(keys)
					}
					return err
				})
			},
		})
	}
	return cmd
}
