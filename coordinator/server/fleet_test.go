package server

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/perfleet/perfleet/agent/daemon"
	"github.com/perfleet/perfleet/agent/gpu"
	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

var testGossipKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func startAgent(t *testing.T, id, gossipAddr string, join []string, key []byte, labels map[string]string) *daemon.Agent {
	t.Helper()
	spec, err := gpu.ParseSimulated("8xH100-80GB")
	if err != nil {
		t.Fatal(err)
	}
	a, err := daemon.Start(daemon.Config{ID: id, GossipAddr: gossipAddr, Join: join, GossipKey: key, FastGossip: true,
		InstanceType: "lab-8xH100", Region: "lab", Labels: labels, GPUs: gpu.NewSimulated(spec, gpu.SimOptions{Seed: id}),
		Heartbeat: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("start agent %s: %v", id, err)
	}
	t.Cleanup(func() { _ = a.Kill() })
	return a
}

func listAgents(t *testing.T, c pb.FleetServiceClient, req *pb.ListAgentsRequest) map[string]*pb.Agent {
	t.Helper()
	resp, err := c.ListAgents(context.Background(), req)
	if err != nil {
		t.Fatalf("list agents: %v", err)
	}
	out := map[string]*pb.Agent{}
	for _, a := range resp.GetAgents() {
		out[a.GetAgentId()] = a
	}
	return out
}

// eventually polls cond every 50 ms until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v", what, timeout)
	return 0
}

func TestFleetMembershipFailureAndRejoin(t *testing.T) {
	servers := TestCluster(t, 1, func(_ int, c *Config) { c.GossipKey = testGossipKey })
	key, _ := DecodeGossipKey(testGossipKey)
	join := []string{servers[0].GossipAddr()}
	fleet := pb.NewFleetServiceClient(testConn(t, servers[0].Addr()))

	agents := make([]*daemon.Agent, 5)
	for i := range agents {
		agents[i] = startAgent(t, fmt.Sprintf("gpu-%d", i), "127.0.0.1:0", join, key, map[string]string{"rack": fmt.Sprint(i % 2)})
	}
	eventually(t, 10*time.Second, "all five agents listed alive and connected", func() bool {
		got := listAgents(t, fleet, &pb.ListAgentsRequest{Status: "alive"})
		n := 0
		for _, a := range got {
			if a.GetConnected() {
				n++
			}
		}
		return len(got) == 5 && n == 5
	})
	got := listAgents(t, fleet, &pb.ListAgentsRequest{})
	a0 := got["gpu-0"]
	if a0.GetInstanceType() != "lab-8xH100" || a0.GetGpus().GetCount() != 8 || a0.GetGpus().GetModel() != "H100-80GB" ||
		a0.GetGpus().GetSource() != "simulated" || a0.GetLabels()["rack"] != "0" || a0.GetRegion() != "lab" || a0.GetVersion() == "" {
		t.Fatalf("agent metadata not recorded: %v", a0)
	}
	if n := len(listAgents(t, fleet, &pb.ListAgentsRequest{Labels: []string{"rack=1"}, GpuModel: "h100"})); n != 2 {
		t.Fatalf("label filter: want 2 agents on rack 1, got %d", n)
	}

	// Kill one agent without a graceful leave: it is marked failed.
	victim := agents[3]
	addr := victim.GossipAddr()
	victim.Kill()
	took := eventually(t, 5*time.Second, "killed agent marked failed", func() bool {
		return listAgents(t, fleet, &pb.ListAgentsRequest{})["gpu-3"].GetStatus() == "failed"
	})
	t.Logf("failure detected in %v", took)
	if n := len(listAgents(t, fleet, &pb.ListAgentsRequest{Status: "alive"})); n != 4 {
		t.Fatalf("want 4 alive agents, got %d", n)
	}

	// It comes back at the same address and is alive again.
	startAgent(t, "gpu-3", addr, join, key, map[string]string{"rack": "1"})
	eventually(t, 10*time.Second, "restarted agent alive again", func() bool {
		return listAgents(t, fleet, &pb.ListAgentsRequest{})["gpu-3"].GetStatus() == "alive"
	})

	// A graceful stop is reported as left.
	agents[4].Stop()
	eventually(t, 15*time.Second, "stopped agent marked left", func() bool {
		return listAgents(t, fleet, &pb.ListAgentsRequest{})["gpu-4"].GetStatus() == "left"
	})
}

func TestFleetRefusesWrongGossipKey(t *testing.T) {
	servers := TestCluster(t, 1, func(_ int, c *Config) { c.GossipKey = testGossipKey })
	join := []string{servers[0].GossipAddr()}
	fleet := pb.NewFleetServiceClient(testConn(t, servers[0].Addr()))
	startAgent(t, "no-key", "127.0.0.1:0", join, nil, nil)
	startAgent(t, "bad-key", "127.0.0.1:0", join, []byte("fedcba9876543210fedcba9876543210"), nil)
	key, _ := DecodeGossipKey(testGossipKey)
	startAgent(t, "good-key", "127.0.0.1:0", join, key, nil)
	eventually(t, 10*time.Second, "agent with the key listed", func() bool {
		return listAgents(t, fleet, &pb.ListAgentsRequest{})["good-key"] != nil
	})
	time.Sleep(time.Second) // give the refused agents time to retry their joins
	got := listAgents(t, fleet, &pb.ListAgentsRequest{})
	if got["no-key"] != nil || got["bad-key"] != nil {
		t.Fatalf("agents without the gossip key joined: %v", got)
	}
}

func TestControlStreamFollowsLeaderChange(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	var join []string
	for _, s := range servers {
		join = append(join, s.GossipAddr())
	}
	a := startAgent(t, "gpu-a", "127.0.0.1:0", join, nil, nil)
	eventually(t, 10*time.Second, "agent connected to the leader", func() bool {
		id, ok := a.Control().Leader()
		return ok && id == leader.NodeID()
	})
	eventually(t, 5*time.Second, "clock offset estimated", func() bool {
		off, bound, ok := a.Control().ClockOffset()
		return ok && bound < 50*time.Millisecond && off < 50*time.Millisecond && off > -50*time.Millisecond
	})

	rest := followers(servers)
	leader.Kill()
	newLeader := WaitForLeader(t, rest...)
	took := eventually(t, 15*time.Second, "agent reconnected to the new leader", func() bool {
		id, ok := a.Control().Leader()
		return ok && id == newLeader.NodeID()
	})
	t.Logf("reconnected to %s %v after the new leader was known", newLeader.NodeID(), took)
	if a.Control().Connects() < 2 {
		t.Fatalf("want a reconnect, got %d connects", a.Control().Connects())
	}
	// The new leader sees it connected.
	fleet := pb.NewFleetServiceClient(testConn(t, newLeader.Addr()))
	eventually(t, 5*time.Second, "new leader records the agent connected", func() bool {
		return listAgents(t, fleet, &pb.ListAgentsRequest{})["gpu-a"].GetConnected()
	})
}
