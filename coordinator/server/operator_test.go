package server

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

func TestOperatorTransferLeaderAndRemoveDeadPeer(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	fs := followers(servers)
	op := pb.NewOperatorServiceClient(testConn(t, fs[0].Addr()))
	ctx := ctxT(t)

	peers, err := op.RaftListPeers(ctx, &pb.RaftListPeersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	leaders := 0
	for _, p := range peers.GetPeers() {
		if p.GetLeader() {
			leaders++
			if p.GetServer().GetNodeId() != leader.NodeID() || p.GetServer().GetGrpcAddr() != leader.Addr() {
				t.Fatalf("leader row %v", p)
			}
		}
	}
	if len(peers.GetPeers()) != 3 || leaders != 1 || peers.GetTerm() == 0 {
		t.Fatalf("list-peers: %v", peers)
	}
	// The servers' gossip pool may still be forming right after the election.
	eventually(t, 10*time.Second, "every peer alive in the gossip pool", func() bool {
		peers, err := op.RaftListPeers(ctx, &pb.RaftListPeersRequest{})
		if err != nil {
			return false
		}
		for _, p := range peers.GetPeers() {
			if p.GetGossipStatus() != "alive" {
				return false
			}
		}
		return true
	})

	// Hand leadership to a named follower, through a follower.
	target := fs[1].NodeID()
	resp, err := op.RaftTransferLeader(ctx, &pb.RaftTransferLeaderRequest{NodeId: target})
	if err != nil {
		t.Fatalf("transfer: %v", err)
	}
	if resp.GetNewLeader().GetNodeId() != target {
		t.Fatalf("new leader %v, want %s", resp.GetNewLeader(), target)
	}
	newLeader := WaitForLeader(t, servers...)
	if newLeader.NodeID() != target {
		t.Fatalf("leader is %s, want %s", newLeader.NodeID(), target)
	}
	_, err = op.RaftTransferLeader(ctx, &pb.RaftTransferLeaderRequest{NodeId: "nope"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("transfer to unknown node: %v", err)
	}

	// Kill the old leader (now a follower) and remove it.
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	op = pb.NewOperatorServiceClient(testConn(t, newLeader.Addr()))
	// Until it is removed, list-peers shows the dead server as failed (its
	// gossip membership), not as a healthy follower.
	eventually(t, 10*time.Second, "the killed server listed as failed", func() bool {
		peers, err := op.RaftListPeers(ctx, &pb.RaftListPeersRequest{})
		if err != nil {
			return false
		}
		for _, p := range peers.GetPeers() {
			if p.GetServer().GetNodeId() == leader.NodeID() {
				return p.GetGossipStatus() == "failed"
			}
		}
		return false
	})
	_, err = op.RaftRemovePeer(ctx, &pb.RaftRemovePeerRequest{NodeId: newLeader.NodeID()})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("removing the leader itself: %v", err)
	}
	if _, err := op.RaftRemovePeer(ctx, &pb.RaftRemovePeerRequest{NodeId: leader.NodeID()}); err != nil {
		t.Fatalf("remove dead peer: %v", err)
	}
	peers, err = op.RaftListPeers(ctx, &pb.RaftListPeersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(peers.GetPeers()) != 2 {
		t.Fatalf("want 2 peers after removal, got %v", peers.GetPeers())
	}
	if newLeader.State().Server(leader.NodeID()) != nil {
		t.Fatal("removed server still registered")
	}
	// The removed server, restarted with its data and a join list, asks the
	// others for the leader (as a node at a new address would) but is not
	// added back: it needs a fresh data dir for that.
	rcfg := leader.cfg
	rcfg.GRPCAddr, rcfg.GRPCAdvertise = "127.0.0.1:0", ""
	rcfg.RaftAddr = "127.0.0.1:0"
	rcfg.Join = []string{newLeader.Addr()}
	back, err := New(rcfg)
	if err != nil {
		t.Fatalf("restart the removed server: %v", err)
	}
	t.Cleanup(func() { _ = back.Shutdown() })
	time.Sleep(8 * time.Second) // past its 5 s wait for a leader, then several rounds
	if f := newLeader.raft.GetConfiguration(); f.Error() != nil || len(f.Configuration().Servers) != 2 {
		t.Fatalf("after the removed server came back: %v %v", f.Configuration().Servers, f.Error())
	}
	// The two remaining servers still commit writes.
	c := client(t, newLeader.Addr())
	if _, err := c.CreateAIWorkloadConfig(ctx, &pb.CreateAIWorkloadConfigRequest{AiWorkloadConfigName: "after-removal",
		AiWorkloadConfigs: &pb.AIWorkloadConfigs{WorkloadSpec: &pb.WorkloadSpec{Inline: testSpec}}}); err != nil {
		t.Fatalf("write after removal: %v", err)
	}
}
