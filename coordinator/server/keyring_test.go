package server

import (
	"bytes"
	"encoding/base64"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/perfleet/perfleet/agent/daemon"
	"github.com/perfleet/perfleet/agent/gpu"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// TestGossipKeyRotationAcrossServersAndAgents rotates the gossip key of a
// 3-server cluster with an agent through the operator API: every server and
// the agent end up with only the new key, an agent holding only the old
// key cannot join, and one with the new key can.
func TestGossipKeyRotationAcrossServersAndAgents(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 32)
	servers := TestCluster(t, 3, func(_ int, c *Config) { c.GossipKey = base64.StdEncoding.EncodeToString(oldKey) })
	leader := WaitForLeader(t, servers...)
	startAgent := func(id string, key []byte) *daemon.Agent {
		spec, _ := gpu.ParseSimulated("1xL4")
		a, err := daemon.Start(daemon.Config{ID: id, GossipAddr: "127.0.0.1:0", Join: []string{leader.GossipAddr()}, GossipKey: key,
			FastGossip: true, GPUs: gpu.NewSimulated(spec, gpu.SimOptions{}), Heartbeat: 200 * time.Millisecond, DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Kill() })
		return a
	}
	fleet := pb.NewFleetServiceClient(testConn(t, leader.Addr()))
	connected := func(id string) bool {
		a := listAgents(t, fleet, &pb.ListAgentsRequest{Status: "alive"})[id]
		return a.GetConnected()
	}
	agent := startAgent("a1", oldKey)
	eventually(t, 10*time.Second, "a1 connected", func() bool { return connected("a1") })

	op := pb.NewOperatorServiceClient(testConn(t, followers(servers)[0].Addr()))
	ctx := ctxT(t)
	nk, ok := base64.StdEncoding.EncodeToString(newKey), base64.StdEncoding.EncodeToString(oldKey)
	_, err := op.RemoveGossipKey(ctx, &pb.RemoveGossipKeyRequest{Key: ok})
	wantCode(t, "removing the key in use", err, codes.InvalidArgument, "ValidationException")
	_, err = op.UseGossipKey(ctx, &pb.UseGossipKeyRequest{Key: nk})
	wantCode(t, "using a key not installed", err, codes.InvalidArgument, "ValidationException")
	_, err = op.InstallGossipKey(ctx, &pb.InstallGossipKeyRequest{Key: "c2hvcnQ="})
	wantCode(t, "a 5-byte key", err, codes.InvalidArgument, "ValidationException")
	if _, err := op.InstallGossipKey(ctx, &pb.InstallGossipKeyRequest{Key: nk}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range servers {
			_, all := s.gossip.Keys()
			t.Logf("%s: %d keys, meta %v", s.NodeID(), len(all), s.State().Meta().GetGossipKeyring() != nil)
		}
		_, all := agent.GossipKeys()
		t.Logf("agent: %d keys", len(all))
	}()
	// Every node must hold the new key before anyone uses it.
	eventually(t, 5*time.Second, "new key installed everywhere", func() bool {
		for _, s := range servers {
			if _, all := s.gossip.Keys(); len(all) != 2 {
				return false
			}
		}
		_, all := agent.GossipKeys()
		return len(all) == 2
	})
	if _, err := op.UseGossipKey(ctx, &pb.UseGossipKeyRequest{Key: nk}); err != nil {
		t.Fatal(err)
	}
	// Nodes switch their primary key as they apply the change; a node
	// that drops the old key while another still sends with it would see
	// that one fail. Remove only once every node uses the new key.
	eventually(t, 5*time.Second, "new key primary everywhere", func() bool {
		for _, s := range servers {
			if p, _ := s.gossip.Keys(); !bytes.Equal(p, newKey) {
				return false
			}
		}
		p, _ := agent.GossipKeys()
		return bytes.Equal(p, newKey)
	})
	resp, err := op.RemoveGossipKey(ctx, &pb.RemoveGossipKeyRequest{Key: ok})
	if err != nil || len(resp.GetKeys()) != 1 || !resp.GetKeys()[0].GetPrimary() {
		t.Fatalf("remove: %v, %v", resp, err)
	}
	eventually(t, 5*time.Second, "only the new key everywhere", func() bool {
		for _, s := range servers {
			if p, all := s.gossip.Keys(); len(all) != 1 || !bytes.Equal(p, newKey) {
				return false
			}
		}
		p, all := agent.GossipKeys()
		return len(all) == 1 && bytes.Equal(p, newKey)
	})
	startAgent("stale", oldKey)
	startAgent("fresh", newKey)
	eventually(t, 10*time.Second, "fresh connected", func() bool { return connected("fresh") })
	time.Sleep(time.Second)
	if a := listAgents(t, fleet, &pb.ListAgentsRequest{})["stale"]; a.GetStatus() == "alive" {
		t.Fatalf("an agent with only the removed key joined: %v", a)
	}
	eventually(t, 10*time.Second, "the rotated agent still connected", func() bool { return connected("a1") })
}
