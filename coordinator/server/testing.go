package server

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"
)

// TestConfig returns a config for an in-process test node: loopback
// addresses on free ports, a temporary data dir and short Raft timeouts.
func TestConfig(t testing.TB, name string) Config {
	cfg := DefaultConfig()
	cfg.NodeID = name
	cfg.DataDir = t.TempDir()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.RaftAddr = "127.0.0.1:0"
	cfg.GossipAddr = "127.0.0.1:0"
	cfg.FastGossip = true
	cfg.InsecureLoopback = true
	cfg.HeartbeatTimeout = 400 * time.Millisecond
	cfg.ElectionTimeout = 400 * time.Millisecond
	cfg.LeaderLeaseTimeout = 200 * time.Millisecond
	cfg.LogLevel = "error"
	cfg.BootstrapExpect = 1
	var out io.Writer = io.Discard
	if os.Getenv("PERFLEET_TEST_LOGS") != "" {
		out = os.Stderr
	}
	cfg.Logger = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test_node", name)
	return cfg
}

// TestCluster starts n nodes that form one cluster through --bootstrap-expect
// and waits for a leader. Nodes shut down when the test ends.
func TestCluster(t testing.TB, n int, mutate func(i int, c *Config)) []*Server {
	t.Helper()
	servers := make([]*Server, 0, n)
	var first string
	for i := 0; i < n; i++ {
		cfg := TestConfig(t, fmt.Sprintf("node%d", i))
		cfg.BootstrapExpect = n
		if i > 0 {
			cfg.Join = []string{first}
		}
		if mutate != nil {
			mutate(i, &cfg)
		}
		s, err := New(cfg)
		if err != nil {
			t.Fatalf("start node%d: %v", i, err)
		}
		t.Cleanup(func() { _ = s.Shutdown() })
		if i == 0 {
			first = s.Addr()
		}
		servers = append(servers, s)
	}
	WaitForLeader(t, servers...)
	return servers
}

// WaitForLeader waits up to 10 s until one of the running servers leads,
// every one of them knows that leader, and the leader has registered its API
// address; it returns the leader.
func WaitForLeader(t testing.TB, servers ...*Server) *Server {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var leader *Server
		agree := true
		for _, s := range servers {
			if s.IsLeader() {
				leader = s
			}
		}
		if leader != nil && leader.leaderReady.Load() && leader.State().Server(leader.NodeID()) != nil && leader.State().Meta() != nil {
			for _, s := range servers {
				if _, id := s.raft.LeaderWithID(); string(id) != leader.NodeID() {
					agree = false
				}
			}
			if agree {
				return leader
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no leader agreed on by %d servers within 10s", len(servers))
	return nil
}
